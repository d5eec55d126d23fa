//! corridor BFT consensus: a Simplex-style protocol as a pure state machine, its certificates and
//! safety rules, and a seeded simulator that tests it under faults.
//!
//! The rule this crate keeps: no I/O. No clock, no OS randomness, no network, no storage; the
//! node drives a [`Replica`] with [`Input`]s and carries out its [`Effect`]s. See README.md.

mod boundary;
mod codec;
mod error;
mod evidence;
pub mod limits;
mod message;
mod replica;
mod safety;
pub mod sim;
mod types;

pub use codec::{decode, decode_chain, encode, encode_chain};
pub use error::Error;
pub use evidence::Evidence;
pub use message::{Certificate, Endorsement, FinalizedChain, Message, Proposal, Vote, VoteKind, signing_bytes};
pub use replica::{Durable, Effect, Input, Replica, Stats};
pub use safety::{SAFETY_STATE_BYTES, SafetyState};
pub use types::{
    Anchor, Block, BlockHeader, Config, Digest, Epoch, Hasher, Height, Signature, Signer, Timeouts, ValidatorIndex,
    ValidatorSet, Verifier, View,
};

/// The test-only mutation features this build was compiled with (empty in every real build).
pub fn mutation_features() -> Vec<&'static str> {
    let features = [
        (
            cfg!(feature = "mutation-skip-nullification-check"),
            "mutation-skip-nullification-check",
        ),
        (
            cfg!(feature = "mutation-skip-certificate-verification"),
            "mutation-skip-certificate-verification",
        ),
        (
            cfg!(feature = "mutation-signer-membership"),
            "mutation-signer-membership",
        ),
        (cfg!(feature = "mutation-quorum-size"), "mutation-quorum-size"),
        (cfg!(feature = "mutation-notarize-twice"), "mutation-notarize-twice"),
        (
            cfg!(feature = "mutation-finalize-after-nullify"),
            "mutation-finalize-after-nullify",
        ),
    ];
    features
        .into_iter()
        .filter_map(|(enabled, name)| enabled.then_some(name))
        .collect()
}
