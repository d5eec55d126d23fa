//! The mempool: checked transactions waiting to be ordered.
//!
//! Rules it keeps: a transaction enters once (dedupe by hash, and one per sender and nonce);
//! per sender, transactions become ready strictly in nonce order, so a gap holds back the
//! ones after it; proposals take ready transactions in arrival order; everything is bounded
//! (`MEMPOOL_TXS_MAX`, the nonce window, `REJECTED_REMEMBERED_MAX`). Signatures are checked
//! before a transaction gets here, so the pool itself is the signature cache.

use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::{AccountId, Hash, SignedTransaction};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Transactions held at once.
pub(crate) const MEMPOOL_TXS_MAX: usize = 200_000;
/// Canonical bytes held at once.
pub(crate) const MEMPOOL_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Canonical bytes one sender may hold in the pool, so a few accounts parking transactions
/// behind a nonce gap cannot fill it for everyone.
pub(crate) const MEMPOOL_SENDER_BYTES_MAX: usize = 1024 * 1024;
/// Refused-after-acceptance transactions remembered for status queries.
pub(crate) const REJECTED_REMEMBERED_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for an earlier nonce of the same sender.
    Waiting,
    /// In the ready queue.
    Ready,
    /// Taken into a proposal; leaves the pool when its block commits.
    Proposed,
}

struct Entry {
    signed: Arc<SignedTransaction>,
    bytes: usize,
    stage: Stage,
}

#[derive(Default)]
struct SenderQueue {
    /// The sender's next nonce in committed state, as last seen.
    committed_next: u64,
    bytes: usize,
    pending: BTreeMap<u64, Hash>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Hash, Entry>,
    bytes: usize,
    senders: HashMap<AccountId, SenderQueue>,
    ready: VecDeque<Hash>,
    rejected: HashMap<Hash, Error>,
    rejected_order: VecDeque<Hash>,
}

impl Inner {
    fn reject(&mut self, hash: Hash, error: Error) {
        if self.rejected.insert(hash, error).is_none() {
            self.rejected_order.push_back(hash);
        }
        while self.rejected_order.len() > REJECTED_REMEMBERED_MAX {
            if let Some(oldest) = self.rejected_order.pop_front() {
                self.rejected.remove(&oldest);
            }
        }
    }

    /// Move the sender's contiguous run of waiting transactions, from its committed nonce on,
    /// into the ready queue.
    fn promote(&mut self, sender: &AccountId) {
        let Some(queue) = self.senders.get(sender) else { return };
        let mut nonce = queue.committed_next;
        while let Some(hash) = queue.pending.get(&nonce) {
            let entry = self.entries.get_mut(hash).expect("pending entries are in the pool");
            if entry.stage == Stage::Waiting {
                entry.stage = Stage::Ready;
                self.ready.push_back(*hash);
            }
            nonce += 1;
        }
    }

    /// Move the sender's queue up to committed nonce `next`: transactions below it can never
    /// execute. After a commit (`requeue_proposed`), the sender's proposed-but-uncommitted
    /// transactions wait to be proposed again; at any other time they belong to a block in
    /// flight and stay where they are.
    fn advance(&mut self, sender: &AccountId, next: u64, requeue_proposed: bool) {
        let stale: Vec<Hash> = match self.senders.get_mut(sender) {
            Some(queue) if queue.committed_next <= next => {
                queue.committed_next = next;
                queue.pending.range(..next).map(|(_, hash)| *hash).collect()
            }
            _ => return,
        };
        for hash in stale {
            self.remove(&hash);
            self.reject(
                hash,
                Error::new(ErrorCode::NonceTooLow, "another transaction used this nonce"),
            );
        }
        let hashes: Vec<Hash> = match requeue_proposed {
            true => self
                .senders
                .get(sender)
                .map(|q| q.pending.values().copied().collect())
                .unwrap_or_default(),
            false => Vec::new(),
        };
        for hash in hashes {
            if let Some(entry) = self.entries.get_mut(&hash)
                && entry.stage == Stage::Proposed
            {
                entry.stage = Stage::Waiting;
            }
        }
        self.promote(sender);
    }

    fn remove(&mut self, hash: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.bytes;
        let tx = &entry.signed.tx;
        if let Some(queue) = self.senders.get_mut(&tx.sender) {
            if queue.pending.get(&tx.nonce) == Some(hash) {
                queue.pending.remove(&tx.nonce);
                queue.bytes -= entry.bytes;
            }
            if queue.pending.is_empty() {
                self.senders.remove(&tx.sender);
            }
        }
        Some(entry)
    }
}

#[derive(Default)]
pub(crate) struct Mempool {
    inner: Mutex<Inner>,
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn ready_len(&self) -> usize {
        self.inner.lock().ready.len()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().entries.contains_key(hash)
    }

    /// `contains` for many, under one lock.
    pub fn contains_all(&self, hashes: &[Hash]) -> Vec<bool> {
        let inner = self.inner.lock();
        hashes.iter().map(|hash| inner.entries.contains_key(hash)).collect()
    }

    /// Why a transaction accepted earlier was dropped without being ordered.
    pub fn rejection(&self, hash: &Hash) -> Option<Error> {
        self.inner.lock().rejected.get(hash).cloned()
    }

    /// Whether the sender has transactions in the pool (the admission dry run only applies
    /// to a sender with none).
    pub fn has_sender(&self, sender: &AccountId) -> bool {
        self.inner.lock().senders.contains_key(sender)
    }

    /// Add a transaction that passed admission. `committed_next` is the sender's next nonce
    /// in committed state at admission.
    /// `bytes` is the transaction's canonical size.
    pub fn insert(
        &self,
        hash: Hash,
        signed: Arc<SignedTransaction>,
        bytes: usize,
        committed_next: u64,
    ) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        if inner.entries.contains_key(&hash) {
            return Err(Error::new(ErrorCode::Duplicate, "transaction is already pending"));
        }
        if inner.entries.len() >= MEMPOOL_TXS_MAX || inner.bytes + bytes > MEMPOOL_BYTES_MAX {
            return Err(Error::new(ErrorCode::MempoolFull, "the mempool is full; retry later"));
        }
        let sender = signed.tx.sender.clone();
        let nonce = signed.tx.nonce;
        let queue = inner.senders.entry(sender.clone()).or_default();
        if queue.bytes + bytes > MEMPOOL_SENDER_BYTES_MAX {
            return Err(Error::new(
                ErrorCode::MempoolFull,
                format!("{sender} has {MEMPOOL_SENDER_BYTES_MAX} bytes pending; wait for some to finalize"),
            ));
        }
        queue.committed_next = queue.committed_next.max(committed_next);
        if nonce < queue.committed_next {
            return Err(Error::new(ErrorCode::NonceTooLow, format!("nonce {nonce} is used")));
        }
        if queue.pending.contains_key(&nonce) {
            return Err(Error::new(
                ErrorCode::Duplicate,
                format!("a transaction with nonce {nonce} is already pending"),
            ));
        }
        queue.pending.insert(nonce, hash);
        queue.bytes += bytes;
        inner.entries.insert(
            hash,
            Entry {
                signed,
                bytes,
                stage: Stage::Waiting,
            },
        );
        inner.bytes += bytes;
        inner.promote(&sender);
        Ok(())
    }

    /// Up to `max_txs` ready transactions (and `max_bytes` of them), oldest first. Those that
    /// expired before `now_ms` are dropped and remembered as rejected.
    pub fn take_ready(&self, max_txs: usize, max_bytes: usize, now_ms: u64) -> Vec<(Hash, Arc<SignedTransaction>)> {
        let mut inner = self.inner.lock();
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        while taken.len() < max_txs {
            let Some(hash) = inner.ready.pop_front() else { break };
            let Some(entry) = inner.entries.get_mut(&hash) else {
                continue;
            };
            if entry.signed.tx.expires_at_ms < now_ms {
                inner.remove(&hash);
                inner.reject(hash, Error::new(ErrorCode::Expired, "expired in the mempool"));
                continue;
            }
            let size = entry.bytes;
            if bytes + size > max_bytes && !taken.is_empty() {
                inner.ready.push_front(hash);
                break;
            }
            bytes += size;
            entry.stage = Stage::Proposed;
            taken.push((hash, Arc::clone(&entry.signed)));
        }
        taken
    }

    /// A block committed: its transactions leave the pool, and each touched sender's queue
    /// moves to its new committed nonce (transactions below it can never execute).
    pub fn committed(&self, hashes: &[Hash], next_nonces: &BTreeMap<AccountId, u64>) {
        let mut inner = self.inner.lock();
        for hash in hashes {
            inner.remove(hash);
        }
        for (sender, next) in next_nonces {
            inner.advance(sender, *next, true);
        }
    }

    /// The sender's committed nonce is at least `next`. Admission calls this after inserting,
    /// with a fresh read of committed state, so a block that committed between its first read
    /// and its insert cannot leave the new transaction waiting for a nonce already used.
    pub fn observe_committed_nonce(&self, sender: &AccountId, next: u64) {
        self.inner.lock().advance(sender, next, false);
    }

    /// Drop transactions that expired before `now_ms`, wherever they wait.
    pub fn purge_expired(&self, now_ms: u64) -> usize {
        let mut inner = self.inner.lock();
        let expired: Vec<Hash> = inner
            .entries
            .iter()
            .filter(|(_, entry)| entry.stage != Stage::Proposed && entry.signed.tx.expires_at_ms < now_ms)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &expired {
            inner.remove(hash);
            inner.reject(*hash, Error::new(ErrorCode::Expired, "expired in the mempool"));
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_sdk::crypto::{PrivateKey, Scheme};
    use corridor_sdk::{Amount, CurrencyCode, HashAlgorithm, Operation, Transaction};

    fn tx(nonce: u64, expires_at_ms: u64) -> (Hash, Arc<SignedTransaction>) {
        let key = PrivateKey::from_seed(Scheme::Ed25519, [1; 32]).expect("seed");
        let op = Operation::transfer(
            AccountId::new("b@bank").expect("id"),
            CurrencyCode::new("CNY").expect("code"),
            Amount::from(1),
            None,
        );
        let signed = Transaction::new("c", AccountId::new("a@bank").expect("id"), nonce, expires_at_ms, op).sign(&key);
        (signed.hash(HashAlgorithm::Sha256), Arc::new(signed))
    }

    fn nonces(taken: &[(Hash, Arc<SignedTransaction>)]) -> Vec<u64> {
        taken.iter().map(|(_, s)| s.tx.nonce).collect()
    }

    #[test]
    fn nonce_gaps_hold_back_later_transactions() {
        let pool = Mempool::default();
        for nonce in [0, 2, 3] {
            let (hash, signed) = tx(nonce, 100);
            pool.insert(hash, signed, 100, 0).expect("admitted");
        }
        assert_eq!(nonces(&pool.take_ready(10, usize::MAX, 0)), vec![0]);
        let (hash, signed) = tx(1, 100);
        pool.insert(hash, signed, 100, 0).expect("admitted");
        assert_eq!(nonces(&pool.take_ready(10, usize::MAX, 0)), vec![1, 2, 3]);
    }

    #[test]
    fn duplicates_and_used_nonces_are_refused() {
        let pool = Mempool::default();
        let (hash, signed) = tx(5, 100);
        pool.insert(hash, Arc::clone(&signed), 100, 5).expect("admitted");
        assert_eq!(
            pool.insert(hash, signed, 100, 5).map_err(|e| e.code),
            Err(ErrorCode::Duplicate)
        );
        let (hash, signed) = tx(4, 100);
        assert_eq!(
            pool.insert(hash, signed, 100, 5).map_err(|e| e.code),
            Err(ErrorCode::NonceTooLow)
        );
    }

    /// A block commits the sender's nonce 0 (emptying its queue) between admission's read of
    /// the committed nonce and its insert of nonce 1: the insert carries the stale nonce 0.
    #[test]
    fn a_commit_racing_admission_does_not_strand_the_next_transaction() {
        let pool = Mempool::default();
        let sender = AccountId::new("a@bank").expect("id");
        let (h0, s0) = tx(0, 100);
        pool.insert(h0, s0, 100, 0).expect("admitted");
        assert_eq!(nonces(&pool.take_ready(10, usize::MAX, 0)), vec![0]);
        pool.committed(&[h0], &BTreeMap::from([(sender.clone(), 1)]));
        let (h1, s1) = tx(1, 100);
        pool.insert(h1, s1, 100, 0)
            .expect("admitted with a stale committed nonce");
        assert!(
            pool.take_ready(10, usize::MAX, 0).is_empty(),
            "stranded without the re-check"
        );
        pool.observe_committed_nonce(&sender, 1);
        assert_eq!(nonces(&pool.take_ready(10, usize::MAX, 0)), vec![1]);
    }

    /// Admission's re-check must not put a block's in-flight transactions back in line.
    #[test]
    fn observing_the_committed_nonce_leaves_proposed_transactions_alone() {
        let pool = Mempool::default();
        let sender = AccountId::new("a@bank").expect("id");
        let (h0, s0) = tx(0, 100);
        pool.insert(h0, s0, 100, 0).expect("admitted");
        assert_eq!(nonces(&pool.take_ready(10, usize::MAX, 0)), vec![0]);
        pool.observe_committed_nonce(&sender, 0);
        assert!(
            pool.take_ready(10, usize::MAX, 0).is_empty(),
            "nonce 0 is in flight, not ready"
        );
    }

    #[test]
    fn commit_removes_and_expiry_rejects() {
        let pool = Mempool::default();
        let (h0, s0) = tx(0, 100);
        let (h1, s1) = tx(1, 10);
        pool.insert(h0, s0, 100, 0).expect("admitted");
        pool.insert(h1, s1, 100, 0).expect("admitted");
        let taken = pool.take_ready(1, usize::MAX, 0);
        assert_eq!(nonces(&taken), vec![0]);
        let sender = AccountId::new("a@bank").expect("id");
        pool.committed(&[h0], &BTreeMap::from([(sender, 1)]));
        assert!(!pool.contains(&h0));
        assert!(pool.take_ready(10, usize::MAX, 50).is_empty());
        assert_eq!(pool.rejection(&h1).map(|e| e.code), Some(ErrorCode::Expired));
        assert_eq!(pool.len(), 0);
    }
}
