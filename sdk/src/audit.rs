//! The audit trail of reads (ADR 0032): who read whose data, when, by which request.
//!
//! Each entry commits to the one before it: `hash = SHA-256(canonical(seq, time_ms, reader,
//! subject, request, request_id, prev))`, and `prev` is the previous entry's `hash` (zero for
//! the first). Removing, reordering or editing an entry breaks every hash after it;
//! `verify_chain` checks a run of consecutive entries, `AuditEntry::verify` one entry.

use crate::codec;
use crate::hash::Hash;
use crate::ids::AccountId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The subject of a read that covers every account (a regulator's event stream).
pub const AUDIT_SUBJECT_ALL: &str = "*";
/// Entries in one `GET /v1/audit` page.
pub const AUDIT_PAGE_ENTRIES_MAX: usize = 1_000;
/// Bytes of an entry's `request` text (method, path and query; longer is cut).
pub const AUDIT_REQUEST_BYTES_MAX: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 0, 1, 2, ... with no gaps.
    pub seq: u64,
    /// The node's clock when it served the read (ms since the Unix epoch).
    pub time_ms: u64,
    /// Who read.
    pub reader: AccountId,
    /// Whose data: an account id, or `*` for everything.
    pub subject: String,
    /// `METHOD /path?query` as requested.
    pub request: String,
    /// Hex of SHA-256 of the request's signed bytes: the request, as the reader signed it.
    pub request_id: String,
    pub prev: Hash,
    pub hash: Hash,
}

impl AuditEntry {
    /// The hash an entry with these fields must carry.
    pub fn compute_hash(
        seq: u64,
        time_ms: u64,
        reader: &AccountId,
        subject: &str,
        request: &str,
        request_id: &str,
        prev: &Hash,
    ) -> Hash {
        let bytes = codec::encode(&(seq, time_ms, reader, subject, request, request_id, prev));
        Hash(Sha256::digest(&bytes).into())
    }

    /// Whether the entry's hash matches its contents.
    pub fn verify(&self) -> bool {
        self.hash
            == AuditEntry::compute_hash(
                self.seq,
                self.time_ms,
                &self.reader,
                &self.subject,
                &self.request,
                &self.request_id,
                &self.prev,
            )
    }
}

/// Check consecutive entries: each hash matches its contents, sequence numbers follow each
/// other, and each `prev` is the hash before it (the first entry of the log has a zero
/// `prev`). `Err` names the first entry that breaks the chain.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), String> {
    let mut previous: Option<&AuditEntry> = None;
    for entry in entries {
        if !entry.verify() {
            return Err(format!("entry {}: hash does not match its contents", entry.seq));
        }
        match previous {
            None if entry.seq == 0 && entry.prev != Hash::ZERO => {
                return Err("entry 0: prev is not zero".into());
            }
            Some(before) if entry.seq != before.seq + 1 || entry.prev != before.hash => {
                return Err(format!("entry {}: does not follow entry {}", entry.seq, before.seq));
            }
            _ => {}
        }
        previous = Some(entry);
    }
    Ok(())
}

/// Oldest first. Pass `next_after` as `after` for the next page; `None` when done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_after: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(count: u64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for seq in 0..count {
            let prev = entries.last().map_or(Hash::ZERO, |e| e.hash);
            let reader = AccountId::new("regulator").expect("id");
            let request = format!("GET /v1/accounts/acme@icbc-cn?n={seq}");
            let hash = AuditEntry::compute_hash(seq, 1_000 + seq, &reader, "acme@icbc-cn", &request, "ab", &prev);
            entries.push(AuditEntry {
                seq,
                time_ms: 1_000 + seq,
                reader,
                subject: "acme@icbc-cn".into(),
                request,
                request_id: "ab".into(),
                prev,
                hash,
            });
        }
        entries
    }

    /// Adversary: every way of rewriting history is caught.
    #[test]
    fn tampering_breaks_the_chain() {
        let entries = chain(5);
        assert_eq!(verify_chain(&entries), Ok(()));
        let mut edited = entries.clone();
        edited[2].reader = AccountId::new("pboc").expect("id");
        assert!(verify_chain(&edited).is_err());
        let mut removed = entries.clone();
        removed.remove(2);
        assert!(verify_chain(&removed).is_err());
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        assert!(verify_chain(&swapped).is_err());
        // Rehashing an edited entry does not help: the next entry's prev no longer matches.
        let mut rehashed = entries.clone();
        rehashed[2].subject = "harbour@boc-hk".into();
        let e = &rehashed[2];
        rehashed[2].hash = AuditEntry::compute_hash(
            e.seq,
            e.time_ms,
            &e.reader,
            &e.subject,
            &e.request,
            &e.request_id,
            &e.prev,
        );
        assert!(verify_chain(&rehashed).is_err());
        assert_eq!(verify_chain(&entries[2..]), Ok(()), "a later run verifies on its own");
    }
}
