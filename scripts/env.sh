# Sourced by the other scripts: one shared build directory outside the clone, so CI runs and
# fresh clones reuse the long first build of RocksDB.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/corridor-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
