#!/usr/bin/env bash
# Benchmark a dev node on this machine: finalized transfers/s and submit→finalized latency,
# for Ed25519 and SM2 senders. Starts its own node on a free loopback port with a fresh
# data dir, prints each result, and appends them to docs/benchmarks.md with date and commit
# unless BENCH_RECORD=0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo build --release -p corridor-node -p corridor-testnet
bin="$CARGO_TARGET_DIR/release"
data=$(mktemp -d)
port=${BENCH_PORT:-18645}
"$bin/corridord" dev --data-dir "$data" --rpc-addr "127.0.0.1:$port" >/dev/null 2>"$data/node.log" &
node=$!
trap 'kill $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/status" >/dev/null && break; sleep 0.1; done
bench() { "$bin/corridor-testnet" bench --rpc "http://127.0.0.1:$port" --keys "$data/keys" --json "$@"; }
ed_max=$(bench --scheme ed25519 --accounts "${ED_ACCOUNTS:-2000}" --txs "${ED_TXS:-100000}")
echo "ed25519 max:  $ed_max"
rate=$(( $(sed -E 's/.*"finalized_per_second":([0-9]+).*/\1/' <<<"$ed_max") / 2 ))
ed_half=$(bench --scheme ed25519 --accounts "${ED_ACCOUNTS:-2000}" --txs "${ED_TXS:-100000}" --rate "$rate")
echo "ed25519 half: $ed_half"
sm_max=$(bench --scheme sm2 --accounts "${SM_ACCOUNTS:-500}" --txs "${SM_TXS:-20000}")
echo "sm2 max:      $sm_max"
if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### $(date -u +%Y-%m-%d) · commit $(git rev-parse --short HEAD) · \`scripts/bench.sh\`"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), $(uname -sr)."
    echo
    echo '```'
    echo "ed25519 max:  $ed_max"
    echo "ed25519 half: $ed_half"
    echo "sm2 max:      $sm_max"
    echo '```'
  } >> docs/benchmarks.md
fi
