//! The mempool: checked transactions waiting to be ordered.
//!
//! Rules it keeps: a transaction enters once (dedupe by hash, and one per sender and nonce);
//! per sender, transactions become ready strictly in nonce order, so a gap holds back the
//! ones after it; proposals take ready transactions in arrival order; everything is bounded
//! (`MEMPOOL_TXS_MAX`, the nonce window, `REJECTED_REMEMBERED_MAX`). Signatures are checked
//! before a transaction gets here, so the pool itself is the signature cache.
//!
//! Fair admission (issue 9): an institution (a bank and its customers together) holds at most
//! `MEMPOOL_INSTITUTION_TXS_MAX`; the last `MEMPOOL_PRIORITY_TXS_RESERVED` places are for the
//! priority lane (regulators' and issuers' operations), whose ready transactions are proposed
//! before all others, so a full pool never blocks a freeze; a transaction parked behind a
//! nonce gap is dropped after `MEMPOOL_PARKED_MS_MAX`.

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
/// Transactions one institution (a bank and its `name@bank` customers) may hold at once.
pub(crate) const MEMPOOL_INSTITUTION_TXS_MAX: usize = 50_000;
/// Places in the pool only the priority lane may take.
pub(crate) const MEMPOOL_PRIORITY_TXS_RESERVED: usize = 10_000;
/// How long a transaction may wait behind a nonce gap before it is dropped.
pub(crate) const MEMPOOL_PARKED_MS_MAX: u64 = 5 * 60 * 1000;
const _: () = assert!(MEMPOOL_INSTITUTION_TXS_MAX + MEMPOOL_PRIORITY_TXS_RESERVED <= MEMPOOL_TXS_MAX);

/// Which queue a transaction waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Normal,
    /// A regulator's or an issuer's operation: reserved places, proposed first.
    Priority,
}

/// The pool's bounds (the constants above; smaller in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub txs_max: usize,
    pub institution_txs_max: usize,
    pub priority_reserved: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            txs_max: MEMPOOL_TXS_MAX,
            institution_txs_max: MEMPOOL_INSTITUTION_TXS_MAX,
            priority_reserved: MEMPOOL_PRIORITY_TXS_RESERVED,
        }
    }
}

/// The institution that answers for `sender`: its sponsor, or itself.
fn institution(sender: &AccountId) -> AccountId {
    sender.sponsor().unwrap_or_else(|| sender.clone())
}

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
    lane: Lane,
    /// When it was admitted (the node's clock), to drop it if it stays parked.
    admitted_ms: u64,
    /// When it was last handed to gossip (admission counts), so a transaction that some
    /// validator may have missed is offered again (`gossip_due`).
    gossiped_ms: u64,
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
    /// Transactions held per institution.
    institutions: HashMap<AccountId, usize>,
    ready: VecDeque<Hash>,
    /// Ready transactions of the priority lane, proposed before `ready`.
    priority: VecDeque<Hash>,
    limits: Limits,
    /// Each with its sender, so a status query can be scoped (issue 9).
    rejected: HashMap<Hash, (AccountId, Error)>,
    rejected_order: VecDeque<Hash>,
}

impl Inner {
    fn reject(&mut self, hash: Hash, sender: AccountId, error: Error) {
        if self.rejected.insert(hash, (sender, error)).is_none() {
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
                match entry.lane {
                    Lane::Normal => self.ready.push_back(*hash),
                    Lane::Priority => self.priority.push_back(*hash),
                }
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
                sender.clone(),
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
        let institution = institution(&tx.sender);
        if let Some(count) = self.institutions.get_mut(&institution) {
            assert!(*count > 0, "institution counts match the entries");
            *count -= 1;
            if *count == 0 {
                self.institutions.remove(&institution);
            }
        }
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
    #[cfg(test)]
    pub fn with_limits(limits: Limits) -> Mempool {
        let pool = Mempool::default();
        pool.inner.lock().limits = limits;
        pool
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn ready_len(&self) -> usize {
        let inner = self.inner.lock();
        inner.ready.len() + inner.priority.len()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().entries.contains_key(hash)
    }

    /// `contains` for many, under one lock.
    pub fn contains_all(&self, hashes: &[Hash]) -> Vec<bool> {
        let inner = self.inner.lock();
        hashes.iter().map(|hash| inner.entries.contains_key(hash)).collect()
    }

    /// Why a transaction accepted earlier was dropped without being ordered, and its sender.
    pub fn rejection(&self, hash: &Hash) -> Option<(AccountId, Error)> {
        self.inner.lock().rejected.get(hash).cloned()
    }

    /// The canonical bytes of every transaction in the pool (to rewrite the journal).
    pub fn all_bytes(&self) -> Vec<Vec<u8>> {
        self.inner
            .lock()
            .entries
            .values()
            .map(|entry| entry.signed.to_bytes())
            .collect()
    }

    /// The canonical bytes of up to `max` transactions that have waited `age_ms` or more
    /// since they were last gossiped, oldest first, now marked gossiped at `now_ms`. Those in a
    /// block in flight are left out: every validator that voted for the block holds them.
    /// A transaction only one node holds (it was admitted while that node was cut off, or
    /// replayed from its journal before its peers connected) reaches the others this way.
    pub fn gossip_due(&self, now_ms: u64, age_ms: u64, max: usize) -> Vec<Vec<u8>> {
        let mut inner = self.inner.lock();
        let mut due: Vec<(u64, Hash)> = inner
            .entries
            .iter()
            .filter(|(_, entry)| entry.stage != Stage::Proposed && now_ms.saturating_sub(entry.gossiped_ms) >= age_ms)
            .map(|(hash, entry)| (entry.gossiped_ms, *hash))
            .collect();
        due.sort_unstable();
        due.truncate(max);
        due.iter()
            .filter_map(|(_, hash)| {
                let entry = inner.entries.get_mut(hash)?;
                entry.gossiped_ms = now_ms;
                Some(entry.signed.to_bytes())
            })
            .collect()
    }

    /// A pending transaction.
    pub fn get(&self, hash: &Hash) -> Option<Arc<SignedTransaction>> {
        self.inner
            .lock()
            .entries
            .get(hash)
            .map(|entry| Arc::clone(&entry.signed))
    }

    /// Whether the sender has transactions in the pool (the admission dry run only applies
    /// to a sender with none).
    pub fn has_sender(&self, sender: &AccountId) -> bool {
        self.inner.lock().senders.contains_key(sender)
    }

    /// Add a transaction that passed admission. `committed_next` is the sender's next nonce
    /// in committed state at admission.
    /// `bytes` is the transaction's canonical size.
    #[cfg(test)]
    pub fn insert(
        &self,
        hash: Hash,
        signed: Arc<SignedTransaction>,
        bytes: usize,
        committed_next: u64,
    ) -> Result<(), Error> {
        self.insert_in(Lane::Normal, hash, signed, bytes, committed_next, 0)
    }

    /// Add a transaction that passed admission to `lane`, admitted at `now_ms`.
    pub fn insert_in(
        &self,
        lane: Lane,
        hash: Hash,
        signed: Arc<SignedTransaction>,
        bytes: usize,
        committed_next: u64,
        now_ms: u64,
    ) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        if inner.entries.contains_key(&hash) {
            return Err(Error::new(ErrorCode::Duplicate, "transaction is already pending"));
        }
        let limits = inner.limits;
        let places = match lane {
            Lane::Normal => limits.txs_max - limits.priority_reserved,
            Lane::Priority => limits.txs_max,
        };
        if inner.entries.len() >= places || inner.bytes + bytes > MEMPOOL_BYTES_MAX {
            return Err(Error::new(ErrorCode::MempoolFull, "the mempool is full; retry later"));
        }
        let institution = institution(&signed.tx.sender);
        let held = inner.institutions.get(&institution).copied().unwrap_or(0);
        if lane == Lane::Normal && held >= limits.institution_txs_max {
            return Err(Error::new(
                ErrorCode::MempoolFull,
                format!("{institution} and its customers hold their share of the mempool; retry later"),
            ));
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
                lane,
                admitted_ms: now_ms,
                gossiped_ms: now_ms,
            },
        );
        inner.bytes += bytes;
        *inner.institutions.entry(institution).or_default() += 1;
        inner.promote(&sender);
        Ok(())
    }

    /// Up to `max_txs` ready transactions (and `max_bytes` of them), oldest first. Those that
    /// expired before `now_ms` are dropped and remembered as rejected.
    pub fn take_ready(&self, max_txs: usize, max_bytes: usize, now_ms: u64) -> Vec<(Hash, Arc<SignedTransaction>)> {
        let mut inner = self.inner.lock();
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        // Senders one of whose transactions expired here: their later nonces can no longer
        // execute, so they wait (for the gap to be filled, or to expire) instead of failing
        // in a block as `nonce_too_high`.
        let mut gapped: std::collections::HashSet<AccountId> = std::collections::HashSet::new();
        while taken.len() < max_txs {
            let (hash, lane) = match inner.priority.pop_front() {
                Some(hash) => (hash, Lane::Priority),
                None => match inner.ready.pop_front() {
                    Some(hash) => (hash, Lane::Normal),
                    None => break,
                },
            };
            let Some(entry) = inner.entries.get_mut(&hash) else {
                continue;
            };
            if entry.stage != Stage::Ready {
                continue; // held for a block in flight
            }
            if gapped.contains(&entry.signed.tx.sender) {
                entry.stage = Stage::Waiting;
                continue;
            }
            if entry.signed.tx.expires_at_ms < now_ms {
                let sender = entry.signed.tx.sender.clone();
                inner.remove(&hash);
                inner.reject(
                    hash,
                    sender.clone(),
                    Error::new(ErrorCode::Expired, "expired in the mempool"),
                );
                gapped.insert(sender);
                continue;
            }
            let size = entry.bytes;
            if bytes + size > max_bytes && !taken.is_empty() {
                match lane {
                    Lane::Normal => inner.ready.push_front(hash),
                    Lane::Priority => inner.priority.push_front(hash),
                }
                break;
            }
            bytes += size;
            entry.stage = Stage::Proposed;
            taken.push((hash, Arc::clone(&entry.signed)));
        }
        taken
    }

    /// Hold these transactions out of our proposals: they are in a block in flight (another
    /// validator's proposal we found valid).
    pub fn hold(&self, hashes: &[Hash]) {
        let mut inner = self.inner.lock();
        for hash in hashes {
            if let Some(entry) = inner.entries.get_mut(hash) {
                entry.stage = Stage::Proposed;
            }
        }
    }

    /// A block in flight was abandoned: its transactions still in the pool may be proposed
    /// again, in nonce order.
    pub fn release(&self, hashes: &[Hash]) {
        let mut inner = self.inner.lock();
        let mut senders = std::collections::BTreeSet::new();
        for hash in hashes {
            if let Some(entry) = inner.entries.get_mut(hash)
                && entry.stage == Stage::Proposed
            {
                entry.stage = Stage::Waiting;
                senders.insert(entry.signed.tx.sender.clone());
            }
        }
        for sender in &senders {
            inner.promote(sender);
        }
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

    /// Drop transactions that expired before `now_ms`, wherever they wait, and those parked
    /// behind a nonce gap for longer than `MEMPOOL_PARKED_MS_MAX`.
    pub fn purge_expired(&self, now_ms: u64) -> usize {
        let mut inner = self.inner.lock();
        let expired: Vec<Hash> = inner
            .entries
            .iter()
            .filter(|(_, entry)| {
                let parked_too_long =
                    entry.stage == Stage::Waiting && now_ms.saturating_sub(entry.admitted_ms) > MEMPOOL_PARKED_MS_MAX;
                entry.stage != Stage::Proposed && (entry.signed.tx.expires_at_ms < now_ms || parked_too_long)
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &expired {
            if let Some(entry) = inner.remove(hash) {
                let sender = entry.signed.tx.sender.clone();
                // Two causes, told apart: an operator chasing a lost transaction needs to know
                // whether its own expiry passed or it waited behind a nonce that never came.
                let why = if entry.signed.tx.expires_at_ms < now_ms {
                    "expired in the mempool".to_string()
                } else {
                    format!("waited behind a nonce gap for over {MEMPOOL_PARKED_MS_MAX} ms")
                };
                inner.reject(*hash, sender, Error::new(ErrorCode::Expired, why));
            }
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
        let signed = Transaction::new(
            Hash::ZERO,
            AccountId::new("a@bank").expect("id"),
            nonce,
            expires_at_ms,
            op,
        )
        .sign(&key);
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

    /// A transaction nobody has seen proposed is offered to gossip again once it has waited
    /// `age_ms` since it was last offered, oldest first; one in a block in flight is not.
    #[test]
    fn waiting_transactions_are_offered_to_gossip_again_after_their_age() {
        let pool = Mempool::default();
        for (nonce, admitted_ms) in [(0, 1_000), (1, 1_500), (2, 3_000)] {
            let (hash, signed) = tx(nonce, u64::MAX);
            pool.insert_in(Lane::Normal, hash, signed, 100, 0, admitted_ms)
                .expect("admitted");
        }
        let nonce_of = |bytes: &Vec<u8>| SignedTransaction::from_bytes(bytes).expect("bytes").tx.nonce;
        assert!(
            pool.gossip_due(2_999, 2_000, 10).is_empty(),
            "nothing has waited 2 s yet"
        );
        let due: Vec<u64> = pool.gossip_due(3_600, 2_000, 1).iter().map(nonce_of).collect();
        assert_eq!(due, vec![0], "the oldest first, at most `max`");
        let due: Vec<u64> = pool.gossip_due(3_600, 2_000, 10).iter().map(nonce_of).collect();
        assert_eq!(due, vec![1], "nonce 0 was offered at 3,600; nonce 2 is young");
        // Nonce 2 goes into a proposal: it is no longer offered, even when old.
        assert_eq!(nonces(&pool.take_ready(1, usize::MAX, 0)), vec![0]);
        let due: Vec<u64> = pool.gossip_due(10_000, 2_000, 10).iter().map(nonce_of).collect();
        assert_eq!(
            due,
            vec![2, 1],
            "nonce 0 is in a block in flight; the longest unoffered first"
        );
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

    fn tx_from(sender: &str, nonce: u64) -> (Hash, Arc<SignedTransaction>) {
        let key = PrivateKey::from_seed(Scheme::Ed25519, [1; 32]).expect("seed");
        let op = Operation::freeze(AccountId::new("x@bank").expect("id"));
        let signed = Transaction::new(Hash::ZERO, AccountId::new(sender).expect("id"), nonce, 100, op).sign(&key);
        (signed.hash(HashAlgorithm::Sha256), Arc::new(signed))
    }

    /// Adversary: one bank's customers flood the pool. They stop at the institution's share,
    /// other banks still get in, and the priority lane gets in even when the pool is full
    /// and is proposed first.
    #[test]
    fn an_institution_cannot_fill_the_pool_and_the_priority_lane_always_gets_in() {
        let pool = Mempool::with_limits(Limits {
            txs_max: 10,
            institution_txs_max: 4,
            priority_reserved: 2,
        });
        let admit = |lane, sender: &str, nonce| {
            let (hash, signed) = tx_from(sender, nonce);
            pool.insert_in(lane, hash, signed, 10, 0, 0).map_err(|e| e.code)
        };
        for sender in ["a@flood", "b@flood", "flood", "c@flood"] {
            assert_eq!(admit(Lane::Normal, sender, 0), Ok(()));
        }
        assert_eq!(admit(Lane::Normal, "d@flood", 0), Err(ErrorCode::MempoolFull));
        for sender in ["e@other", "f@other", "g@third", "h@third"] {
            assert_eq!(admit(Lane::Normal, sender, 0), Ok(()), "{sender}");
        }
        // 8 of 10 places are taken: the last 2 are the priority lane's.
        assert_eq!(admit(Lane::Normal, "i@fourth", 0), Err(ErrorCode::MempoolFull));
        assert_eq!(admit(Lane::Priority, "regulator", 0), Ok(()));
        assert_eq!(admit(Lane::Priority, "pboc", 0), Ok(()));
        assert_eq!(admit(Lane::Priority, "hkma", 0), Err(ErrorCode::MempoolFull));
        let first = pool.take_ready(2, usize::MAX, 0);
        let senders: Vec<&str> = first.iter().map(|(_, s)| s.tx.sender.as_str()).collect();
        assert_eq!(
            senders,
            vec!["regulator", "pboc"],
            "the priority lane is proposed first"
        );
        // Leaving the pool frees the institution's share.
        let hashes: Vec<Hash> = pool.take_ready(10, usize::MAX, 0).iter().map(|(h, _)| *h).collect();
        pool.committed(&hashes, &BTreeMap::new());
        assert_eq!(admit(Lane::Normal, "d@flood", 0), Ok(()));
    }

    #[test]
    fn parked_transactions_are_dropped_after_a_while() {
        let pool = Mempool::default();
        let (h0, s0) = tx(0, u64::MAX);
        let (h2, s2) = tx(2, u64::MAX);
        pool.insert_in(Lane::Normal, h0, s0, 10, 0, 1_000).expect("admitted");
        pool.insert_in(Lane::Normal, h2, s2, 10, 0, 1_000)
            .expect("admitted, parked behind 1");
        assert_eq!(pool.purge_expired(1_000 + MEMPOOL_PARKED_MS_MAX), 0);
        assert_eq!(
            pool.purge_expired(1_001 + MEMPOOL_PARKED_MS_MAX),
            1,
            "only the parked one"
        );
        assert!(pool.contains(&h0) && !pool.contains(&h2));
        assert_eq!(pool.rejection(&h2).map(|(_, e)| e.code), Some(ErrorCode::Expired));
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
        assert_eq!(pool.rejection(&h1).map(|(_, e)| e.code), Some(ErrorCode::Expired));
        assert_eq!(pool.len(), 0);
    }
}
