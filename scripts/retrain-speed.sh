#!/usr/bin/env bash
# The costs of `retrain` against `bench` (issue 12): feature extraction's forward throughput over
# bench's at the same model, batch and threads (target: within 10%), what a folder costs end to
# end from a cold cache and from a warm one, and how long training a head on about 10,000 cached
# vectors takes. The extraction is timed end to end by its wall time (reading and decoding run
# on their own thread, overlapping the forward passes). Prints measurements and ratios; asserts
# nothing (timings belong here, not in tests). Needs python3 (to read the JSON).
#
#   scripts/retrain-speed.sh DIR [MODEL] [BATCH] [THREADS]
#   scripts/retrain-speed.sh ../shared/datasets/hotdog_nothotdog/train 1.0_224 8 2
#
# DIR is a labelled folder (one subfolder per class). The 10,000 vectors are DIR's images and
# augmented views of them (--augment-copies chosen to reach 10,000; views are forwarded but
# only the training time is read), trained for every epoch (no validation, so no early stop).
set -euo pipefail
DIR=${1:?usage: $0 DIR [MODEL] [BATCH] [THREADS]}
MODEL=${2:-1.0_224}
BATCH=${3:-8}
THREADS=${4:-2}
BIN=${BIN:-target/release/mobilenet-cli}
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$@"; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; model $MODEL, batch $BATCH, threads $THREADS"
# The machine may be shared: bench and the extraction alternate REPS times, and the best of each
# (the run least disturbed) is compared, beside the medians.
REPS=${REPS:-5}
common=(--model "$MODEL" --batch "$BATCH" --threads "$THREADS" --quiet --format json -o "$WORK/m.safetensors")
: >"$WORK/bench.txt"
: >"$WORK/forward.txt"
: >"$WORK/extraction.txt"
: >"$WORK/wait.txt"
for _ in $(seq "$REPS"); do
    "$BIN" bench --model "$MODEL" --batch "$BATCH" --threads "$THREADS" --runs 20 --format json >"$WORK/bench.json" 2>/dev/null
    field "$WORK/bench.json" "d['throughput']" >>"$WORK/bench.txt"
    "$BIN" retrain "$DIR" "${common[@]}" --no-cache >"$WORK/nocache.json"
    field "$WORK/nocache.json" "d['features']['forwarded'] / d['features']['forward_seconds']" >>"$WORK/forward.txt"
    # End to end: the extraction's wall time (reading and decoding overlap the forward passes).
    field "$WORK/nocache.json" "d['features']['images'] / d['features']['seconds']" >>"$WORK/extraction.txt"
    field "$WORK/nocache.json" "d['features']['wait_seconds']" >>"$WORK/wait.txt"
done
python3 - "$WORK" <<'PY'
import statistics, sys
read = lambda name: [float(x) for x in open(f"{sys.argv[1]}/{name}.txt")]
bench, forward, extraction = read("bench"), read("forward"), read("extraction")
print(f"bench (median of 20 runs each):    best {max(bench):8.1f}  median {statistics.median(bench):8.1f} images/s")
for label, xs in [("retrain forward passes:", forward), ("retrain extraction, wall:", extraction)]:
    print(f"{label:35s}best {max(xs):8.1f}  median {statistics.median(xs):8.1f} images/s"
          f"  ({max(xs) / max(bench):.2f}x bench best, {statistics.median(xs) / statistics.median(bench):.2f}x median)")
# Rounds alternate, so each round's ratio compares runs under the same load.
ratios = [x / b for x, b in zip(extraction, bench)]
print(f"extraction / bench, per round:     {' '.join(f'{r:.2f}' for r in ratios)}  (median {statistics.median(ratios):.2f}x)")
print(f"forward side waiting for decoding: median {statistics.median(read('wait')):.3f} s")
PY
"$BIN" retrain "$DIR" "${common[@]}" --cache-dir "$WORK/cache" >"$WORK/cold.json"
"$BIN" retrain "$DIR" "${common[@]}" --cache-dir "$WORK/cache" >"$WORK/warm.json"
images=$(field "$WORK/cold.json" "d['features']['images']")
for run in cold warm; do
    echo "$run cache, $images images: total $(field "$WORK/$run.json" "round(d['total_seconds'], 2)") s" \
        "(features $(field "$WORK/$run.json" "round(d['features']['seconds'], 2)") s," \
        "forwarded $(field "$WORK/$run.json" "d['features']['forwarded']"), cache hits $(field "$WORK/$run.json" "d['features']['cache_hits']");" \
        "training $(field "$WORK/$run.json" "round(d['training']['seconds'], 3)") s)"
done

copies=$(( (10000 + images - 1) / images - 1 ))
[ "$copies" -ge 1 ] || copies=1
[ "$copies" -le 100 ] || copies=100
"$BIN" retrain "$DIR" "${common[@]}" --cache-dir "$WORK/cache" --augment --augment-copies "$copies" \
    --validation-percent 0 --test-percent 0 --epochs 100 >"$WORK/big.json"
echo "head on $(field "$WORK/big.json" "d['training']['vectors']") vectors of $(field "$WORK/big.json" "d['feature']['width']") values," \
    "$(field "$WORK/big.json" "len(d['training']['epochs'])") epochs: training $(field "$WORK/big.json" "round(d['training']['seconds'], 2)") s"
