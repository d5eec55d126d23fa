#!/usr/bin/env bash
# Cost of issue 9's security on settlement: finalized transfers/s of a build from before it
# (BASE_BIN) and of this build (THIS_BIN), over plain HTTP and TLS, without and with 4
# concurrent signed-read clients. Rounds are interleaved; round 0 is setup and not counted.
# Usage: BASE_BIN=dir THIS_BIN=dir scripts/bench-security.sh > results.txt
set -euo pipefail
B=${BASE_BIN:?dir with the baseline corridord and corridor-testnet}; M=${THIS_BIN:?dir with this build}
TXS=${TXS:-40000}; ACCOUNTS=${ACCOUNTS:-1000}; ROUNDS=${ROUNDS:-5}
work=$(mktemp -d); cd "$work"; pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ec() { openssl req "$@" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes 2>/dev/null; }
ec -x509 -keyout ca.key -out ca.pem -days 1 -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
ec -keyout node.key -out node.csr -subj /CN=node
printf "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" > ext
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 1 -extfile ext 2>/dev/null
"$B/corridord" dev --data-dir base --rpc-addr 127.0.0.1:18601 >/dev/null 2>&1 & pids+=($!)
"$M/corridord" dev --data-dir plain --rpc-addr 127.0.0.1:18602 >/dev/null 2>&1 & pids+=($!)
"$M/corridord" dev --data-dir tls --rpc-addr 127.0.0.1:18603 --tls-cert node.pem --tls-key node.key >/dev/null 2>&1 & pids+=($!)
sleep 3
run() { local name=$1; shift; echo "$name $("$@" --json --txs "$TXS" --accounts "$ACCOUNTS")"; }
for round in $(seq 0 "$ROUNDS"); do
  [ "$round" = 0 ] && echo "# setup round (not counted)"
  run baseline       "$B/corridor-testnet" bench --rpc http://127.0.0.1:18601 --keys base/keys
  run http           "$M/corridor-testnet" bench --rpc http://127.0.0.1:18602 --keys plain/keys
  run tls            "$M/corridor-testnet" bench --rpc https://127.0.0.1:18603 --keys tls/keys --ca ca.pem
  run baseline+reads "$M/corridor-testnet" bench --rpc http://127.0.0.1:18601 --keys base/keys --readers 4
  run http+reads     "$M/corridor-testnet" bench --rpc http://127.0.0.1:18602 --keys plain/keys --readers 4
  run tls+reads      "$M/corridor-testnet" bench --rpc https://127.0.0.1:18603 --keys tls/keys --ca ca.pem --readers 4
done
