//! The node's append-only, hash-chained log of audited reads (ADR 0032).
//!
//! Rules it keeps: an entry is appended and synced to disk before the data it records is
//! served (persist before you speak); entries are only ever appended; at open the whole file
//! is read back and its chain verified, and a node whose log does not verify refuses to start.
//! One JSON line per `corridor_sdk::audit::AuditEntry`.

use crate::auth::{Caller, Role};
use corridor_sdk::AccountId;
use corridor_sdk::audit::{AUDIT_REQUEST_BYTES_MAX, AUDIT_SUBJECT_ALL, AuditEntry, AuditPage, verify_chain};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::hash::Hash;
use parking_lot::Mutex;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Bytes of one stored line; a longer one means the file is not ours.
const AUDIT_LINE_BYTES_MAX: usize = 4 * 1024;

struct Tail {
    file: std::fs::File,
    next_seq: u64,
    last_hash: Hash,
}

pub(crate) struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
}

fn unavailable(what: &str, path: &Path, error: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::Unavailable,
        format!("audit log {}: {what}: {error}", path.display()),
    )
}

/// Read every entry of the file at `path` (none if it does not exist).
fn read_entries(path: &Path) -> Result<Vec<AuditEntry>, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(unavailable("cannot open", path, error)),
    };
    let mut entries = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|error| unavailable("cannot read", path, error))?;
        if line.len() > AUDIT_LINE_BYTES_MAX {
            return Err(unavailable("line too long", path, line.len()));
        }
        let entry: AuditEntry = serde_json::from_str(&line).map_err(|error| unavailable("bad entry", path, error))?;
        entries.push(entry);
    }
    Ok(entries)
}

impl AuditLog {
    /// Open (or create) the log and verify its whole chain.
    pub fn open(path: &Path) -> Result<AuditLog, Error> {
        let entries = read_entries(path)?;
        if entries.first().is_some_and(|first| first.seq != 0) {
            return Err(unavailable("does not start at entry 0", path, ""));
        }
        verify_chain(&entries).map_err(|broken| unavailable("chain of hashes broken", path, broken))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| unavailable("cannot open", path, error))?;
        let tail = Tail {
            file,
            next_seq: entries.last().map_or(0, |e| e.seq + 1),
            last_hash: entries.last().map_or(Hash::ZERO, |e| e.hash),
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            tail: Mutex::new(tail),
        })
    }

    /// Append one entry and sync it. Called before the read it records is answered.
    pub fn record(
        &self,
        reader: &AccountId,
        subject: &str,
        request: &str,
        request_id: &str,
        time_ms: u64,
    ) -> Result<(), Error> {
        let mut request = request.to_owned();
        if request.len() > AUDIT_REQUEST_BYTES_MAX {
            let mut end = AUDIT_REQUEST_BYTES_MAX;
            while !request.is_char_boundary(end) {
                end -= 1;
            }
            request.truncate(end);
        }
        let mut tail = self.tail.lock();
        let hash = AuditEntry::compute_hash(
            tail.next_seq,
            time_ms,
            reader,
            subject,
            &request,
            request_id,
            &tail.last_hash,
        );
        let entry = AuditEntry {
            seq: tail.next_seq,
            time_ms,
            reader: reader.clone(),
            subject: subject.to_owned(),
            request,
            request_id: request_id.to_owned(),
            prev: tail.last_hash,
            hash,
        };
        let mut line = serde_json::to_vec(&entry).expect("audit entries serialize");
        assert!(line.len() <= AUDIT_LINE_BYTES_MAX, "audit entry fields are bounded");
        line.push(b'\n');
        tail.file
            .write_all(&line)
            .and_then(|()| tail.file.sync_data())
            .map_err(|error| unavailable("cannot append", &self.path, error))?;
        tail.next_seq += 1;
        tail.last_hash = hash;
        Ok(())
    }

    /// Entries after `after` (all with `None`) that `caller` may read, oldest first: a
    /// regulator reads all; a bank those about itself and its customers; an account those
    /// about itself; reads of everything (`*`) are shown to every institution.
    pub fn page(&self, caller: &Caller, after: Option<u64>, limit: usize) -> Result<AuditPage, Error> {
        let Caller::Account { id, role } = caller else {
            return Err(crate::auth::forbidden());
        };
        let visible = |entry: &AuditEntry| -> bool {
            if *role == Role::Regulator {
                return true;
            }
            if entry.subject == AUDIT_SUBJECT_ALL {
                return id.sponsor().is_none();
            }
            match AccountId::new(&entry.subject) {
                Ok(subject) => &subject == id || subject.sponsor().as_ref() == Some(id),
                Err(_) => false,
            }
        };
        // Hold the lock so the file is not read while a line is half written.
        let _tail = self.tail.lock();
        let mut entries: Vec<AuditEntry> = read_entries(&self.path)?
            .into_iter()
            .filter(|entry| after.is_none_or(|after| entry.seq > after))
            .filter(|entry| visible(entry))
            .take(limit + 1)
            .collect();
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_after = if more { entries.last().map(|e| e.seq) } else { None };
        Ok(AuditPage { entries, next_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("id")
    }

    #[test]
    fn appends_survive_reopen_and_tampering_stops_the_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let regulator = Caller::Account {
            id: id("regulator"),
            role: Role::Regulator,
        };
        {
            let log = AuditLog::open(&path).expect("open");
            log.record(
                &id("regulator"),
                "acme@icbc-cn",
                "GET /v1/accounts/acme@icbc-cn",
                "aa",
                1,
            )
            .expect("record");
            log.record(
                &id("pboc"),
                "harbour@boc-hk",
                "GET /v1/accounts/harbour@boc-hk",
                "bb",
                2,
            )
            .expect("record");
        }
        let log = AuditLog::open(&path).expect("reopen verifies");
        log.record(&id("regulator"), "*", "GET /v1/events", "cc", 3)
            .expect("record");
        let all = log.page(&regulator, None, 10).expect("page");
        assert_eq!(all.entries.len(), 3);
        assert_eq!(verify_chain(&all.entries), Ok(()));
        let icbc = Caller::Account {
            id: id("icbc-cn"),
            role: Role::Bank,
        };
        let subjects: Vec<String> = log
            .page(&icbc, None, 10)
            .expect("page")
            .entries
            .into_iter()
            .map(|e| e.subject)
            .collect();
        assert_eq!(subjects, vec!["acme@icbc-cn".to_string(), "*".to_string()]);
        let harbour = Caller::Account {
            id: id("harbour@boc-hk"),
            role: Role::Customer,
        };
        assert_eq!(log.page(&harbour, None, 10).expect("page").entries.len(), 1);
        assert!(log.page(&Caller::Anonymous, None, 10).is_err());
        let first = log.page(&regulator, None, 2).expect("page");
        assert_eq!(first.next_after, Some(1));
        assert_eq!(
            log.page(&regulator, first.next_after, 2).expect("page").entries.len(),
            1
        );
        drop(log);

        // Someone with disk access rewrites who read: the node refuses to open the log.
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replacen("\"pboc\"", "\"hkma\"", 1)).expect("write");
        let refused = AuditLog::open(&path).map(|_| ()).map_err(|e| e.code);
        assert_eq!(refused, Err(ErrorCode::Unavailable));
    }
}
