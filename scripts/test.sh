#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Needs only the Rust toolchain; installs anything else it needs.
#   formatting -> lints -> one shared debug build -> board firmware -> every test
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Linux sensor source behind its feature flag.
cargo clippy -p edge-agent --features linux-hal --locked -- -D warnings

# One build of every binary and test target; the system tests run the
# workspace's own binaries from this same target directory.
step "build"
cargo build --workspace --all-targets --locked

# The sensor-node firmware, cross-compiled for its board (its core logic is
# in the firmware crate, tested above on the host).
step "firmware for the RP2040 board"
./scripts/build-firmware.sh

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "cargo-nextest not found; using cargo test"
  cargo test --workspace --locked --no-fail-fast
fi
step "all passed"
