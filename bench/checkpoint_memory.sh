#!/usr/bin/env bash
# Peak host memory (RSS) of every rank while a 2-rank job trains, saves and resumes (issue 12's
# measurement): a 106M-parameter Llama (vocab 8000, hidden 1024, intermediate 2816, 8 layers, 16
# heads, 4 KV heads), float32 on CPU, Gloo, ZeRO-1, window 64, one rank per process under
# /usr/bin/time -v.
#
#   bench/checkpoint_memory.sh [BIN ...]      (default: build/ropex; several binaries = same run)
#
# For each binary, three runs: 4 steps saving only at the end (checkpoint.every=0: training plus one
# save); 4 steps saving at 2 and 4; a resume of the latter's step-2 checkpoint trained to step 4 (a
# load and a save). Printed: the max RSS of each rank, GiB. Several binaries (e.g. an older build)
# are measured in the same invocation, on the same data, so their ratio is a same-run figure.
# Data, tokenizer and model are made under $WORK (default /tmp/ropex-ckpt-mem) once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/tmp/ropex-ckpt-mem}"
BINS=("$@")
((${#BINS[@]})) || BINS=("$ROOT/build/ropex")
mkdir -p "$WORK"
BIN0="${BINS[0]}"

if [[ ! -f "$WORK/store/COMPLETE" ]]; then
  # A few MB of English text that every Debian machine has.
  { cat /usr/share/common-licenses/*; find /usr/share/doc -name 'changelog*.gz' | sort | head -2000 | xargs zcat 2>/dev/null; } \
    > "$WORK/corpus.txt"
  "$BIN0" train-tokenizer --input "$WORK/corpus.txt" --output "$WORK/tok" --vocab-size 8000 >/dev/null
  "$BIN0" new-model --output "$WORK/model" --tokenizer "$WORK/tok.model" --set vocab_size=8000 --set hidden_size=1024 \
    --set intermediate_size=2816 --set num_hidden_layers=8 --set num_attention_heads=16 --set num_key_value_heads=4 \
    --set max_position_embeddings=64 >/dev/null
  "$BIN0" prepare --tokenizer "$WORK/tok.model" --input "$WORK/corpus.txt" --output "$WORK/store" --txt-split blank_line >/dev/null
fi
cat > "$WORK/run.json" <<EOF
{"model": {"path": "$WORK/model", "device": "cpu", "dtype": "float32", "from_scratch": true},
 "data": {"store": "$WORK/store", "train_len": 64},
 "rope": {"type": "keep"}, "sampler": {"name": "contiguous"},
 "optim": {"lr": 1e-4}, "schedule": {"type": "constant", "warmup_steps": 0, "steps": 4},
 "batch": {"micro_batch_size": 1, "grad_accum": 1},
 "distributed": {"zero_stage": 1},
 "checkpoint": {"every": 2, "keep_last": 3},
 "export": {"at_end": false}, "logging": {"progress": "off"}}
EOF

# ranks BIN OUT SETS...: 2 ranks under /usr/bin/time -v; prints "rank0 GiB rank1 GiB".
ranks() {
  local bin="$1" out="$2"
  shift 2
  local port=$((20000 + RANDOM % 20000)) pids=() r
  for r in 0 1; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
      /usr/bin/time -v "$bin" train "$WORK/run.json" --set run.output_dir="$out" "$@" > "$out.rank$r.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for r in 0 1; do
    awk '/Maximum resident set size/ {printf "%.2f ", $6 / 1048576}' "$out.rank$r.log"
  done
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for bin in "${BINS[@]}"; do
  tag="$WORK/$(echo "$bin" | md5sum | cut -c1-8)"
  rm -rf "$tag"
  mkdir -p "$tag"
  echo "binary $bin"
  echo "  train 4 steps, no save before the end (checkpoint.every=0): max RSS GiB rank0 rank1: $(ranks "$bin" "$tag/nosave" --set checkpoint.every=0)"
  echo "  train 4 steps, saves at 2 and 4:                            max RSS GiB rank0 rank1: $(ranks "$bin" "$tag/a")"
  echo "  resume step 2, train to 4, save at 4:                       max RSS GiB rank0 rank1: $(ranks "$bin" "$tag/b" --set checkpoint.resume="$tag/a/checkpoints/step_00000002")"
done
