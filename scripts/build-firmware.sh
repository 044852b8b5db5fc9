#!/usr/bin/env bash
# Cross-compiles the sensor-node firmware for the Raspberry Pi Pico
# (firmware/board-rp2040, RP2040, thumbv6m-none-eabi) and prints its size.
# Needs only rustup and cargo; the package has its own Cargo.lock.
#   CARGO_TARGET_DIR  where to build (default: target/board-rp2040 here)
set -euo pipefail
caller=$(pwd)
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# cargo runs in the package directory below, so make the path absolute
# (a relative one is taken from where the script was started).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/board-rp2040}"
case "$CARGO_TARGET_DIR" in
  /*) ;;
  *) CARGO_TARGET_DIR="$caller/$CARGO_TARGET_DIR" ;;
esac

# RUSTFLAGS from the environment would replace the linker arguments in
# firmware/board-rp2040/.cargo/config.toml (-Tlink.x, --nmagic).
if [[ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]]; then
  echo "note: ignoring RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS for the firmware build" >&2
  unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
fi

rustup target add thumbv6m-none-eabi

started=$(date +%s)
(cd firmware/board-rp2040 && cargo build --release --locked)
echo "built in $(($(date +%s) - started)) s"

elf="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release/board-rp2040"
ls -l "$elf"
# Most of the file is debug info. What goes to flash is the file bytes of
# the loadable segments, read here from the ELF32 program headers with od
# alone, so no binutils are needed.
u32() { od -An -t u4 -j "$1" -N 4 "$elf" | tr -d ' '; }
u16() { od -An -t u2 -j "$1" -N 2 "$elf" | tr -d ' '; }
phoff=$(u32 28)
phentsize=$(u16 42)
phnum=$(u16 44)
flash=0
ram=0
for ((i = 0; i < phnum; i++)); do
  ph=$((phoff + i * phentsize))
  if [[ $(u32 "$ph") != 1 ]]; then continue; fi # PT_LOAD only
  vaddr=$(u32 $((ph + 8)))
  flash=$((flash + $(u32 $((ph + 16)))))
  if ((vaddr >= 0x20000000)); then ram=$((ram + $(u32 $((ph + 20))))); fi
done
echo "flash: $flash bytes of 2 MiB (boot2 included); static RAM: $ram bytes of 264 KiB"
echo "ELF: $elf"
