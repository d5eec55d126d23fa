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

/// A block of `txs` for execution tests: execution reads only the height, the time and the
/// transactions, so the rest is fixed.
#[cfg(test)]
pub(crate) fn test_block(
    chain_id: &str,
    height: u64,
    timestamp_ms: u64,
    txs: Vec<corridor_sdk::SignedTransaction>,
) -> corridor_sdk::Block {
    use corridor_sdk::{BlockHeader, Hash};
    let header = BlockHeader {
        version: corridor_sdk::block::BLOCK_VERSION,
        chain_id: chain_id.into(),
        height,
        parent_hash: Hash::ZERO,
        timestamp_ms,
        proposer: corridor_sdk::AccountId::new("v").expect("a valid id"),
        tx_count: u32::try_from(txs.len()).expect("test blocks are small"),
        txs_root: Hash::ZERO,
        state_root: Hash::ZERO,
        state_height: 0,
    };
    corridor_sdk::Block { header, txs }
}
