#!/usr/bin/env bash
# Benchmark a local network (4 validators + 1 observer, release binaries) with
# `corridor-testnet bench --dir`: Ed25519 as fast as accepted, Ed25519 open loop at
# ${RATE:-2500}/s, SM2 as fast as accepted; each prints its JSON report (with each node's CPU
# per transaction by stage). The network runs in a fresh temp dir and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo build --release --workspace --bins
bin="$CARGO_TARGET_DIR/release"
dir=$(mktemp -d)
"$bin/corridor-testnet" up --validators 4 --observers 1 --dir "$dir" >"$dir/up.log" 2>&1 &
up=$!
trap '"$bin/corridor-testnet" down --dir "$dir" >/dev/null 2>&1 || true; wait $up 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 600); do grep -q '^  stop:' "$dir/up.log" 2>/dev/null && break; sleep 0.1; done
bench() { "$bin/corridor-testnet" bench --dir "$dir" --json "$@"; }
# 40,000 stays under one institution's mempool share (50,000): every bench account is icbc-cn's.
echo "ed25519 max:  $(bench --scheme ed25519 --accounts "${ED_ACCOUNTS:-2000}" --txs "${ED_TXS:-40000}")"
echo "ed25519 rate: $(bench --scheme ed25519 --accounts "${ED_ACCOUNTS:-2000}" --txs "${ED_TXS:-40000}" --rate "${RATE:-2500}")"
echo "sm2 max:      $(bench --scheme sm2 --accounts "${SM_ACCOUNTS:-500}" --txs "${SM_TXS:-10000}")"
