#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz on the stable toolchain, via RUSTC_BOOTSTRAP) for SECONDS
# each (default 600), starting from the committed seeds in fuzz/seeds/. Crashes land in
# fuzz/artifacts/TARGET/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O TARGET fuzz/artifacts/TARGET/crash-...
# Usage: scripts/fuzz.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(image weights weights_header flags)
export RUSTC_BOOTSTRAP=1
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  [ -d "seeds/$target" ] && cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
  echo "== $target for ${SECONDS_EACH}s"
  cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=20 -max_len=600000
done
