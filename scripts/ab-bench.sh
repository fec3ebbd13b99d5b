#!/usr/bin/env bash
# A/B latency of two builds of mobilenet-cli on a shared, noisy machine: interleaved rounds
# (old, new, old, new, ...) of `bench --runs RUNS` each, then the median of the per-round
# ratios new/old, so load that comes and goes hits both sides alike. This is how the int8 kernel
# changes were accepted or dropped (see the README's int8 section).
# Usage: scripts/ab-bench.sh OLD_BINARY NEW_BINARY MODEL [ROUNDS=7] [THREADS=1] [PRECISION=int8]
#   RUNS=100 (environment) sets the timed runs per bench call.
# Example: git worktree add /tmp/old HEAD~1 && (cd /tmp/old && cargo build --release) &&
#   scripts/ab-bench.sh /tmp/old/target/release/mobilenet-cli target/release/mobilenet-cli 1.0_224 9 2
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n 2,9p "$0" >&2
  exit 2
fi
OLD=$1 NEW=$2 MODEL=$3 ROUNDS=${4:-7} THREADS=${5:-1} PRECISION=${6:-int8}
median() { python3 -c "import json,sys;print(json.load(sys.stdin)['latency_ms']['median'])"; }
old=() new=()
for _ in $(seq "$ROUNDS"); do
  for side in old new; do
    bin=$OLD; [ "$side" = new ] && bin=$NEW
    t=$("$bin" -q bench --model "$MODEL" --threads "$THREADS" --precision "$PRECISION" \
      --runs "${RUNS:-100}" --format json | median)
    if [ "$side" = old ]; then old+=("$t"); else new+=("$t"); fi
  done
done
python3 - "$MODEL" "$THREADS" "${old[*]}" "${new[*]}" <<'PY'
import statistics as st, sys, platform
model, threads = sys.argv[1], sys.argv[2]
old = [float(x) for x in sys.argv[3].split()]
new = [float(x) for x in sys.argv[4].split()]
ratios = [n / o for o, n in zip(old, new)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"{model}, {threads} thread(s), {len(old)} interleaved rounds on {cpu}: "
      f"old {st.median(old):.3f} ms, new {st.median(new):.3f} ms; "
      f"new/old per-round median {st.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
PY
