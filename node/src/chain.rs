//! The node's core: admission into the mempool, the `Application` interface that block
//! ordering drives, the commit path, and the queries the API serves.
//!
//! Rules it keeps: blocks commit strictly in height order, one at a time; a block is durable
//! (one synced RocksDB batch) before the in-memory head moves or anyone is told; the state
//! root in memory always equals the committed head's.

use crate::genesis::Genesis;
use crate::journal::{JOURNAL_BYTES_MAX, Journal};
use crate::ledger::merkle::SparseMerkleTree;
use crate::ledger::{
    AccountRecord, ChainConfig, CurrencyRecord, Precheck, StateKey, StateReader, check_transaction, execute_block,
};
use crate::mempool::{Lane, Mempool};
use crate::metrics::{Metrics, Stage};
use crate::storage::{BlockCommit, Head, Storage, StoredBlock};
use corridor_sdk::api::{
    AccountProof, AccountView, BlockView, CurrencyView, EventRecord, HistoryEntry, HistoryPage, Status, TxStatus,
    TxView,
};
use corridor_sdk::block::merkle_root;
use corridor_sdk::crypto::{BatchItem, PublicKey, verify_batch};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::{BLOCK_TXS_MAX, NONCE_WINDOW_MAX, STATE_VALUE_BYTES_MAX, TX_EXPIRY_AHEAD_MS_MAX};
use corridor_sdk::proof::SignerSet;
use corridor_sdk::{AccountId, Block, BlockHeader, Certificate, Hash, SignedTransaction, codec};
use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Transaction bytes in one proposal: the consensus payload limit, less room for the header.
const PROPOSAL_TXS_BYTES_MAX: usize = corridor_consensus::limits::PAYLOAD_BYTES_MAX - 64 * 1024;
/// What `cheap_checks` found: the transaction's canonical bytes, its hash, the time used, and
/// the sender's record.
type Checked = (Vec<u8>, Hash, u64, AccountRecord);

/// Signatures verified together in one batch.
const VERIFY_BATCH_TXS: usize = 64;

/// What a new block's header must follow: its parent's place, hash, time and the height of
/// the state root the parent named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parent {
    pub height: u64,
    pub block_hash: Hash,
    pub timestamp_ms: u64,
    pub state_height: u64,
}

impl Parent {
    pub fn of(header: &BlockHeader, algorithm: corridor_sdk::HashAlgorithm) -> Parent {
        Parent {
            height: header.height,
            block_hash: header.hash(algorithm),
            timestamp_ms: header.timestamp_ms,
            state_height: header.state_height,
        }
    }
}

/// Why a proposal gets no vote (yet).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// It names a state root at a height this node has not executed: ask again later.
    Behind,
    Invalid(Error),
}

/// What block ordering needs from the application. The consensus driver (`driver.rs`) calls
/// it with n validators, and with n = 1 in `corridord dev`.
pub(crate) trait Application: Send + Sync {
    /// A block on `parent` from ready mempool transactions, or `None` if there is nothing to
    /// order (an empty block if `empty_ok`). Its transactions stay out of later proposals until
    /// `release` or `finalize`.
    fn propose(&self, parent: &Parent, proposer: &AccountId, now_ms: u64, empty_ok: bool) -> Option<Block>;
    /// Whether a proposal on `parent` may be voted for: it extends it, its time is after the
    /// parent's and not ahead of `now_ms` by more than the genesis bound, its state root
    /// equals ours at the height it names, its counts, nonces and expiries are right, and
    /// every signature verifies. A valid proposal's transactions are held out of our own
    /// proposals as if we had proposed them.
    fn verify_proposal(&self, block: &Block, parent: &Parent, now_ms: u64) -> Result<(), Refusal>;
    /// A proposal that will not be finalized: its transactions may be proposed again.
    fn release(&self, block: &Block);
    /// Execute and persist a block whose finality the caller verified. Returns once it is
    /// durable. A block whose header disagrees with our state is refused with
    /// `ErrorCode::Diverged`, and nothing is written.
    fn finalize(&self, block: Block, certificate: Certificate) -> Result<Head, Error>;
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Hands admitted transactions' canonical bytes to the network, so they reach every
/// validator (nothing is set on a node without peers).
#[derive(Default)]
pub(crate) struct Gossip {
    send: Mutex<Option<GossipSend>>,
}

/// Takes admitted transactions' canonical bytes.
pub(crate) type GossipSend = Box<dyn Fn(Vec<Vec<u8>>) + Send + Sync>;

impl Gossip {
    pub fn set(&self, send: GossipSend) {
        *self.send.lock() = Some(send);
    }

    fn send(&self, txs: Vec<Vec<u8>>) {
        if let Some(send) = self.send.lock().as_ref() {
            send(txs);
        }
    }
}

/// Tells the consensus driver that transactions are ready, at most once until it looks.
#[derive(Default)]
pub(crate) struct Wakeup {
    pending: std::sync::atomic::AtomicBool,
    notify: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl Wakeup {
    pub fn set(&self, notify: Box<dyn Fn() + Send + Sync>) {
        *self.notify.lock() = Some(notify);
    }

    pub fn notify(&self) {
        if !self.pending.swap(true, std::sync::atomic::Ordering::AcqRel)
            && let Some(notify) = self.notify.lock().as_ref()
        {
            notify();
        }
    }

    /// The driver looked: the next admission notifies again.
    pub fn clear(&self) {
        self.pending.store(false, std::sync::atomic::Ordering::Release);
    }
}

pub(crate) struct Chain {
    storage: Storage,
    genesis: Genesis,
    config: ChainConfig,
    tree: Mutex<SparseMerkleTree>,
    head: RwLock<Head>,
    head_watch: tokio::sync::watch::Sender<u64>,
    commit_lock: Mutex<()>,
    pub mempool: Mempool,
    pub metrics: Metrics,
    pub wakeup: Wakeup,
    pub gossip: Gossip,
    /// Admitted transactions, so a restart forgets none (`journal.rs`).
    journal: Journal,
    /// What the journal held at open, to admit again (`replay_journal`).
    journaled: Mutex<Vec<SignedTransaction>>,
    /// Why block production stopped (a certified block disagreed with our state).
    halted: Mutex<Option<String>>,
    /// `validator` or `observer`, once consensus starts.
    pub role: Mutex<Option<String>>,
}

fn decode_record<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    match codec::decode(bytes, STATE_VALUE_BYTES_MAX) {
        Ok(record) => record,
        Err(error) => panic!("stored state does not decode: {error}"),
    }
}

impl Chain {
    /// Open the chain in `db_path`, writing `genesis` first if the database is new. A
    /// database made from another genesis is refused.
    pub fn open(db_path: &Path, genesis: Genesis, sync_writes: bool) -> Result<Arc<Chain>, Error> {
        let storage = Storage::open(db_path, sync_writes).map_err(|error| {
            Error::new(
                ErrorCode::Unavailable,
                format!("cannot open {}: {error}", db_path.display()),
            )
        })?;
        let config = genesis.config()?;
        let algorithm = config.hash_algorithm;
        let mut tree = SparseMerkleTree::new(algorithm);
        let head = match storage.head() {
            Some(head) => {
                let stored = storage.genesis_json().map(|bytes| Genesis::from_json(&bytes));
                if stored.as_ref().and_then(|g| g.as_ref().ok()) != Some(&genesis) {
                    return Err(Error::new(
                        ErrorCode::BadRequest,
                        "the data directory holds a chain with another genesis",
                    ));
                }
                let block_zero = storage.block(0).map(|stored| stored.block.header.hash(algorithm));
                if block_zero != Some(config.genesis_hash) {
                    // Before ADR 0042 block 0 did not commit to the genesis state, and stored
                    // transactions bound a chain id: such a chain cannot be resumed.
                    return Err(Error::new(
                        ErrorCode::BadRequest,
                        format!(
                            "block 0 in the data directory is not this genesis's (hash {}); a data directory made before genesis hashes (ADR 0042) must be started anew",
                            config.genesis_hash
                        ),
                    ));
                }
                let mut changes = Vec::new();
                storage.for_each_state(|key, value| changes.push((tree.key_hash(key), Some(tree.value_hash(value)))));
                tree.update(changes);
                assert_eq!(
                    tree.root(),
                    head.state_root,
                    "state does not match the committed state root"
                );
                head
            }
            None => {
                let head = Self::write_genesis(&storage, &genesis, &mut tree)?;
                assert_eq!(
                    head.block_hash, config.genesis_hash,
                    "block 0 is the genesis hash's header"
                );
                head
            }
        };
        let (journal, journaled) = Journal::open(&db_path.with_file_name("pool.journal"))?;
        let (head_watch, _) = tokio::sync::watch::channel(head.height);
        Ok(Arc::new(Chain {
            storage,
            genesis,
            config,
            tree: Mutex::new(tree),
            head: RwLock::new(head),
            head_watch,
            commit_lock: Mutex::new(()),
            mempool: Mempool::default(),
            metrics: Metrics::default(),
            wakeup: Wakeup::default(),
            gossip: Gossip::default(),
            journal,
            journaled: Mutex::new(journaled),
            halted: Mutex::new(None),
            role: Mutex::new(None),
        }))
    }

    fn write_genesis(storage: &Storage, genesis: &Genesis, tree: &mut SparseMerkleTree) -> Result<Head, Error> {
        let algorithm = genesis.hash_algorithm;
        let writes = genesis.state()?;
        tree.update(
            writes
                .iter()
                .map(|(k, v)| (tree.key_hash(k), v.as_ref().map(|v| tree.value_hash(v))))
                .collect(),
        );
        let header = genesis.header(tree.root());
        let block_hash = header.hash(algorithm);
        let head = Head {
            height: 0,
            block_hash,
            timestamp_ms: header.timestamp_ms,
            state_root: tree.root(),
        };
        let stored = StoredBlock {
            block: Block { header, txs: vec![] },
            certificate: Certificate {
                height: 0,
                block_hash,
                epoch: 0,
                view: 0,
                parent_view: 0,
                parent_digest: Hash::ZERO,
                finality: Vec::new(),
            },
        };
        let commit = BlockCommit {
            stored: &stored,
            tx_hashes: &[],
            indexed: &[],
            receipts: &[],
            writes: &writes,
            history: &[],
            head: &head,
        };
        storage.commit_genesis(&genesis.to_json(), &commit);
        Ok(head)
    }

    /// Admit again what the journal held at open (committed, expired or otherwise stale
    /// transactions are refused as usual), then rewrite the journal from the pool. Returns
    /// (admitted, dropped).
    pub fn replay_journal(&self) -> Result<(usize, usize), Error> {
        let journaled = std::mem::take(&mut *self.journaled.lock());
        let total = journaled.len();
        // In nonce order per sender, so parked transactions find their predecessors.
        let mut journaled = journaled;
        journaled.sort_by(|a, b| (&a.tx.sender, a.tx.nonce).cmp(&(&b.tx.sender, b.tx.nonce)));
        let admitted = journaled
            .into_iter()
            .filter(|signed| self.admit(signed.clone(), false).is_ok())
            .count();
        self.journal.rewrite(|| self.mempool.all_bytes())?;
        Ok((admitted, total - admitted))
    }

    /// Rewrite the journal from the pool once it has grown past `JOURNAL_BYTES_MAX`.
    pub fn compact_journal(&self) -> Result<(), Error> {
        if self.journal.bytes() > JOURNAL_BYTES_MAX {
            self.journal.rewrite(|| self.mempool.all_bytes())?;
        }
        Ok(())
    }

    pub fn head(&self) -> Head {
        self.head.read().clone()
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn hash_algorithm(&self) -> corridor_sdk::HashAlgorithm {
        self.config.hash_algorithm
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn subscribe_height(&self) -> tokio::sync::watch::Receiver<u64> {
        self.head_watch.subscribe()
    }

    fn account_record(&self, id: &AccountId) -> Option<AccountRecord> {
        self.storage
            .get(&StateKey::Account(id.clone()).to_bytes())
            .map(|bytes| decode_record(&bytes))
    }

    /// The committed keys and threshold of `id`, whose record is `record` (ADR 0043).
    fn signer_set(&self, id: &AccountId, record: &AccountRecord) -> SignerSet {
        self.storage.get(&StateKey::Signers(id.clone()).to_bytes()).map_or_else(
            || SignerSet::single(record.public_key.clone()),
            |bytes| decode_record(&bytes),
        )
    }

    // --- admission ------------------------------------------------------------------------

    /// Admit one transaction into the mempool, or refuse it with a code. `signature_checked`
    /// is true when the caller already verified it (batch submission).
    /// (Timed whole as `Stage::Pool`, its one signature check included.)
    pub fn admit(&self, signed: SignedTransaction, signature_checked: bool) -> Result<Hash, Error> {
        let _timer = self.metrics.stages.time(Stage::Pool);
        let result = self
            .cheap_checks(&signed)
            .and_then(|checked| self.admit_checked(signed, checked, signature_checked))
            .map(|(hash, bytes)| {
                self.journal_append(&[&bytes]);
                self.gossip.send(vec![bytes]);
                hash
            });
        self.count_admission(&result);
        result
    }

    /// Before a submission is answered: a restart must not forget what it admitted. A node
    /// that cannot write its journal stops rather than accept what it may forget.
    fn journal_append(&self, records: &[&[u8]]) {
        if let Err(error) = self.journal.append(records) {
            panic!("{error}");
        }
    }

    fn count_admission(&self, result: &Result<Hash, Error>) {
        match result {
            Ok(_) => {
                self.metrics
                    .txs_admitted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.wakeup.notify();
            }
            Err(error) => self.metrics.rejected(error.code),
        }
    }

    /// The checks that cost no signature verification, in the order every path applies them:
    /// chain, duplicate, expiry, sender exists, key is the sender's, nonce window. Returns the
    /// transaction's bytes, hash, the time used and the sender's record.
    fn cheap_checks(&self, signed: &SignedTransaction) -> Result<Checked, Error> {
        let bytes = signed.to_bytes();
        let hash = self.config.hash_algorithm.digest(&bytes);
        let tx = &signed.tx;
        if tx.genesis_hash != self.config.genesis_hash {
            return Err(Error::new(
                ErrorCode::WrongChain,
                format!(
                    "the transaction is for the chain with genesis hash {}; this is {} with genesis hash {}",
                    tx.genesis_hash, self.config.chain_id, self.config.genesis_hash
                ),
            ));
        }
        if self.mempool.contains(&hash) || self.storage.tx_location(&hash).is_some() {
            return Err(Error::new(
                ErrorCode::Duplicate,
                format!("transaction {hash} was already submitted"),
            ));
        }
        let now = now_ms().max(self.head.read().timestamp_ms);
        if tx.expires_at_ms < now {
            return Err(Error::new(
                ErrorCode::Expired,
                format!("expired at {} ms; it is {now} ms", tx.expires_at_ms),
            ));
        }
        if tx.expires_at_ms > now.saturating_add(TX_EXPIRY_AHEAD_MS_MAX) {
            return Err(Error::new(
                ErrorCode::ExpiryTooFar,
                format!("expiry more than {TX_EXPIRY_AHEAD_MS_MAX} ms ahead"),
            ));
        }
        let sender = self
            .account_record(&tx.sender)
            .ok_or_else(|| Error::new(ErrorCode::UnknownAccount, format!("no account {}", tx.sender)))?;
        signed.check_signers_shape()?;
        self.signer_set(&tx.sender, &sender)
            .authorize(&tx.sender, signed.signers())?;
        if tx.nonce < sender.next_nonce {
            return Err(Error::new(
                ErrorCode::NonceTooLow,
                format!("nonce {} is used; next is {}", tx.nonce, sender.next_nonce),
            ));
        }
        if tx.nonce >= sender.next_nonce + NONCE_WINDOW_MAX {
            return Err(Error::new(
                ErrorCode::NonceTooHigh,
                format!(
                    "nonce {} is more than {NONCE_WINDOW_MAX} ahead of {}",
                    tx.nonce, sender.next_nonce
                ),
            ));
        }
        Ok((bytes, hash, now, sender))
    }

    /// Admission after `cheap_checks` passed: the signature (unless a batch verified it), the
    /// key proof, the dry run, the insert.
    /// Returns the hash and canonical bytes; the caller journals them before answering.
    fn admit_checked(
        &self,
        signed: SignedTransaction,
        checked: Checked,
        signature_checked: bool,
    ) -> Result<(Hash, Vec<u8>), Error> {
        let (bytes, hash, now, sender) = checked;
        let tx = &signed.tx;
        if signature_checked {
            // Batched paths verify the sender's signature; a new key's proof is checked here.
            signed.tx.verify_key_proof()?;
        } else {
            signed.verify_signature()?;
        }
        if tx.nonce == sender.next_nonce && !self.mempool.has_sender(&tx.sender) {
            check_transaction(&self.storage, &self.config, &signed, now)?;
        }
        let sender_id = signed.tx.sender.clone();
        let lane = match self.config.is_authority(&sender_id) {
            true => Lane::Priority,
            false => Lane::Normal,
        };
        self.mempool
            .insert_in(lane, hash, Arc::new(signed), bytes.len(), sender.next_nonce, now_ms())?;
        // A block may have committed since the read above; see `observe_committed_nonce`.
        if let Some(now) = self.account_record(&sender_id)
            && now.next_nonce > sender.next_nonce
        {
            self.mempool.observe_committed_nonce(&sender_id, now.next_nonce);
        }
        Ok((hash, bytes))
    }

    /// Admit many: the cheap checks first (as single admission applies them, with the same
    /// codes), then the signatures of those that passed, in parallel batches, then each is
    /// admitted in order. One result per input, in order.
    pub fn admit_many(&self, txs: Vec<Result<SignedTransaction, Error>>) -> Vec<Result<Hash, Error>> {
        self.admit_batch(txs, true)
    }

    /// Admit transactions a peer gossiped: as `admit_many`, without gossiping them again
    /// (every validator hears each node's gossip directly).
    pub fn admit_from_peer(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, Error>> {
        self.admit_batch(txs.into_iter().map(Ok).collect(), false)
    }

    fn admit_batch(&self, txs: Vec<Result<SignedTransaction, Error>>, gossip: bool) -> Vec<Result<Hash, Error>> {
        let stages = &self.metrics.stages;
        let txs: Vec<Result<(SignedTransaction, Checked), Error>> = txs
            .into_par_iter()
            .map_init(
                || stages.time(Stage::Pool),
                |_timer, tx| {
                    let signed = tx?;
                    let checked = self.cheap_checks(&signed)?;
                    Ok((signed, checked))
                },
            )
            .collect();
        let messages: Vec<Option<Vec<u8>>> = txs
            .par_iter()
            .map_init(
                || stages.time(Stage::Verify),
                |_timer, tx| tx.as_ref().ok().map(|(signed, _)| signed.tx.signing_bytes()),
            )
            .collect();
        let indexed: Vec<usize> = (0..txs.len()).filter(|i| txs[*i].is_ok()).collect();
        let verdicts: Vec<(usize, bool)> = indexed
            .par_chunks(VERIFY_BATCH_TXS)
            .flat_map_iter(|chunk| {
                let _timer = stages.time(Stage::Verify);
                let items: Vec<(&SignedTransaction, &[u8])> = chunk
                    .iter()
                    .map(|&i| {
                        let (signed, _) = txs[i].as_ref().expect("filtered to Ok");
                        let message = messages[i].as_deref().expect("Ok transactions have messages");
                        (signed, message)
                    })
                    .collect();
                chunk.iter().copied().zip(verify_signatures(&items)).collect::<Vec<_>>()
            })
            .collect();
        let verified: BTreeMap<usize, bool> = verdicts.into_iter().collect();
        let _timer = stages.time(Stage::Pool);
        let results: Vec<Result<(Hash, Vec<u8>), Error>> = txs
            .into_iter()
            .enumerate()
            .map(|(i, tx)| {
                let (signed, checked) = tx.inspect_err(|error| self.metrics.rejected(error.code))?;
                if verified.get(&i) != Some(&true) {
                    self.metrics.rejected(ErrorCode::BadSignature);
                    return Err(Error::new(ErrorCode::BadSignature, "signature does not verify"));
                }
                let result = self.admit_checked(signed, checked, true);
                self.count_admission(&result.as_ref().map(|(hash, _)| *hash).map_err(Clone::clone));
                result
            })
            .collect();
        // One journal write for the whole batch, before it is answered.
        let admitted: Vec<&[u8]> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, b)| b.as_slice())
            .collect();
        self.journal_append(&admitted);
        if gossip && !admitted.is_empty() {
            self.gossip.send(admitted.iter().map(|bytes| bytes.to_vec()).collect());
        }
        results.into_iter().map(|r| r.map(|(hash, _)| hash)).collect()
    }

    // --- queries --------------------------------------------------------------------------

    pub fn status(&self) -> Status {
        let head = self.head();
        Status {
            chain_id: self.config.chain_id.clone(),
            genesis_hash: self.config.genesis_hash,
            hash_algorithm: self.config.hash_algorithm,
            height: head.height,
            latest_block_hash: head.block_hash,
            latest_block_time_ms: head.timestamp_ms,
            state_root: head.state_root,
            mempool_txs: self.mempool.len(),
            validators: self.config.validators.iter().map(|v| v.id.clone()).collect(),
            node_version: env!("CARGO_PKG_VERSION").into(),
            halted: self.halted(),
            role: self.role.lock().clone(),
            validator_set: self
                .genesis
                .validators
                .iter()
                .map(|v| corridor_sdk::api::ValidatorEntry {
                    id: v.id.clone(),
                    public_key: v.public_key.clone(),
                    network_key: v.network_key.clone(),
                })
                .collect(),
        }
    }

    pub fn account(&self, id: &AccountId) -> Option<AccountView> {
        let record = self.account_record(id)?;
        let signers = self.signer_set(id, &record);
        Some(AccountView {
            id: id.clone(),
            keys: signers.keys,
            threshold: signers.threshold,
            frozen: record.is_frozen(),
            frozen_by: record.frozen_by,
            public_key: record.public_key,
            next_nonce: record.next_nonce,
            sponsor: id.sponsor(),
            balances: record.balances,
        })
    }

    /// The account's record and its proof, consistent with one head (taken under the commit
    /// lock, so the tree, the state and the head agree).
    pub fn account_proof(&self, id: &AccountId) -> AccountProof {
        let _commit = self.commit_lock.lock();
        let head = self.head();
        let key = StateKey::Account(id.clone()).to_bytes();
        let record = self.storage.get(&key);
        let tree = self.tree.lock();
        let proof = tree.prove(&tree.key_hash(&key));
        AccountProof {
            account: id.clone(),
            height: head.height,
            block_hash: head.block_hash,
            state_root: head.state_root,
            record: record.map(hex::encode),
            proof,
        }
    }

    pub fn key_owner(&self, key: &PublicKey) -> Option<AccountId> {
        self.storage
            .get(&StateKey::KeyOwner(key.clone()).to_bytes())
            .map(|bytes| decode_record(&bytes))
    }

    pub fn currencies(&self) -> Vec<CurrencyView> {
        let mut views = Vec::new();
        for currency in &self.genesis.currencies {
            let key = StateKey::Currency(currency.code.clone()).to_bytes();
            if let Some(bytes) = self.storage.get(&key) {
                let record: CurrencyRecord = decode_record(&bytes);
                views.push(CurrencyView {
                    code: currency.code.clone(),
                    scale: record.scale,
                    issuer: record.issuer,
                    supply: record.supply,
                    transfer_limit: record.transfer_limit,
                });
            }
        }
        views
    }

    /// Every FX pair with posts, with its oracle rate and quotes as of the head's block time.
    pub fn fx_rates(&self) -> corridor_sdk::fx::RatesView {
        let codes: Vec<_> = self.genesis.currencies.iter().map(|c| c.code.clone()).collect();
        let pairs: Vec<_> = codes
            .iter()
            .flat_map(|sell| {
                codes
                    .iter()
                    .filter(move |buy| *buy != sell)
                    .map(move |buy| (sell.clone(), buy.clone()))
            })
            .collect();
        crate::ledger::fx::rates_view(&self.storage, &pairs, self.head().timestamp_ms)
    }

    pub fn contract(&self, id: u64) -> Option<corridor_sdk::contract::ContractView> {
        crate::ledger::contracts::view(&self.storage, id)
    }

    pub fn schedule(&self, id: u64) -> Option<corridor_sdk::schedule::ScheduleView> {
        crate::ledger::schedule::view(&self.storage, id)
    }

    pub fn schedules_of(&self, payer: &AccountId) -> Vec<corridor_sdk::schedule::ScheduleView> {
        crate::ledger::schedule::active_of(&self.storage, payer)
    }

    pub fn fx_lock(&self, id: u64) -> Option<corridor_sdk::fx::LockView> {
        crate::ledger::fx::lock_view(&self.storage, id, self.head().timestamp_ms)
    }

    /// A transaction's status with its signed bytes, and its sender (for scoping), or `None`
    /// if this node never heard of it.
    pub fn tx_view(&self, hash: &Hash) -> Option<(TxView, AccountId)> {
        if let Some(location) = self.storage.tx_location(hash) {
            let receipt = self.storage.receipt(location);
            let signed = self
                .storage
                .block(location.height)
                .and_then(|stored| stored.block.txs.into_iter().nth(location.index as usize));
            let signed = signed.expect("an indexed transaction is in its block");
            let sender = signed.tx.sender.clone();
            return Some((
                TxView {
                    tx_hash: *hash,
                    status: TxStatus::Finalized,
                    receipt,
                    error: None,
                    tx: Some(hex::encode(signed.to_bytes())),
                },
                sender,
            ));
        }
        if let Some(signed) = self.mempool.get(hash) {
            let view = TxView {
                tx_hash: *hash,
                status: TxStatus::Pending,
                receipt: None,
                error: None,
                tx: Some(hex::encode(signed.to_bytes())),
            };
            return Some((view, signed.tx.sender.clone()));
        }
        let (sender, error) = self.mempool.rejection(hash)?;
        let view = TxView {
            tx_hash: *hash,
            status: TxStatus::Rejected,
            receipt: None,
            error: Some(error),
            tx: None,
        };
        Some((view, sender))
    }

    // --- roles (issue 9) --------------------------------------------------------------------

    /// What transactions, key proofs and signed requests for this chain bind (ADR 0042).
    pub fn genesis_hash(&self) -> Hash {
        self.config.genesis_hash
    }

    pub fn is_regulator(&self, id: &AccountId) -> bool {
        self.config.regulators.contains(id)
    }

    /// The currencies `id` issues (empty unless it is a central bank).
    pub fn issued_by(&self, id: &AccountId) -> std::collections::BTreeSet<corridor_sdk::CurrencyCode> {
        self.genesis
            .currencies
            .iter()
            .filter(|currency| &currency.issuer == id)
            .map(|currency| currency.code.clone())
            .collect()
    }

    pub fn block_view(&self, height: u64) -> Option<BlockView> {
        let stored = self.storage.block(height)?;
        let algorithm = self.config.hash_algorithm;
        Some(BlockView {
            hash: stored.block.header.hash(algorithm),
            tx_hashes: stored.block.txs.iter().map(|tx| tx.hash(algorithm)).collect(),
            header: stored.block.header,
            certificate: stored.certificate,
        })
    }

    pub fn history(&self, account: &AccountId, before: u64, limit: usize) -> HistoryPage {
        let entries: Vec<HistoryEntry> = self
            .storage
            .history(account, before, limit)
            .into_iter()
            .map(|(sequence, record)| HistoryEntry { sequence, record })
            .collect();
        let next_before = if entries.len() == limit {
            entries.last().map(|e| e.sequence)
        } else {
            None
        };
        HistoryPage { entries, next_before }
    }

    /// The events of the block at `height`, in order.
    pub fn events_at(&self, height: u64) -> Vec<EventRecord> {
        self.storage
            .block_receipts(height)
            .into_iter()
            .flat_map(|receipt| {
                let (height, tx_hash, tx_index) = (receipt.height, receipt.tx_hash, receipt.index);
                receipt
                    .events
                    .into_iter()
                    .enumerate()
                    .map(move |(event_index, event)| EventRecord {
                        height,
                        tx_hash,
                        tx_index,
                        event_index: u32::try_from(event_index).expect("events per transaction are bounded"),
                        event,
                    })
            })
            .collect()
    }

    /// Sum of every balance per currency, over the whole state (for tests and audits; walks
    /// every account).
    pub fn audit_conservation(&self) -> Result<(), String> {
        let mut totals: BTreeMap<String, rust_decimal::Decimal> = BTreeMap::new();
        self.storage.for_each_state(|key, value| {
            if key.starts_with(b"a\0") {
                let record: AccountRecord = decode_record(value);
                for (code, amount) in record.balances {
                    *totals.entry(code.to_string()).or_default() += amount.decimal();
                }
            }
            for (code, amount) in crate::ledger::held(key, value) {
                *totals.entry(code.to_string()).or_default() += amount.decimal();
            }
        });
        for currency in self.currencies() {
            let total = totals.get(currency.code.as_str()).copied().unwrap_or_default();
            if total != currency.supply.decimal() {
                return Err(format!(
                    "{}: balances sum to {total}, supply is {}",
                    currency.code, currency.supply
                ));
            }
        }
        Ok(())
    }
}

impl Chain {
    /// Our state root after the block at `height`, or `None` if we have not executed it.
    fn root_at(&self, height: u64) -> Option<Hash> {
        let head = self.head();
        match height.cmp(&head.height) {
            std::cmp::Ordering::Greater => None,
            std::cmp::Ordering::Equal => Some(head.state_root),
            std::cmp::Ordering::Less => self.storage.state_root_at(height),
        }
    }

    /// The shape checks of a proposal that need no state: chain, link to the parent, time,
    /// counts, bytes, duplicates, transactions root. Returns the transactions' hashes.
    fn check_proposal_shape(&self, block: &Block, parent: &Parent, now_ms: u64) -> Result<Vec<Hash>, String> {
        let header = &block.header;
        let algorithm = self.config.hash_algorithm;
        if header.version != corridor_sdk::block::BLOCK_VERSION || header.chain_id != self.config.chain_id {
            return Err("wrong chain or block version".into());
        }
        if header.height != parent.height + 1 || header.parent_hash != parent.block_hash {
            return Err(format!("does not extend {} ({})", parent.height, parent.block_hash));
        }
        if header.timestamp_ms <= parent.timestamp_ms {
            return Err(format!(
                "time {} is not after its parent's {}",
                header.timestamp_ms, parent.timestamp_ms
            ));
        }
        let drift_ms_max = self.genesis.block_time_drift_ms_max;
        if header.timestamp_ms > now_ms.saturating_add(drift_ms_max) {
            return Err(format!(
                "time {} is more than {drift_ms_max} ms ahead of ours ({now_ms})",
                header.timestamp_ms
            ));
        }
        if header.state_height < parent.state_height || header.state_height > parent.height {
            return Err(format!(
                "state height {} outside [{}, {}]",
                header.state_height, parent.state_height, parent.height
            ));
        }
        if block.txs.len() > BLOCK_TXS_MAX || header.tx_count as usize != block.txs.len() {
            return Err("transaction count".into());
        }
        if let Some(error) = block.txs.iter().find_map(|tx| tx.tx.check_shape().err()) {
            return Err(format!("a transaction is malformed: {error}"));
        }
        if block
            .txs
            .iter()
            .any(|tx| tx.tx.genesis_hash != self.config.genesis_hash)
        {
            return Err("a transaction is for another chain (genesis hash)".into());
        }
        if let Some(tx) = block.txs.iter().find(|tx| tx.tx.expires_at_ms < header.timestamp_ms) {
            return Err(format!(
                "a transaction of {} expired before the block time",
                tx.tx.sender
            ));
        }
        let hashes: Vec<Hash> = block.txs.par_iter().map(|tx| tx.hash(algorithm)).collect();
        let unique: std::collections::HashSet<&Hash> = hashes.iter().collect();
        if unique.len() != hashes.len() || hashes.iter().any(|hash| self.storage.tx_location(hash).is_some()) {
            return Err("a transaction appears twice or was already committed".into());
        }
        if merkle_root(algorithm, &hashes) != header.txs_root {
            return Err("transactions root".into());
        }
        Ok(hashes)
    }

    /// Nonces against committed state: a transaction below its sender's committed nonce can
    /// never execute. (Those in our pool were checked at admission and are kept above it.)
    fn check_proposal_nonces(&self, block: &Block, hashes: &[Hash]) -> Result<(), String> {
        let mut committed: BTreeMap<&AccountId, u64> = BTreeMap::new();
        let unknown = hashes
            .iter()
            .zip(&block.txs)
            .filter(|(hash, _)| !self.mempool.contains(hash));
        for (_, signed) in unknown {
            let sender = &signed.tx.sender;
            let next = match committed.get(sender) {
                Some(next) => *next,
                None => {
                    let next = self.account_record(sender).map_or(0, |record| record.next_nonce);
                    committed.insert(sender, next);
                    next
                }
            };
            if signed.tx.nonce < next {
                return Err(format!(
                    "{}'s nonce {} is used; next is {next}",
                    sender, signed.tx.nonce
                ));
            }
        }
        Ok(())
    }

    /// Signatures not verified at admission, in parallel batches.
    fn check_proposal_signatures(&self, block: &Block, hashes: &[Hash]) -> bool {
        let unverified: Vec<usize> = (0..block.txs.len())
            .filter(|i| !self.mempool.contains(&hashes[*i]))
            .collect();
        unverified.par_chunks(VERIFY_BATCH_TXS).all(|chunk| {
            let _timer = self.metrics.stages.time(Stage::Verify);
            let messages: Vec<Vec<u8>> = chunk.iter().map(|&i| block.txs[i].tx.signing_bytes()).collect();
            let items: Vec<(&SignedTransaction, &[u8])> = chunk
                .iter()
                .zip(&messages)
                .map(|(&i, message)| (&block.txs[i], message.as_slice()))
                .collect();
            verify_signatures(&items).into_iter().all(|ok| ok)
                && chunk.iter().all(|&i| block.txs[i].tx.verify_key_proof().is_ok())
        })
    }

    /// Why block production stopped, if it did: a certified block disagreed with our state.
    pub fn halted(&self) -> Option<String> {
        self.halted.lock().clone()
    }

    pub fn halt(&self, why: String) {
        tracing::error!("block production halted: {why}");
        self.metrics.halted.store(1, std::sync::atomic::Ordering::Relaxed);
        *self.halted.lock() = Some(why);
    }
}

/// Every signature of each transaction (with its signing bytes) in one batch: one verdict per
/// transaction, true when all of its signatures verify.
fn verify_signatures(txs: &[(&SignedTransaction, &[u8])]) -> Vec<bool> {
    let mut items = Vec::with_capacity(txs.len());
    let mut owners = Vec::with_capacity(txs.len());
    for (index, (signed, message)) in txs.iter().enumerate() {
        for (public_key, signature) in signed.signatures() {
            items.push(BatchItem {
                public_key,
                message,
                signature,
            });
            owners.push(index);
        }
    }
    let mut verdicts = vec![true; txs.len()];
    for (ok, index) in verify_batch(&items).into_iter().zip(owners) {
        verdicts[index] &= ok;
    }
    verdicts
}

impl Application for Chain {
    fn propose(&self, parent: &Parent, proposer: &AccountId, now_ms: u64, empty_ok: bool) -> Option<Block> {
        let head = self.head();
        let timestamp_ms = now_ms.max(parent.timestamp_ms + 1);
        let taken = self
            .mempool
            .take_ready(BLOCK_TXS_MAX, PROPOSAL_TXS_BYTES_MAX, timestamp_ms);
        if taken.is_empty() && !empty_ok {
            return None;
        }
        let hashes: Vec<Hash> = taken.iter().map(|(hash, _)| *hash).collect();
        // Our newest executed state; the parent is at or above it.
        let state_height = head.height.max(parent.state_height).min(parent.height);
        let state_root = self.root_at(state_height).expect("the state height is executed");
        let header = BlockHeader {
            version: corridor_sdk::block::BLOCK_VERSION,
            chain_id: self.config.chain_id.clone(),
            height: parent.height + 1,
            parent_hash: parent.block_hash,
            timestamp_ms,
            proposer: proposer.clone(),
            tx_count: u32::try_from(taken.len()).expect("BLOCK_TXS_MAX fits u32"),
            txs_root: merkle_root(self.config.hash_algorithm, &hashes),
            state_root,
            state_height,
        };
        let txs = taken
            .into_iter()
            .map(|(_, signed)| Arc::unwrap_or_clone(signed))
            .collect();
        Some(Block { header, txs })
    }

    fn verify_proposal(&self, block: &Block, parent: &Parent, now_ms: u64) -> Result<(), Refusal> {
        let header = &block.header;
        let refuse = |why: String| {
            self.metrics
                .proposals_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!("no vote for proposal {} by {}: {why}", header.height, header.proposer);
            Refusal::Invalid(Error::new(
                ErrorCode::BadBlock,
                format!("proposal {}: {why}", header.height),
            ))
        };
        let hashes = self.check_proposal_shape(block, parent, now_ms).map_err(refuse)?;
        match self.root_at(header.state_height) {
            None => return Err(Refusal::Behind),
            Some(root) if root != header.state_root => {
                return Err(refuse(format!(
                    "state root {} at {} differs from ours {root}",
                    header.state_root, header.state_height
                )));
            }
            Some(_) => {}
        }
        self.check_proposal_nonces(block, &hashes).map_err(refuse)?;
        if !self.check_proposal_signatures(block, &hashes) {
            return Err(refuse("a signature does not verify".into()));
        }
        self.mempool.hold(&hashes);
        Ok(())
    }

    fn release(&self, block: &Block) {
        let algorithm = self.config.hash_algorithm;
        let hashes: Vec<Hash> = block.txs.iter().map(|tx| tx.hash(algorithm)).collect();
        self.mempool.release(&hashes);
        self.wakeup.notify();
    }

    fn finalize(&self, block: Block, certificate: Certificate) -> Result<Head, Error> {
        let _commit = self.commit_lock.lock();
        let started = Instant::now();
        let stages = &self.metrics.stages;
        let executing = stages.time(Stage::Execute);
        let algorithm = self.config.hash_algorithm;
        let head = self.head();
        let header = &block.header;
        if header.height != head.height + 1 || header.parent_hash != head.block_hash {
            return Err(Error::new(
                ErrorCode::BadBlock,
                format!("finalized block {} does not extend head {}", header.height, head.height),
            ));
        }
        let block_hash = header.hash(algorithm);
        assert_eq!(certificate.block_hash, block_hash, "the certificate is for this block");
        // A certified block that disagrees with our state: we or a quorum diverged.
        let ours = self.root_at(header.state_height);
        if ours != Some(header.state_root) {
            return Err(Error::new(
                ErrorCode::Diverged,
                format!(
                    "certified block {} names state root {} at {}; ours is {}",
                    header.height,
                    header.state_root,
                    header.state_height,
                    ours.map_or("unknown".into(), |root| root.to_string())
                ),
            ));
        }
        let tx_hashes: Vec<Hash> = block
            .txs
            .par_iter()
            .map_init(|| stages.time(Stage::Execute), |_timer, tx| tx.hash(algorithm))
            .collect();
        let verified = self.mempool.contains_all(&tx_hashes);
        let mut seen = std::collections::HashSet::with_capacity(tx_hashes.len());
        let prechecks: Vec<Precheck> = tx_hashes
            .iter()
            .zip(verified)
            .map(|(hash, signature_verified)| Precheck {
                signature_verified,
                duplicate: !seen.insert(*hash) || self.storage.tx_location(hash).is_some(),
            })
            .collect();
        let indexed: Vec<bool> = prechecks.iter().map(|p| !p.duplicate).collect();
        let output = execute_block(&self.storage, &self.config, &block, &tx_hashes, &prechecks);
        drop(executing);
        let state_root = {
            let _timer = stages.time(Stage::Root);
            let mut tree = self.tree.lock();
            let changes: Vec<(Hash, Option<Hash>)> = output
                .writes
                .par_iter()
                .map_init(
                    || stages.time(Stage::Root),
                    |_timer, (key, value)| (algorithm.digest(key), value.as_ref().map(|v| algorithm.digest(v))),
                )
                .collect();
            tree.update(changes);
            tree.root()
        };
        let new_head = Head {
            height: header.height,
            block_hash,
            timestamp_ms: header.timestamp_ms,
            state_root,
        };
        let stored = StoredBlock { block, certificate };
        let writing = stages.time(Stage::Write);
        self.storage.commit_block(&BlockCommit {
            stored: &stored,
            tx_hashes: &tx_hashes,
            indexed: &indexed,
            receipts: &output.receipts,
            writes: &output.writes,
            history: &output.history,
            head: &new_head,
        });
        *self.head.write() = new_head.clone();
        drop(writing);
        {
            let _timer = stages.time(Stage::Pool);
            self.mempool.committed(&tx_hashes, &output.next_nonces);
        }
        let failed = output
            .receipts
            .iter()
            .filter(|r| r.outcome != corridor_sdk::Outcome::Success)
            .count();
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.metrics.blocks_committed.fetch_add(1, relaxed);
        self.metrics.txs_finalized.fetch_add(tx_hashes.len() as u64, relaxed);
        self.metrics.txs_failed.fetch_add(failed as u64, relaxed);
        self.metrics
            .block_commit_micros
            .fetch_add(started.elapsed().as_micros() as u64, relaxed);
        self.head_watch.send_replace(new_head.height);
        Ok(new_head)
    }
}
