#!/usr/bin/env bash
# Everything CI checks: formatting, lints, unit, end-to-end and simulation tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The end-to-end tests start the binaries built here.
cargo build --workspace --bins
cargo test --workspace --all-features
