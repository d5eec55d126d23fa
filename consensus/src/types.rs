//! The nouns of the protocol and the three traits through which the application plugs in its
//! cryptography (signing, verification, hashing).
//!
//! The rule this module keeps: consensus never names a concrete signature scheme or hash
//! function, so Ed25519 and SM2 validators, SHA-256 and SM3 chains all run the same code.

use crate::limits::{PAYLOAD_BYTES_MAX, VALIDATORS_MAX};

/// A view (round) number. View 0 belongs to genesis; the first proposal is in view 1. Views
/// keep counting across epochs.
pub type View = u64;
/// An epoch: a stretch of heights run by one validator set. Genesis starts epoch 0.
pub type Epoch = u64;
/// A block height. Genesis is height 0.
pub type Height = u64;
/// A validator's position in the genesis validator set.
pub type ValidatorIndex = u16;

/// A 32-byte digest produced by the application's [`Hasher`] (SHA-256 or SM3 in the node).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl core::fmt::Debug for Digest {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for byte in &self.0[..6] {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Signature bytes in the scheme of the signing validator (at most `SIGNATURE_BYTES_MAX`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub struct Signature(pub Vec<u8>);

/// Signs with this replica's validator key.
pub trait Signer {
    fn sign(&self, message: &[u8]) -> Signature;
}

/// Verifies any validator's signature; it holds the public keys (Ed25519 or SM2) of one epoch's
/// validator set, by index.
///
/// The node implements it with batch verification and a cache of verified (signer, message,
/// signature) triples, so votes it pre-verified in batches are not verified again when the
/// replica checks them. A verdict must be a deterministic function of the bytes: the batch path
/// and the single path agree.
pub trait Verifier {
    fn verify(&self, validator: ValidatorIndex, message: &[u8], signature: &Signature) -> bool;

    /// Verifies many signatures; `true` only if every one verifies. The default checks them
    /// one by one; a batch implementation must give the same verdict.
    fn verify_all(&self, items: &[(ValidatorIndex, &[u8], &Signature)]) -> bool {
        items
            .iter()
            .all(|(validator, message, signature)| self.verify(*validator, message, signature))
    }
}

/// The chain's hash function (fixed in genesis).
pub trait Hasher {
    fn hash(&self, bytes: &[u8]) -> Digest;
}

/// An epoch's validator set: n = 3f + 1 (or more) equally weighted validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    count: u16,
}

impl ValidatorSet {
    /// A set of `count` validators, 1 ..= `VALIDATORS_MAX`.
    pub fn new(count: usize) -> Result<ValidatorSet, crate::Error> {
        if count == 0 || count > VALIDATORS_MAX {
            return Err(crate::Error::ValidatorCount);
        }
        let count = u16::try_from(count).map_err(|_| crate::Error::ValidatorCount)?;
        Ok(ValidatorSet { count })
    }

    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// The number of faults tolerated: the largest f with 3f + 1 <= n.
    pub fn faults_max(&self) -> usize {
        (self.count() - 1) / 3
    }

    /// Signatures needed for a certificate: n - f, which is 2f + 1 when n = 3f + 1. Any two
    /// quorums intersect in at least f + 1 validators, so in at least one honest one.
    pub fn quorum(&self) -> usize {
        if cfg!(feature = "mutation-quorum-size") {
            return (self.count() - self.faults_max()).saturating_sub(1).max(1);
        }
        self.count() - self.faults_max()
    }

    /// Signers enough that at least one is honest: f + 1.
    pub fn honest_witnesses(&self) -> usize {
        self.faults_max() + 1
    }

    pub fn contains(&self, validator: ValidatorIndex) -> bool {
        cfg!(feature = "mutation-signer-membership") || validator < self.count
    }

    /// Leader rotation: round robin over the genesis order.
    pub fn leader(&self, view: View) -> ValidatorIndex {
        let leader = view % u64::from(self.count);
        u16::try_from(leader).expect("leader index is below the u16 validator count")
    }

    pub fn indices(&self) -> std::ops::Range<ValidatorIndex> {
        0..self.count
    }
}

/// A proposed block. The payload is opaque to consensus; the application validates it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    pub epoch: Epoch,
    pub view: View,
    pub height: Height,
    /// The view in which the parent was notarized (0 for genesis).
    pub parent_view: View,
    pub parent: Digest,
    pub payload: Vec<u8>,
}

impl Block {
    /// The block's digest: the hash of its header, which commits to the payload by its hash.
    pub fn digest(&self, hasher: &dyn Hasher) -> Digest {
        self.header(hasher).digest(hasher)
    }

    pub fn header(&self, hasher: &dyn Hasher) -> BlockHeader {
        BlockHeader {
            epoch: self.epoch,
            view: self.view,
            height: self.height,
            parent_view: self.parent_view,
            parent: self.parent,
            payload_digest: hasher.hash(&self.payload),
        }
    }

    pub(crate) fn is_well_formed(&self) -> bool {
        self.payload.len() <= PAYLOAD_BYTES_MAX && self.height >= 1 && self.parent_view < self.view
    }
}

/// A block without its payload: enough to link a finalized block to a later certified one
/// (sync proofs carry headers, not payloads).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockHeader {
    pub epoch: Epoch,
    pub view: View,
    pub height: Height,
    pub parent_view: View,
    pub parent: Digest,
    pub payload_digest: Digest,
}

impl BlockHeader {
    pub fn digest(&self, hasher: &dyn Hasher) -> Digest {
        hasher.hash(&crate::codec::header_bytes(self))
    }

    pub(crate) fn is_well_formed(&self) -> bool {
        self.height >= 1 && self.parent_view < self.view
    }
}

/// The last finalized block a replica knows: where its chain currently ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Anchor {
    pub view: View,
    pub height: Height,
    pub digest: Digest,
}

impl Anchor {
    /// The genesis anchor: view 0, height 0, the genesis block's digest.
    pub fn genesis(digest: Digest) -> Anchor {
        Anchor {
            view: 0,
            height: 0,
            digest,
        }
    }
}

/// How long a replica waits, before any back-off. Each doubles per back-off step up to
/// `TIMEOUT_BACKOFF_SHIFT_MAX` steps (see `Replica` for when the back-off grows and shrinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From entering a view until the leader's proposal must have arrived.
    pub leader_ms: u64,
    /// From entering a view until its notarization must have arrived.
    pub notarization_ms: u64,
    /// From voting finalize until the view's finalization must have arrived; then the replica
    /// re-sends its finalize vote and the notarization for peers that missed them.
    pub finalization_ms: u64,
}

impl Timeouts {
    /// Leader, notarization and finalization timeouts of 1, 2 and 2 times `base_ms`.
    pub fn from_base(base_ms: u64) -> Timeouts {
        Timeouts {
            leader_ms: base_ms,
            notarization_ms: base_ms.saturating_mul(2),
            finalization_ms: base_ms.saturating_mul(2),
        }
    }
}

/// What a replica needs to know about its chain, its epoch and its keys.
#[derive(Clone, Debug)]
pub struct Config {
    /// Domain-separates every signature (at most `CHAIN_ID_BYTES_MAX` bytes).
    pub chain_id: Vec<u8>,
    /// The epoch this replica runs; signed into every message.
    pub epoch: Epoch,
    /// The epoch's validator set.
    pub validators: ValidatorSet,
    /// This replica's index in `validators`.
    pub me: ValidatorIndex,
    /// The epoch's last height (`Height::MAX` for an open-ended epoch). Above it only empty
    /// padding blocks are proposed, which are never delivered: they let the last block be
    /// finalized when the view that notarized it could not finalize it. The last block's
    /// finality hands over to the next epoch.
    pub last_height: Height,
    pub timeouts: Timeouts,
}
