//! corridor-node: the `corridord` daemon.
//!
//! Code map (see docs/ARCHITECTURE.md): `ledger` (pure state machine: records, execution,
//! compliance, state root), `mempool`, `chain` (admission, the `Application` interface block
//! ordering drives, commit path, queries), `driver` (runs the consensus replica against the chain),
//! `storage` (RocksDB), `api` (axum HTTP), `genesis`, `config`, `metrics`, `cli`.

mod api;
mod audit;
mod auth;
mod bounds;
mod chain;
pub mod cli;
#[cfg(test)]
mod cluster;
mod config;
mod driver;
mod follower;
mod genesis;
mod journal;
mod ledger;
mod mempool;
mod metrics;
mod network;
mod p2p;
mod storage;
mod testnet;
mod tls;
mod wasm;

pub use genesis::Genesis;
