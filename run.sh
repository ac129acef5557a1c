#!/usr/bin/env bash
# ropex front door.
#   ./run.sh setup        install system packages (Debian) and the project venv (.venv)
#   ./run.sh build        setup + configure + build build/ropex and the tests
#   ./run.sh test         build + run the whole test suite through ctest
#   ./run.sh train CONFIG [--nproc N] [--set key=value ...]
#                         build, then train on N local ranks (default 1) without Python: each rank
#                         gets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; if one fails the
#                         others are stopped and the exit code is the failing rank's
#   ./run.sh debug-tiny   build a tiny model, tokenizer and token store from public text Debian ships
#                         (/usr/share/common-licenses) under runs/debug_tiny and run configs/debug_tiny.json
#   ./run.sh demo         (arrives with the evaluation work)
#
# Environment:
#   Torch_DIR=/path/to/libtorch/share/cmake/Torch   build against an existing LibTorch instead of
#                                                   the venv's torch wheel (the venv is still used
#                                                   by the reference tests)
#   ROPEX_JOBS=N        parallel compile jobs (default: number of cores)
#   ROPEX_SKIP_APT=1    do not touch system packages (they must already be installed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
BUILD="$ROOT/build"
JOBS="${ROPEX_JOBS:-$(nproc)}"
APT_PACKAGES=(build-essential cmake ninja-build pkg-config ccache git
              libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgloo-dev
              python3-venv)

log() { printf '\033[1m[run.sh]\033[0m %s\n' "$*" >&2; }
die() { printf '[run.sh] error: %s\n' "$*" >&2; exit 1; }

setup_apt() {
  [[ "${ROPEX_SKIP_APT:-0}" == 1 ]] && return 0
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  # The venv needs a Python the torch wheel supports (3.10-3.13) that actually runs (pyenv shims
  # exist for versions that are not selected) and has the venv module.
  for p in "${ROPEX_PYTHON_BOOTSTRAP:-}" python3 python3.12 python3.11 python3.13 python3.10; do
    [[ -n "$p" ]] || continue
    if "$p" -c 'import sys, venv; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no usable Python 3.10-3.13 with the venv module found (set ROPEX_PYTHON_BOOTSTRAP=/path/to/python3)"
}

setup_venv() {
  local stamp="$VENV/.ropex-requirements"
  if [[ -x "$VENV/bin/python" && -f "$stamp" ]] && cmp -s "$stamp" requirements.txt; then
    return 0
  fi
  local py; py="$(pick_python)"
  log "creating $VENV with $("$py" --version) and requirements.txt (torch wheel: a few GB, first time only)"
  [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  cp requirements.txt "$stamp"
}

setup() { setup_apt; setup_venv; }

configure() {
  local prefix=""
  if [[ -z "${Torch_DIR:-}" ]]; then
    prefix="$("$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  fi
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    # Precompiled headers with ccache need these sloppiness settings to get cache hits.
    export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
    export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
  fi
  if [[ ! -f "$BUILD/build.ninja" ]]; then
    log "configuring (LibTorch from ${Torch_DIR:-$prefix})"
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      ${prefix:+-DCMAKE_PREFIX_PATH="$prefix"} ${Torch_DIR:+-DTorch_DIR="$Torch_DIR"} \
      -DROPEX_PYTHON="$VENV/bin/python" "${launcher[@]}" >/dev/null
  fi
}

build() {
  setup
  configure
  log "building with $JOBS jobs"
  export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
  cmake --build "$BUILD" -j "$JOBS"
}

run_tests() {
  build
  log "running tests"
  (cd "$BUILD" && ctest --output-on-failure -j "$JOBS" "$@")
}

train_local() {
  local config="${1:-}"; shift || true
  [[ -n "$config" ]] || die "usage: ./run.sh train CONFIG [--nproc N] [--set key=value ...]"
  local nproc=1 args=()
  while (($#)); do
    case "$1" in
      --nproc) nproc="$2"; shift 2 ;;
      --nproc=*) nproc="${1#*=}"; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  [[ "$nproc" =~ ^[1-9][0-9]*$ ]] || die "--nproc expects a positive integer, got '$nproc'"
  build >&2
  local port="${MASTER_PORT:-$(( 20000 + RANDOM % 20000 ))}" pids=() rc=0
  for ((r = 0; r < nproc; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$nproc LOCAL_WORLD_SIZE=$nproc MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$BUILD/ropex" train "$config" "${args[@]}" &
    pids+=($!)
  done
  trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
  # The first rank to fail takes the others down instead of leaving them waiting on a collective.
  for ((left = nproc; left > 0; left--)); do
    if ! wait -n "${pids[@]}"; then
      rc=$?
      log "a rank exited with status $rc; stopping the others"
      kill "${pids[@]}" 2>/dev/null || true
      wait "${pids[@]}" 2>/dev/null || true
      return "$rc"
    fi
  done
  return 0
}

debug_tiny() {
  build >&2
  local dir="$ROOT/runs/debug_tiny" bin="$BUILD/ropex"
  mkdir -p "$dir"
  if [[ ! -f "$dir/store/COMPLETE" ]]; then
    cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 /usr/share/common-licenses/GPL-2 \
        /usr/share/common-licenses/LGPL-2.1 > "$dir/corpus.txt"
    "$bin" train-tokenizer --input "$dir/corpus.txt" --output "$dir/tok" --vocab-size 500 >/dev/null
    "$bin" new-model --output "$dir/model" --tokenizer "$dir/tok.model" --set hidden_size=64 \
      --set intermediate_size=128 --set num_hidden_layers=2 --set num_attention_heads=4 \
      --set num_key_value_heads=2 --set max_position_embeddings=64
    "$bin" prepare --tokenizer "$dir/tok.model" --input "$dir/corpus.txt" --output "$dir/store" --txt-split blank_line
  fi
  "$bin" train configs/debug_tiny.json "$@"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  setup) setup ;;
  build) build ;;
  test) run_tests "$@" ;;
  train) train_local "$@" ;;
  debug-tiny) debug_tiny "$@" ;;
  demo)
    die "the demo arrives with the training and evaluation work (issues 4-5); until then try: ./run.sh build && build/ropex --help" ;;
  help|-h|--help) sed -n '2,21p' "$0" ;;
  *) die "unknown command '$cmd' (expected setup, build, test, train or demo)" ;;
esac
