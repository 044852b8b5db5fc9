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
# `unsafe` is denied in the workspace; one module may allow it: the run-time
# CPU-feature dispatch of the sample sweep.
allowed=$(grep -rl --include='*.rs' 'allow(unsafe_code)' edge-agent central-hub protocol firmware tests || true)
if [ "$allowed" != "edge-agent/src/features/sweep_dispatch.rs" ]; then
  echo "unsafe_code may only be allowed in edge-agent/src/features/sweep_dispatch.rs; allowed in: $allowed" >&2
  exit 1
fi
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

# The fault tests also run against a real Mosquitto (started by the tests on
# a free loopback port with central-hub/deploy/mosquitto.conf); the browser
# test drives the operators' page in headless Chromium through ChromeDriver.
missing=""
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  missing="$missing mosquitto"
fi
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
if [ -n "$missing" ]; then
  step "installing$missing"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "cargo-nextest not found; using cargo test"
  cargo test --workspace --locked --no-fail-fast
fi
step "all passed"
