//! The ledger: state records, the pure block executor, the compliance hook and the state root.
//!
//! The rule this module keeps: executing a block is a function of (state, block) alone. It
//! reads no clock, no randomness and iterates nothing unordered; its output is the receipts,
//! the state writes and the history entries that the storage layer commits in one batch.

pub(crate) mod compliance;
pub(crate) mod contracts;
pub(crate) mod execute;
pub(crate) mod fx;
pub(crate) mod merkle;
pub(crate) mod records;
pub(crate) mod schedule;

pub(crate) use execute::{Precheck, StateReader, StateWrites, check_transaction, execute_block};
pub(crate) use records::{AccountRecord, ChainConfig, CurrencyRecord, StateKey};

/// Money a stored record other than an account holds (an FX reservation, a contract's
/// balance): conservation counts it with the balances.
pub(crate) fn held(key: &[u8], value: &[u8]) -> Vec<(corridor_sdk::CurrencyCode, corridor_sdk::Amount)> {
    let mut held: Vec<_> = fx::held(key, value).into_iter().collect();
    held.extend(contracts::held(key, value));
    held
}
