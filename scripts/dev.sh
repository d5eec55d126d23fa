#!/usr/bin/env bash
# Start a one-validator dev chain on 127.0.0.1:8545 with the demo genesis (keys in ./corridor-dev/keys).
# Extra arguments go to `corridord dev` (for example --data-dir DIR --rpc-addr ADDR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo build --release -p corridor-node -p corridor-sdk --bins
echo "CLI: $CARGO_TARGET_DIR/release/corridor --rpc http://127.0.0.1:8545 status"
exec "$CARGO_TARGET_DIR/release/corridord" dev "$@"
