#!/usr/bin/env bash
# Install what a fresh machine needs to build and test corridor. Does nothing when all is present.
set -euo pipefail

need_apt=()
# The rocksdb crate generates its bindings with bindgen, which needs libclang.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libclang; then
  need_apt+=(libclang-dev)
fi
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  # Contracts build for wasm32 (used once the contracts issue lands).
  rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
fi
