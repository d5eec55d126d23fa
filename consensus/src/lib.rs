//! corridor BFT consensus: a Simplex-style protocol as a pure state machine, its certificates and
//! safety rules, and a seeded simulator that tests it under faults.
//!
//! The rule this crate keeps: no I/O. No clock, no OS randomness, no network, no storage; the
//! node drives a [`Replica`] with [`Input`]s and carries out its [`Effect`]s. See README.md.

mod codec;
mod error;
mod evidence;
pub mod limits;
mod message;
mod replica;
mod safety;
pub mod sim;
mod types;

pub use codec::{decode, encode};
pub use error::Error;
pub use evidence::Evidence;
pub use message::{Certificate, FinalizedChain, Message, Proposal, Vote, VoteKind, signing_bytes};
pub use replica::{Durable, Effect, Input, Replica, Stats};
pub use safety::{SAFETY_STATE_BYTES, SafetyState};
pub use types::{
    Anchor, Block, Config, Digest, Hasher, Height, Signature, Signer, ValidatorIndex, ValidatorSet, Verifier, View,
};
