//! corridor-testnet: tools to run corridor networks on loopback and put load on them.
//! Today: `bench`, a load generator for a running node (see `bench`), and `escrow-bench`,
//! escrow create + release contract calls (see `escrow_bench`).

pub mod bench;
pub mod escrow_bench;
