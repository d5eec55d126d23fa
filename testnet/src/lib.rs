//! corridor-testnet: tools to run corridor networks on loopback and put load on them.
//! `up`/`down` run a local network (see `network`), `bench` puts transfers on a running node
//! (see `bench`), `escrow-bench` escrow create + release contract calls (see `escrow_bench`).

pub mod bench;
pub mod chaos;
pub mod escrow_bench;
pub mod network;
