#!/usr/bin/env bash
# Everything CI checks: formatting, lints, unit, end-to-end and simulation tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p corridor-consensus --all-targets --all-features -- -D warnings
# The contracts (their own workspace, wasm32); node and end-to-end tests load the .wasm files.
(cd contracts && export CARGO_TARGET_DIR=target && cargo fmt --all -- --check \
  && cargo clippy --release -- -D warnings && cargo build --release --locked)
# The end-to-end tests start the binaries built here.
cargo build --workspace --bins
# Default features everywhere: the consensus simulation runs its >= 4,000 seeds with every
# safety rule on and must find no violation.
cargo test --workspace
# Mutation suite: with any one safety or verification rule off, the same simulator must find a
# violation within a fixed budget of runs (consensus/Cargo.toml lists the mutations).
for mutation in $(grep -oE '^mutation-[a-z-]+' consensus/Cargo.toml); do
  echo "mutation: $mutation"
  cargo test -p corridor-consensus --features "$mutation" --test simulation
done
