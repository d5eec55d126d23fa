//! corridor-sdk: the stable face of corridor.
//!
//! The wire types every node and client agree on (ids, keys, amounts, transactions, blocks,
//! receipts), their one canonical encoding (`codec`), signing and verification (`crypto`), and,
//! behind cargo features, the typed HTTP client (`client`) and the `corridor` CLI.
//! The node depends on this crate with default features off, so it sees the types alone.

pub mod amount;
pub mod api;
pub mod audit;
pub mod block;
pub mod codec;
pub mod contract;
pub mod crypto;
pub mod error;
pub mod finality;
pub mod fx;
pub mod hash;
pub mod ids;
pub mod limits;
pub mod proof;
pub mod receipt;
pub mod request_auth;
pub mod schedule;
pub mod tx;

#[cfg(feature = "client")]
pub mod client;

pub use amount::Amount;
pub use block::{Block, BlockHeader, Certificate};
pub use crypto::{PrivateKey, PublicKey, Scheme, Signature};
pub use error::ErrorCode;
pub use hash::{Hash, HashAlgorithm};
pub use ids::{AccountId, CurrencyCode};
pub use receipt::{Event, Outcome, Receipt};
pub use tx::{Operation, SignedTransaction, Transaction, TransferLeg};
