//! corridor-testnet: tools to run corridor networks on loopback and put load on them.
//! Today: `bench`, a load generator for a running node (see `bench`).

pub mod bench;
