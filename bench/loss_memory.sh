#!/bin/bash
# Peak host memory and step time of one long-sequence training step with a large vocabulary (issue
# 18's shape: 8.3M parameters, vocabulary 32000, hidden 128, 1 layer, one 16,384-token sequence,
# float32 on the CPU), for two ropex binaries in the same run; the second also with the plain loss
# (--loss-chunk 0). Then the peak RSS of `ropex score` loading a 106M-parameter float32 model
# (bench/checkpoint_memory.sh's, made there under $WORK) with each binary.
#   bench/loss_memory.sh OLD_ROPEX NEW_ROPEX
set -euo pipefail
OLD="$1"; NEW="$2"
SHAPE="$(dirname "$0")/shapes/vocab32k_h128.json"
WORK="${WORK:-/tmp/ropex-ckpt-mem}"
step() {  # binary, extra args -> "peak_rss_gib step_ms"
  local bin="$1"; shift
  local out; out=$( { /usr/bin/time -f "RSS %M" "$bin" bench --config "$SHAPE" --seq 16384 --batch 1 --dtype float32 \
    --device cpu --warmup 1 --steps 3 --breakdown-steps 0 --json "$@"; } 2>&1 )
  python3 -c 'import json,sys; t=sys.argv[1].splitlines(); j=json.loads([l for l in t if l.startswith("{")][0]);
rss=int([l for l in t if l.startswith("RSS")][0].split()[1])*1024
print("peak RSS %.2f GiB, step %.0f ms (median %.0f)" % (rss/2**30, j["step_ms"], j["step_ms_median"]))' "$out"
}
echo "bench step, $SHAPE, seq 16384:"
echo "  old:                     $(step "$OLD")"
echo "  new (loss chunk 1024):   $(step "$NEW")"
echo "  new --loss-chunk 0:      $(step "$NEW" --loss-chunk 0)"
if [ -f "$WORK/model/model.safetensors" ]; then
  head -c 300 "$WORK/corpus.txt" > "$WORK/score.txt"
  for b in "$OLD" "$NEW"; do
    echo "score load, 106M float32 ($b): $( { /usr/bin/time -f "%M" "$b" score --model "$WORK/model" --text "$WORK/score.txt" \
      --device cpu --dtype float32 >/dev/null; } 2>&1 | tail -1 | awk '{printf "peak RSS %.2f GiB", $1*1024/2^30}')"
  done
fi
