//! Blocks, their headers and the certificates that finalize them.
//!
//! A header commits to its transactions (`txs_root`) and to the state after its parent
//! (`state_root`), so a node whose execution diverges notices at the next header.

use crate::codec;
use crate::hash::{Hash, HashAlgorithm};
use crate::ids::AccountId;
use crate::tx::SignedTransaction;
use serde::{Deserialize, Serialize};

pub const BLOCK_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub version: u8,
    pub chain_id: String,
    pub height: u64,
    pub parent_hash: Hash,
    /// The proposer's clock, checked against bounds; the only time execution sees.
    pub timestamp_ms: u64,
    pub proposer: AccountId,
    pub tx_count: u32,
    /// Merkle root of the transactions' hashes, in block order.
    pub txs_root: Hash,
    /// The state root after executing every block up to and including `state_height`: the
    /// newest block the proposer had executed, at or below the parent. Execution trails
    /// ordering (a block may be proposed on a parent that is notarized but not yet final), so
    /// the root names its height; validators compare it with their own root at that height.
    pub state_root: Hash,
    pub state_height: u64,
}

impl BlockHeader {
    pub fn hash(&self, algorithm: HashAlgorithm) -> Hash {
        algorithm.digest(&codec::encode(self))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
}

/// Proof that a block is final under corridor's BFT consensus (consensus/README.md).
///
/// The consensus orders blocks by its own digest: the hash of (epoch, view, height, parent
/// view, parent digest, hash of the payload), where the payload is this block's canonical
/// encoding. `finality` carries the consensus headers of the blocks after this one up to a
/// block a quorum of validators finalized, and that finalization certificate, in
/// corridor-consensus encoding; it is empty only for genesis. Whoever holds the validator set's
/// keys checks it without trusting the node that served it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub height: u64,
    pub block_hash: Hash,
    pub epoch: u64,
    pub view: u64,
    pub parent_view: u64,
    /// The consensus digest of the parent block.
    pub parent_digest: Hash,
    #[serde(with = "crate::codec::var_bytes")]
    pub finality: Vec<u8>,
}

/// A binary Merkle root over `leaves` (the last odd node is promoted), with domain-separated
/// leaf and node hashes. The root of no leaves is `Hash::ZERO`.
pub fn merkle_root(algorithm: HashAlgorithm, leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| algorithm.digest_parts(&[&[0u8], &leaf.0]))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => algorithm.digest_parts(&[&[1u8], &left.0, &right.0]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_is_order_sensitive_and_domain_separated() {
        let algorithm = HashAlgorithm::Sha256;
        let a = algorithm.digest(b"a");
        let b = algorithm.digest(b"b");
        assert_eq!(merkle_root(algorithm, &[]), Hash::ZERO);
        assert_ne!(merkle_root(algorithm, &[a]), a);
        assert_ne!(merkle_root(algorithm, &[a, b]), merkle_root(algorithm, &[b, a]));
        assert_ne!(merkle_root(algorithm, &[a, b, a]), merkle_root(algorithm, &[a, b]));
    }
}
