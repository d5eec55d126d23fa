//! RocksDB storage. One write batch per block, synced before anyone hears of the block, so a
//! block reported finalized survives `kill -9` and power loss.
//!
//! Column families:
//! - `blocks`: height (u64 BE) → `StoredBlock` (block + certificate)
//! - `txs`: tx hash → `TxLocation` (height, index)
//! - `receipts`: height (u64 BE) ‖ index (u32 BE) → `Receipt`
//! - `state`: state key → record (see `ledger::records::StateKey`)
//! - `history`: account ‖ 0x00 ‖ sequence (u64 BE) → `EventRecord`
//! - `meta`: `head` → `Head`; `genesis` → genesis JSON; `root` ‖ height (u64 BE) → the state
//!   root after that block
//! - `consensus`: the consensus driver's safety state, and the blocks and certificates the
//!   replica asked it to keep (`driver.rs` owns the keys)

use crate::ledger::{StateReader, StateWrites};
use corridor_sdk::api::EventRecord;
use corridor_sdk::limits::{BLOCK_BYTES_MAX, STATE_VALUE_BYTES_MAX, TX_BYTES_MAX};
use corridor_sdk::{AccountId, Block, Certificate, Hash, Receipt, codec};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::Path;

const CF_BLOCKS: &str = "blocks";
const CF_TXS: &str = "txs";
const CF_RECEIPTS: &str = "receipts";
const CF_STATE: &str = "state";
const CF_HISTORY: &str = "history";
const CF_META: &str = "meta";
const CF_CONSENSUS: &str = "consensus";
const COLUMN_FAMILIES: [&str; 7] = [
    CF_BLOCKS,
    CF_TXS,
    CF_RECEIPTS,
    CF_STATE,
    CF_HISTORY,
    CF_META,
    CF_CONSENSUS,
];
const META_HEAD: &[u8] = b"head";
const META_GENESIS: &[u8] = b"genesis";
const META_ROOT: &[u8] = b"root";
/// Receipt bytes are bounded by the transaction they describe plus its events.
const RECEIPT_BYTES_MAX: usize = 4 * TX_BYTES_MAX + 64 * 1024;
const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredBlock {
    pub block: Block,
    pub certificate: Certificate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxLocation {
    pub height: u64,
    pub index: u32,
}

/// The latest finalized and executed block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub height: u64,
    pub block_hash: Hash,
    pub timestamp_ms: u64,
    /// The state root after executing this block.
    pub state_root: Hash,
}

/// Everything one finalized block changes, written atomically.
pub(crate) struct BlockCommit<'a> {
    pub stored: &'a StoredBlock,
    pub tx_hashes: &'a [Hash],
    /// Which transactions get a `txs` index entry: not a duplicate, whose hash already points
    /// at the committed original.
    pub indexed: &'a [bool],
    pub receipts: &'a [Receipt],
    pub writes: &'a StateWrites,
    pub history: &'a [(AccountId, u64, EventRecord)],
    pub head: &'a Head,
}

pub(crate) struct Storage {
    db: DB,
    sync_writes: bool,
}

fn decode_stored<T: DeserializeOwned>(what: &str, bytes: &[u8], limit_bytes: usize) -> T {
    match codec::decode(bytes, limit_bytes) {
        Ok(value) => value,
        Err(error) => panic!("stored {what} does not decode ({error}); the database is corrupt"),
    }
}

fn receipt_key(height: u64, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn root_key(height: u64) -> Vec<u8> {
    [META_ROOT, &height.to_be_bytes()].concat()
}

pub(crate) fn history_key(account: &AccountId, sequence: u64) -> Vec<u8> {
    [account.as_str().as_bytes(), &[0u8], &sequence.to_be_bytes()].concat()
}

impl Storage {
    /// Open or create the database. `sync_writes` is true except in tests that measure
    /// nothing about durability.
    pub fn open(path: &Path, sync_writes: bool) -> Result<Storage, rocksdb::Error> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES));
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
        let families = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, options.clone()));
        let db = DB::open_cf_descriptors(&options, path, families)?;
        Ok(Storage { db, sync_writes })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        match self.db.cf_handle(name) {
            Some(cf) => cf,
            None => panic!("column family {name} was created at open"),
        }
    }

    fn read(&self, family: &str, key: &[u8]) -> Option<Vec<u8>> {
        match self.db.get_cf(self.cf(family), key) {
            Ok(value) => value,
            Err(error) => panic!("RocksDB read from {family} failed: {error}"),
        }
    }

    fn write(&self, batch: WriteBatch) {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync_writes);
        if let Err(error) = self.db.write_opt(batch, &options) {
            // Continuing would let memory run ahead of disk.
            panic!("RocksDB write failed: {error}");
        }
    }

    pub fn head(&self) -> Option<Head> {
        self.read(CF_META, META_HEAD)
            .map(|bytes| decode_stored("head", &bytes, 1024))
    }

    pub fn genesis_json(&self) -> Option<Vec<u8>> {
        self.read(CF_META, META_GENESIS)
    }

    /// Commit one block: block, transaction index, receipts, state, history and head.
    pub fn commit_block(&self, commit: &BlockCommit<'_>) {
        self.write(self.block_batch(commit));
    }

    fn block_batch(&self, commit: &BlockCommit<'_>) -> WriteBatch {
        let height = commit.stored.block.header.height;
        assert_eq!(commit.head.height, height);
        assert_eq!(commit.tx_hashes.len(), commit.receipts.len());
        assert_eq!(commit.tx_hashes.len(), commit.indexed.len());
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_BLOCKS), height.to_be_bytes(), codec::encode(commit.stored));
        for (index, (hash, receipt)) in commit.tx_hashes.iter().zip(commit.receipts).enumerate() {
            let index = u32::try_from(index).expect("block transaction count fits u32");
            assert_eq!(&receipt.tx_hash, hash);
            if commit.indexed[index as usize] {
                batch.put_cf(self.cf(CF_TXS), hash.0, codec::encode(&TxLocation { height, index }));
            }
            batch.put_cf(self.cf(CF_RECEIPTS), receipt_key(height, index), codec::encode(receipt));
        }
        for (key, value) in commit.writes {
            match value {
                Some(value) => batch.put_cf(self.cf(CF_STATE), key, value),
                None => batch.delete_cf(self.cf(CF_STATE), key),
            }
        }
        for (account, sequence, record) in commit.history {
            batch.put_cf(
                self.cf(CF_HISTORY),
                history_key(account, *sequence),
                codec::encode(record),
            );
        }
        batch.put_cf(self.cf(CF_META), META_HEAD, codec::encode(commit.head));
        batch.put_cf(self.cf(CF_META), root_key(height), commit.head.state_root.0);
        batch
    }

    /// The state root after the block at `height`, if it is committed.
    pub fn state_root_at(&self, height: u64) -> Option<Hash> {
        let bytes = self.read(CF_META, &root_key(height))?;
        let bytes: [u8; 32] = match bytes.try_into() {
            Ok(bytes) => bytes,
            Err(_) => panic!("stored state root at {height} is not 32 bytes; the database is corrupt"),
        };
        Some(Hash(bytes))
    }

    /// Apply the consensus driver's puts and deletes in one synced batch.
    pub fn consensus_write(&self, puts: &[(Vec<u8>, Vec<u8>)], deletes: &[Vec<u8>]) {
        let mut batch = WriteBatch::default();
        for key in deletes {
            batch.delete_cf(self.cf(CF_CONSENSUS), key);
        }
        for (key, value) in puts {
            batch.put_cf(self.cf(CF_CONSENSUS), key, value);
        }
        self.write(batch);
    }

    pub fn consensus_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.read(CF_CONSENSUS, key)
    }

    /// Every consensus record whose key starts with `prefix`, in key order.
    pub fn consensus_scan(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let iterator = self
            .db
            .iterator_cf(self.cf(CF_CONSENSUS), IteratorMode::From(prefix, Direction::Forward));
        let mut records = Vec::new();
        for item in iterator {
            let (key, value) = match item {
                Ok(pair) => pair,
                Err(error) => panic!("RocksDB iteration failed: {error}"),
            };
            if !key.starts_with(prefix) {
                break;
            }
            records.push((key.to_vec(), value.to_vec()));
        }
        records
    }

    /// Write the genesis: its state, block 0 and head, with the genesis file itself, in one
    /// batch (a crash leaves either no chain or a whole one).
    pub fn commit_genesis(&self, genesis_json: &[u8], commit: &BlockCommit<'_>) {
        assert!(self.head().is_none(), "genesis over an existing chain");
        let mut batch = self.block_batch(commit);
        batch.put_cf(self.cf(CF_META), META_GENESIS, genesis_json);
        self.write(batch);
    }

    pub fn block(&self, height: u64) -> Option<StoredBlock> {
        self.read(CF_BLOCKS, &height.to_be_bytes())
            .map(|bytes| decode_stored("block", &bytes, BLOCK_BYTES_MAX))
    }

    pub fn tx_location(&self, hash: &Hash) -> Option<TxLocation> {
        self.read(CF_TXS, &hash.0)
            .map(|bytes| decode_stored("tx location", &bytes, 64))
    }

    pub fn receipt(&self, location: TxLocation) -> Option<Receipt> {
        self.read(CF_RECEIPTS, &receipt_key(location.height, location.index))
            .map(|bytes| decode_stored("receipt", &bytes, RECEIPT_BYTES_MAX))
    }

    /// All receipts of the block at `height`, in order.
    pub fn block_receipts(&self, height: u64) -> Vec<Receipt> {
        let start = receipt_key(height, 0);
        let iterator = self
            .db
            .iterator_cf(self.cf(CF_RECEIPTS), IteratorMode::From(&start, Direction::Forward));
        let mut receipts = Vec::new();
        for item in iterator {
            let (key, value) = match item {
                Ok(pair) => pair,
                Err(error) => panic!("RocksDB iteration failed: {error}"),
            };
            if key[..8] != height.to_be_bytes() {
                break;
            }
            receipts.push(decode_stored("receipt", &value, RECEIPT_BYTES_MAX));
        }
        receipts
    }

    /// Up to `limit` history entries of `account` with sequence below `before`, newest first.
    pub fn history(&self, account: &AccountId, before: u64, limit: usize) -> Vec<(u64, EventRecord)> {
        let prefix = [account.as_str().as_bytes(), &[0u8]].concat();
        let start = history_key(account, before);
        let iterator = self
            .db
            .iterator_cf(self.cf(CF_HISTORY), IteratorMode::From(&start, Direction::Reverse));
        let mut entries = Vec::new();
        for item in iterator {
            let (key, value) = match item {
                Ok(pair) => pair,
                Err(error) => panic!("RocksDB iteration failed: {error}"),
            };
            if !key.starts_with(&prefix) || key.len() != prefix.len() + 8 {
                break;
            }
            let sequence = u64::from_be_bytes(key[prefix.len()..].try_into().expect("8 bytes checked"));
            if sequence >= before {
                continue; // the seek lands on `before` itself when it exists
            }
            entries.push((sequence, decode_stored("history entry", &value, RECEIPT_BYTES_MAX)));
            if entries.len() >= limit {
                break;
            }
        }
        entries
    }

    /// Every (key, value) of the state, in key order.
    pub fn for_each_state(&self, mut visit: impl FnMut(&[u8], &[u8])) {
        for item in self.db.iterator_cf(self.cf(CF_STATE), IteratorMode::Start) {
            match item {
                Ok((key, value)) => visit(&key, &value),
                Err(error) => panic!("RocksDB iteration failed: {error}"),
            }
        }
    }
}

impl StateReader for Storage {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.read(CF_STATE, key);
        assert!(value.as_ref().is_none_or(|v| v.len() <= STATE_VALUE_BYTES_MAX));
        value
    }
}
