//! The admitted-pool journal: nothing answered `202` is forgotten by a restart (issue 9).
//!
//! Rules it keeps: a transaction's canonical bytes are appended (length-prefixed) before its
//! submission is answered, written to the operating system (a killed process loses nothing;
//! a power cut may lose the unsynced tail, as it may lose a client's unanswered request); at
//! start every journaled transaction is admitted again through the ordinary path (signature,
//! nonce, expiry: committed or stale ones are dropped), and the journal is then rewritten with
//! those still pending (until then the old records stay, so a crash during replay loses
//! nothing); when it grows past `JOURNAL_BYTES_MAX` it is rewritten from the pool.

use corridor_sdk::SignedTransaction;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::TX_BYTES_MAX;
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes the journal may grow to before it is rewritten from the pool.
pub(crate) const JOURNAL_BYTES_MAX: u64 = 256 * 1024 * 1024;

struct Open {
    file: std::fs::File,
    bytes: u64,
}

pub(crate) struct Journal {
    path: PathBuf,
    open: Mutex<Open>,
}

fn io(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::new(
        ErrorCode::Unavailable,
        format!("pool journal {}: {what}: {error}", path.display()),
    )
}

impl Journal {
    /// Open the journal at `path` and return it with the transactions it holds (those that
    /// decode; a torn last record from a crash mid-write is dropped).
    pub fn open(path: &Path) -> Result<(Journal, Vec<SignedTransaction>), Error> {
        let mut held = Vec::new();
        if let Ok(mut file) = std::fs::File::open(path) {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|error| io("cannot read", path, error))?;
            let mut rest = bytes.as_slice();
            while rest.len() >= 4 {
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if len > TX_BYTES_MAX || rest.len() < 4 + len {
                    break;
                }
                if let Ok(signed) = SignedTransaction::from_bytes(&rest[4..4 + len]) {
                    held.push(signed);
                }
                rest = &rest[4 + len..];
            }
        }
        // Appends go after what is there: until the caller rewrites the journal from the pool
        // (after admitting `held` again), a crash loses nothing.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| io("cannot open", path, error))?;
        let bytes = file.metadata().map_err(|error| io("cannot stat", path, error))?.len();
        let journal = Journal {
            path: path.to_path_buf(),
            open: Mutex::new(Open { file, bytes }),
        };
        Ok((journal, held))
    }

    /// Write `records` to a new file and put it in place of the journal.
    fn create(path: &Path, records: &[Vec<u8>]) -> Result<std::fs::File, Error> {
        let fresh = path.with_extension("new");
        let mut file = std::fs::File::create(&fresh).map_err(|error| io("cannot create", &fresh, error))?;
        for record in records {
            file.write_all(&frame(record))
                .map_err(|error| io("cannot write", &fresh, error))?;
        }
        file.sync_all().map_err(|error| io("cannot sync", &fresh, error))?;
        std::fs::rename(&fresh, path).map_err(|error| io("cannot rename", path, error))?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|error| io("cannot open", path, error))
    }

    /// Append admitted transactions' canonical bytes, in one write.
    pub fn append(&self, records: &[&[u8]]) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let mut framed = Vec::with_capacity(records.iter().map(|r| 4 + r.len()).sum());
        for record in records {
            assert!(record.len() <= TX_BYTES_MAX, "admitted transactions are bounded");
            framed.extend_from_slice(&frame(record));
        }
        let mut open = self.open.lock();
        open.file
            .write_all(&framed)
            .map_err(|error| io("cannot append", &self.path, error))?;
        open.bytes += framed.len() as u64;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.open.lock().bytes
    }

    /// Replace the journal with what `pending` returns (the pool's transactions), taken while
    /// appends wait: one admitted after the snapshot is appended to the new journal.
    pub fn rewrite(&self, pending: impl FnOnce() -> Vec<Vec<u8>>) -> Result<(), Error> {
        let mut open = self.open.lock();
        let pending = pending();
        open.file = Self::create(&self.path, &pending)?;
        open.bytes = pending.iter().map(|p| 4 + p.len() as u64).sum();
        Ok(())
    }
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let len = u32::try_from(bytes.len()).expect("bounded by TX_BYTES_MAX");
    [&len.to_le_bytes()[..], bytes].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_sdk::{AccountId, Hash, Operation, PrivateKey, Scheme, Transaction};

    #[test]
    fn journaled_transactions_come_back_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pool.journal");
        let key = PrivateKey::from_seed(Scheme::Ed25519, [3; 32]).expect("seed");
        let txs: Vec<SignedTransaction> = (0..3)
            .map(|nonce| {
                let op = Operation::freeze(AccountId::new("a@b").expect("id"));
                Transaction::new(Hash::ZERO, AccountId::new("regulator").expect("id"), nonce, 9, op).sign(&key)
            })
            .collect();
        {
            let (journal, held) = Journal::open(&path).expect("open");
            assert!(held.is_empty());
            for tx in &txs {
                journal.append(&[&tx.to_bytes()]).expect("append");
            }
        }
        // A crash mid-write leaves half a record.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(&[200, 0, 0, 0, 1, 2]).expect("torn");
        drop(file);
        let (journal, held) = Journal::open(&path).expect("reopen");
        assert_eq!(held, txs);
        assert!(journal.bytes() > 0, "the old records stay until the caller rewrites");
        journal.rewrite(|| vec![txs[1].to_bytes()]).expect("rewrite");
        drop(journal);
        let (_, held) = Journal::open(&path).expect("reopen");
        assert_eq!(held, vec![txs[1].clone()]);
    }
}
