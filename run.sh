#!/usr/bin/env bash
# ropex front door.
#   ./run.sh setup        install system packages (Debian) and the project venv (.venv)
#   ./run.sh build        setup + configure + build build/ropex and the tests
#   ./run.sh test         build + run the whole test suite through ctest, then `fuzz --smoke`
#                         (ROPEX_SKIP_FUZZ=1 leaves that out) and `gpu-check --cpu`
#                         (ROPEX_SKIP_GPU_CHECK=1 leaves that out)
#   ./run.sh fuzz [--smoke] [--time SECONDS] [--runs N] [TARGET...]
#                         libFuzzer targets for every parser of untrusted input (tests/fuzz/README.md),
#                         built with clang + ASan/UBSan in build-fuzz; SECONDS per target (default 300,
#                         --smoke: 10); fails on any crash, leak, hang or sanitizer report
#   ./run.sh sanitize [CTEST ARGS]
#                         the same under AddressSanitizer + UndefinedBehaviorSanitizer (-DROPEX_SANITIZE=ON,
#                         build folder build-sanitize unless ROPEX_BUILD_DIR says otherwise; run-time
#                         options and suppressions: tests/sanitize/)
#   ./run.sh configure    setup + configure only (CMake, no compiling)
#   ./run.sh bundle-deps DIR
#                         download the Debian packages the build needs besides torch (SentencePiece,
#                         Oniguruma, utf8proc, zlib, zstd, protobuf-c with protoc-c, ISA-L, nlohmann/json,
#                         spdlog, fmt, gloo headers, xxHash, GoogleTest) and unpack them into
#                         DIR, listed in DIR/MANIFEST, for machines without a package registry; also
#                         Arrow/Parquet C++ (for .parquet inputs) from the venv's pyarrow wheel into
#                         DIR/pyarrow (about 65 MB; ROPEX_BUNDLE_PARQUET=0 leaves it out)
#   ./run.sh train CONFIG [--nproc N] [--set key=value ...]
#                         build, then train on N local ranks (default 1) without Python: each rank
#                         gets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; if one fails the
#                         others are stopped and the exit code is the failing rank's. TERM, INT, USR1
#                         and HUP are passed on to every rank: they stop with a checkpoint and the
#                         exit code is 75 (run the same command again to resume); a second Ctrl-C
#                         stops them at once (130); QUIT is passed on and ends them (no checkpoint)
#   ./run.sh eval [--nproc N] ARGS...
#                         build, then `ropex eval ARGS` on N local ranks (default 1; prompts and
#                         windows are shared out), signals passed on as for train
#                         (train and eval run in the caller's folder: CONFIG, --model and the
#                         relative paths in a config mean what they mean to build/ropex there)
#   ./run.sh debug-tiny   build a tiny model, tokenizer and token store from public text Debian ships
#                         (/usr/share/common-licenses) under runs/debug_tiny and run configs/debug_tiny.json
#   ./run.sh bench [--device cpu|cuda] [--quick]
#                         ropex's training step against transformers' (eager and torch.compile) on the
#                         same machine, same shapes, one table of ratios (runs/bench/DATE/table.md);
#                         GPU: debug, TinyLlama-1.1B and Llama-2-7B shapes at 4K (+16K/32K), bf16;
#                         CPU: the debug shape and bench/shapes/small.json in float32
#   ./run.sh gpu-check [--cpu] [--out DIR] [--only STAGE,...]
#                         the one prepared call that proves the CUDA path on a GPU node (builds
#                         build/ropex only, then bench/gpu_check.py): environment and the GPU's
#                         ceilings, fp32 parity, bf16 logits against transformers, SDPA backends,
#                         train + resume on NCCL, bench against transformers; one table, and four
#                         files in DIR (default runs/gpu-check/DATE-cuda|cpu): gpu-check.log,
#                         table.md, summary.json, bench.jsonl. Stages: env, fp32-parity, bf16-vs-hf,
#                         sdpa, train-resume, bench. --cpu: every stage's logic on the CPU (Gloo,
#                         tiny shapes; under a minute on 2 cores once built). Fails if any stage did
#                         not pass. On a GPU the build and the stages share ROPEX_GPU_CHECK_SECONDS
#                         (default 560: one device command may run 10 minutes)
#   ./run.sh demo         the whole story on a CPU in under 10 minutes (after build): a tokenizer and
#                         corpus from the Python standard library's sources, a tiny Llama pre-trained
#                         at a 256-token window with passkey / key-value / copy examples mixed in,
#                         extended 4x to 1024 with CREAM (at the 256 window) and with PI (at 1024),
#                         evaluated (perplexity by length, passkey, key-value by position), exported;
#                         ends with a table and the pictures' paths. Re-running reuses what is done
#                         (runs/demo).
#   ./run.sh repro        the papers' comparison in miniature (bench/REPRO.md): the demo's base
#                         extended 8x to 2048 with PI and YaRN (at 2048) and PoSE and CREAM (at 256),
#                         all evaluated the same way (runs/repro; reuses the demo's stages)
#
# Environment:
#   Torch_DIR=/path/to/libtorch/share/cmake/Torch   build against an existing LibTorch instead of
#                                                   the venv's torch wheel (the venv is still used
#                                                   by the reference tests)
#   ROPEX_JOBS=N        parallel compile jobs (default: number of cores)
#   ROPEX_SKIP_APT=1    do not touch system packages (they must already be installed)
#   ROPEX_DEPS=DIR      build with the dependency bundle DIR (./run.sh bundle-deps) before the
#                       system's packages; implies ROPEX_SKIP_APT=1
#   ROPEX_PYTHON=PY     use this Python's torch (and transformers, for the tests) instead of .venv
#   ROPEX_BUILD_DIR=DIR build folder (default: build)
#   ROPEX_BUNDLE_PARQUET=0
#                       bundle-deps without pyarrow's Arrow/Parquet libraries and headers (libarrow alone
#                       is ~47 MB: for bundles that must stay small); a build with such a bundle takes
#                       Arrow from ROPEX_PYTHON's (or .venv's) pyarrow or the system, else reads no .parquet
#   ROPEX_SKIP_BUILD=1  no setup or build step: commands use the build folder's ropex as it is (e.g.
#                       ./run.sh train on compute nodes without a package registry)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLER_PWD="$PWD"
cd "$ROOT"
VENV="$ROOT/.venv"
BUILD="$ROOT/build"
[[ -z "${ROPEX_BUILD_DIR:-}" ]] || BUILD="$(cd "$CALLER_PWD" && realpath -ms -- "$ROPEX_BUILD_DIR")"
JOBS="${ROPEX_JOBS:-$(nproc)}"
APT_PACKAGES=(build-essential cmake ninja-build pkg-config ccache git
              libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgloo-dev
              libxxhash-dev libonig-dev libutf8proc-dev zlib1g-dev libzstd-dev python3-venv clang libclang-rt-14-dev
              libprotobuf-c-dev protobuf-c-compiler libisal-dev)   # TensorBoard event files: protobuf-c, protoc-c, ISA-L CRC32C

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
  [[ -n "${ROPEX_PYTHON:-}" ]] && return 0
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

setup() { use_bundle; use_python; setup_apt; setup_venv; }

# ---- machines without a package registry: ./run.sh bundle-deps DIR, then ROPEX_DEPS=DIR ----
# -dev packages whose shared libraries come along, and packages used for headers / static libraries.
BUNDLE_WITH_LIBS=(libsentencepiece-dev libspdlog-dev libfmt-dev libonig-dev libutf8proc-dev zlib1g-dev zlib1g libzstd-dev)   # zlib1g: not pulled in by name (not lib*)
# TensorBoard event files: protobuf-c and ISA-L (CRC32C), and protoc-c (protobuf-c-compiler, with
# libprotoc): CMake runs the bundle's usr/bin/protoc-c with the bundle's libraries.
BUNDLE_WITH_LIBS+=(libprotobuf-c-dev libisal-dev protobuf-c-compiler)
BUNDLE_HEADERS=(nlohmann-json3-dev libgloo-dev libgtest-dev libxxhash-dev)   # xxHash: XXH_INLINE_ALL
BUNDLE_BASE=" libc6 libgcc-s1 libstdc++6 "   # every machine with a C++ compiler has these

abspath() { (cd "$CALLER_PWD" && realpath -ms -- "$1"); }   # relative to where run.sh was called

# Direct dependencies of a Debian package (first choice of each alternative, no virtual packages).
apt_depends() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$1" |
    awk '{ alt = pipe; pipe = ($1 ~ /^\|/) } $1 ~ /^\|?(Pre)?Depends:$/ && !alt && $2 !~ /^</ { sub(/:.*/, "", $2); print $2 }'
}

bundle_deps() {
  local dir="${1:-}"
  [[ -n "$dir" ]] || die "usage: ./run.sh bundle-deps DIR"
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    die "bundle-deps needs apt-get and dpkg-deb (Debian/Ubuntu) and the package registry"
  dir="$(abspath "$dir")"
  [[ ! -e "$dir" || -f "$dir/MANIFEST" || -z "$(ls -A "$dir")" ]] ||
    die "$dir exists and is not a bundle (no MANIFEST): give a new or empty folder"
  # The libraries the -dev packages link to, and theirs, except the C/C++ runtime.
  local pkgs=("${BUNDLE_WITH_LIBS[@]}" "${BUNDLE_HEADERS[@]}") queue=("${BUNDLE_WITH_LIBS[@]}") p d
  while ((${#queue[@]})); do
    p="${queue[0]}"; queue=("${queue[@]:1}")
    for d in $(apt_depends "$p"); do
      [[ "$d" == lib* && "$d" != *-dev && "$BUNDLE_BASE" != *" $d "* && " ${pkgs[*]} " != *" $d "* ]] || continue
      pkgs+=("$d"); queue+=("$d")
    done
  done
  local tmp="$dir.partial"
  rm -rf "$tmp" && mkdir -p "$tmp/debs"
  log "downloading ${pkgs[*]}"
  (cd "$tmp/debs" && apt-get download "${pkgs[@]}") >"$tmp/apt.log" 2>&1 ||
    die "apt-get download failed (see $tmp/apt.log; as root, 'apt-get update' may be needed first)"
  local deb pc link rel
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
  # Relocatable: pkg-config files name their own location instead of /usr, symbolic links are relative.
  while IFS= read -r pc; do
    rel="$(realpath -m --relative-to="$(dirname "$pc")" "$tmp/usr")"
    sed -i -E -e "1i ropex_bundle_usr=\${pcfiledir}/$rel" -e 's#/usr(/|[[:space:]]|$)#${ropex_bundle_usr}\1#g' "$pc"
    ! grep -q '/usr' "$pc" || die "$pc still names /usr after rewriting its paths"
  done < <(find "$tmp/usr" -name '*.pc')
  while IFS= read -r link; do
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$tmp$(readlink "$link")")" "$link"
  done < <(find "$tmp" -type l -lname '/*')
  find "$tmp" -xtype l -delete   # links into packages left out (libgloo.so: gloo is used for headers only)
  local pyarrow_version=""
  [[ "${ROPEX_BUNDLE_PARQUET:-1}" == 0 ]] || pyarrow_version="$(bundle_pyarrow "$tmp/pyarrow")"
  local sos glibc="" glibcxx=""
  mapfile -t sos < <(find "$tmp/usr/lib" ${pyarrow_version:+"$tmp/pyarrow/lib"} -name '*.so*' -type f)
  if ((${#sos[@]})); then
    glibc="$(grep -ahoE 'GLIBC_[0-9]+(\.[0-9]+)+' "${sos[@]}" | sort -uV | tail -1)"
    glibcxx="$(grep -ahoE 'GLIBCXX_[0-9]+(\.[0-9]+)+' "${sos[@]}" | sort -uV | tail -1)"
  fi
  {
    echo "# ropex dependency bundle (./run.sh bundle-deps). Build with: ROPEX_DEPS=<this folder> ./run.sh build"
    echo "made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}" | tr ' ' _)"
    echo "arch $(dpkg --print-architecture)"
    echo "needs ${glibc:-GLIBC_0} ${glibcxx:-GLIBCXX_0}"
    for deb in "$tmp"/debs/*.deb; do dpkg-deb --show --showformat='package ${Package} ${Version} ${Architecture}\n' "$deb"; done
    [[ -z "$pyarrow_version" ]] || echo "pyarrow $pyarrow_version"
  } > "$tmp/MANIFEST"
  rm -rf "$tmp/debs" "$tmp/apt.log"
  [[ -e "$dir" ]] && rm -rf "$dir"
  mv "$tmp" "$dir"
  log "bundle $dir ($(du -sh "$dir" | cut -f1)): $(awk '$1 == "package" { printf "%s%s %s", sep, $2, $3; sep = ", " }' "$dir/MANIFEST")"
  log "build with it: ROPEX_DEPS=$dir [ROPEX_PYTHON=/path/to/python-with-torch] ./run.sh build"
}

# Arrow/Parquet C++ for the Parquet reader (CMakeLists.txt looks in ROPEX_DEPS/pyarrow first): the
# venv's (or ROPEX_PYTHON's) pyarrow wheel's libarrow.so.N and libparquet.so.N into DIR/lib, the arrow/
# and parquet/ headers into DIR/include; prints the pyarrow version.
bundle_pyarrow() {
  local dir="$1" py="${ROPEX_PYTHON:-$VENV/bin/python}" info inc lib version f
  [[ -n "${ROPEX_PYTHON:-}" ]] || setup_venv >&2
  info="$("$py" -c 'import pyarrow; print(pyarrow.get_include()); print(pyarrow.get_library_dirs()[0]); print(pyarrow.__version__)' 2>/dev/null)" ||
    die "bundle-deps: $py has no pyarrow (pip install pyarrow==26.0.1, or ROPEX_BUNDLE_PARQUET=0 for a bundle without Parquet support)"
  { read -r inc; read -r lib; read -r version; } <<<"$info"
  mkdir -p "$dir/lib" "$dir/include"
  for f in "$lib"/libarrow.so.[0-9]* "$lib"/libparquet.so.[0-9]*; do
    [[ -f "$f" ]] || die "bundle-deps: $lib lacks libarrow.so.* or libparquet.so.*"
    cp -L "$f" "$dir/lib/"
  done
  cp -r "$inc/arrow" "$inc/parquet" "$dir/include/"
  log "bundling pyarrow $version's Arrow/Parquet C++ ($(du -sh "$dir" | cut -f1); ROPEX_BUNDLE_PARQUET=0 leaves it out)"
  echo "$version"
}

# ROPEX_DEPS: check the bundle fits this machine; no apt.
use_bundle() {
  [[ -n "${ROPEX_DEPS:-}" ]] || return 0
  ROPEX_DEPS="$(abspath "$ROPEX_DEPS")"
  local m="$ROPEX_DEPS/MANIFEST" arch need have lib
  [[ -f "$m" ]] || die "ROPEX_DEPS=$ROPEX_DEPS is not a dependency bundle (no MANIFEST): make one with ./run.sh bundle-deps DIR"
  arch="$(awk '$1 == "arch" { print $2 }' "$m")"
  case "$(uname -m)" in x86_64) have=amd64 ;; aarch64) have=arm64 ;; *) have="$arch" ;; esac
  [[ "$arch" == "$have" ]] || die "the bundle $ROPEX_DEPS is for $arch, this machine is $have"
  need="$(awk '$1 == "needs" { sub(/^GLIBC_/, "", $2); print $2 }' "$m")"
  have="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')" || true
  if [[ -n "$have" && "$(printf '%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
    die "the bundle's libraries need glibc $need, this machine has $have: make the bundle on a system as old as this one ($m says where it was made)"
  fi
  need="$(awk '$1 == "needs" { print $3 }' "$m")"
  lib="$(${CXX:-c++} -print-file-name=libstdc++.so.6 2>/dev/null)" || true
  if [[ "$need" != GLIBCXX_0 && -f "$lib" ]] && ! grep -aq "$need" "$lib"; then
    die "the bundle's libraries need $need, which $lib lacks: make the bundle on a system as old as this one"
  fi
  export ROPEX_SKIP_APT=1
  [[ -n "${ROPEX_PYTHON:-}" || -x "$VENV/bin/python" ]] ||
    log "note: without ROPEX_PYTHON=/path/to/python-with-torch, run.sh creates $VENV with pip (package index needed)"
}

# ROPEX_PYTHON: a given Python (with torch) instead of the project venv.
use_python() {
  [[ -n "${ROPEX_PYTHON:-}" ]] || return 0
  if [[ "$ROPEX_PYTHON" == */* ]]; then ROPEX_PYTHON="$(abspath "$ROPEX_PYTHON")"
  else
    command -v "$ROPEX_PYTHON" >/dev/null || die "ROPEX_PYTHON: no $ROPEX_PYTHON on the PATH"
    ROPEX_PYTHON="$(command -v "$ROPEX_PYTHON")"
  fi
  [[ -x "$ROPEX_PYTHON" ]] || die "ROPEX_PYTHON=$ROPEX_PYTHON is not an executable"
  [[ -n "${Torch_DIR:-}" ]] || "$ROPEX_PYTHON" -c 'import torch' 2>/dev/null ||
    die "ROPEX_PYTHON=$ROPEX_PYTHON cannot import torch (or set Torch_DIR)"
  "$ROPEX_PYTHON" -c 'import transformers, safetensors, sentencepiece' 2>/dev/null ||
    log "note: $ROPEX_PYTHON lacks transformers/safetensors/sentencepiece: building and training do not need them, the reference tests (./run.sh test) fail without them"
}

configure() {
  local prefix="" py="${ROPEX_PYTHON:-$VENV/bin/python}"
  if [[ -z "${Torch_DIR:-}" ]]; then
    prefix="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  fi
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    # Precompiled headers with ccache need these sloppiness settings to get cache hits.
    export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
    export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
  fi
  if [[ -f "$BUILD/build.ninja" ]]; then
    # A build folder keeps the bundle and the Python (LibTorch, the tests' Python) it was configured with.
    local have
    have="$(sed -n 's/^ROPEX_DEPS:PATH=//p' "$BUILD/CMakeCache.txt")"
    [[ -z "${ROPEX_DEPS:-}" || "$have" == "$ROPEX_DEPS" ]] || die "$BUILD was configured with" \
      "ROPEX_DEPS='$have', not '$ROPEX_DEPS': remove it or give another folder in ROPEX_BUILD_DIR"
    have="$(sed -n 's/^ROPEX_PYTHON:FILEPATH=//p' "$BUILD/CMakeCache.txt")"
    [[ -z "${ROPEX_PYTHON:-}" || "$have" == "$py" ]] || log "note: $BUILD was configured with" \
      "ROPEX_PYTHON=$have (its LibTorch, the tests' Python), which stays; for $py use another ROPEX_BUILD_DIR"
  else
    log "configuring $BUILD (LibTorch from ${Torch_DIR:-$prefix}${ROPEX_DEPS:+; dependencies from $ROPEX_DEPS})"
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      ${prefix:+-DCMAKE_PREFIX_PATH="$prefix"} ${Torch_DIR:+-DTorch_DIR="$Torch_DIR"} \
      ${ROPEX_DEPS:+-DROPEX_DEPS="$ROPEX_DEPS"} -DROPEX_PYTHON="$py" "${launcher[@]}" "${CONFIGURE_EXTRA[@]}" >/dev/null
  fi
}

# build [TARGET]: setup, configure, then everything or only TARGET (gpu-check builds ropex alone).
build() {
  if [[ "${ROPEX_SKIP_BUILD:-0}" == 1 ]]; then
    [[ -x "$BUILD/ropex" ]] || die "ROPEX_SKIP_BUILD=1 but $BUILD/ropex does not exist (build it first: ./run.sh build)"
    return 0
  fi
  setup
  configure
  log "building ${1:-everything} with $JOBS jobs"
  export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
  cmake --build "$BUILD" -j "$JOBS" ${1:+--target "$1"}
}

run_tests() {
  build
  log "running tests"
  (cd "$BUILD" && ctest --output-on-failure -j "$JOBS" "$@")
  # A short fuzzing smoke of every parser of untrusted input (about 2 minutes; ROPEX_SKIP_FUZZ=1 skips
  # it, and so does a run of chosen tests: ./run.sh test -R PATTERN).
  (($#)) || [[ "${ROPEX_SKIP_FUZZ:-0}" == 1 ]] || fuzz --smoke
  # The GPU check's dry run on the CPU (about 2 minutes), so its script is known to work before a GPU
  # node runs it (ROPEX_SKIP_GPU_CHECK=1 skips it; so does a run of chosen tests).
  (($#)) || [[ "${ROPEX_SKIP_GPU_CHECK:-0}" == 1 ]] || ROPEX_SKIP_BUILD=1 gpu_check --cpu --out "$BUILD/gpu-check-cpu"
}

# ./run.sh sanitize: a build folder of its own (build-sanitize), configured with ROPEX_SANITIZE=ON.
CONFIGURE_EXTRA=()
run_sanitized_tests() {
  [[ -n "${ROPEX_BUILD_DIR:-}" ]] || BUILD="$ROOT/build-sanitize"
  CONFIGURE_EXTRA=(-DROPEX_SANITIZE=ON)
  [[ ! -f "$BUILD/CMakeCache.txt" ]] || grep -qx 'ROPEX_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" ||
    die "$BUILD was configured without ROPEX_SANITIZE: give another ROPEX_BUILD_DIR (or remove it)"
  ROPEX_SKIP_FUZZ=1 ROPEX_SKIP_GPU_CHECK=1 run_tests "$@"  # fuzz targets carry their own sanitizers (./run.sh fuzz)
}

train_local() {
  local config="" nproc=1 args=()
  while (($#)); do  # --nproc anywhere (before or after CONFIG); everything else goes to ropex train
    case "$1" in
      --nproc) [[ $# -ge 2 ]] || die "--nproc expects a number of ranks"; nproc="$2"; shift 2 ;;
      --nproc=*) nproc="${1#*=}"; shift ;;
      -*) args+=("$1"); [[ "$1" == --set && $# -ge 2 ]] && { args+=("$2"); shift; }; shift ;;
      *) if [[ -z "$config" ]]; then config="$1"; else args+=("$1"); fi; shift ;;
    esac
  done
  [[ -n "$config" ]] || die "usage: ./run.sh train CONFIG [--nproc N] [--set key=value ...]"
  [[ "$nproc" =~ ^[1-9][0-9]*$ ]] || die "--nproc expects a positive integer, got '$nproc'"
  build >&2
  cd "$CALLER_PWD"   # CONFIG and the paths in it are the caller's, as for build/ropex train
  launch_ranks "$nproc" train "$config" "${args[@]}"
}

eval_local() {
  local nproc=1 args=()
  while (($#)); do
    case "$1" in
      --nproc) [[ $# -ge 2 ]] || die "--nproc expects a number of ranks"; nproc="$2"; shift 2 ;;
      --nproc=*) nproc="${1#*=}"; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  [[ "$nproc" =~ ^[1-9][0-9]*$ ]] || die "--nproc expects a positive integer, got '$nproc'"
  build >&2
  cd "$CALLER_PWD"
  launch_ranks "$nproc" eval "${args[@]}"
}

# ---- processes run.sh waits on (ranks, the demo's side-by-side runs): signals are passed on ----
# ropex stops at the next step boundary with a checkpoint on TERM, INT or USR1 and exits with
# EX_TEMPFAIL (75: run the same command again to resume); a second INT makes it exit at once (130).
# run.sh starts each such process in a process group of its own (set -m), so that a terminal's
# Ctrl-C reaches run.sh alone, and passes every signal below on to them once, then keeps waiting.
EX_TEMPFAIL=75
FORWARDED_SIGNALS=(TERM INT USR1 HUP QUIT)

# Traps FORWARDED_SIGNALS to pass each on to the pids in FORWARD_TO, a local list of the caller's
# (dynamic scope: the trap sees the list of the function running when the signal arrives).
trap_forwarding() {
  local s
  # shellcheck disable=SC2064  # (the signal's name is meant to be expanded now)
  for s in "${FORWARDED_SIGNALS[@]}"; do trap "forward_signal $s" "$s"; done
}
forward_signal() {
  ((${#FORWARD_TO[@]} == 0)) || kill -s "$1" "${FORWARD_TO[@]}" 2>/dev/null || true
}

# Waits for the processes in FORWARD_TO (each leaves the list when it ends) while trap_forwarding
# passes signals on to those left.
#   wait_forwarding stop   the first process to end with a status other than 0 and 75 has the
#                          others killed (SIGKILL: a TERM would now ask them for a checkpoint, which
#                          cannot complete without the failed rank) and its status is returned;
#   wait_forwarding all    waits for every process and returns the first such status.
# Otherwise the status is 75 if any process ended with 75, else 0.
wait_forwarding() {
  local mode="$1" rc=0 tempfail=0 lost=0 st ended p left why
  while ((${#FORWARD_TO[@]})); do
    ended="" st=0
    # A process killed by a signal can be reaped and reported by bash inside another `wait`, after
    # which `wait -n` no longer knows it ("no such job", 127) while `wait PID` still gives its
    # status: take those first.
    for p in "${FORWARD_TO[@]}"; do
      if ! kill -0 "$p" 2>/dev/null; then ended=$p; wait "$p" 2>/dev/null || st=$?; break; fi
    done
    if [[ -z "$ended" ]]; then
      # (`if ! wait` would leave $? at 0, losing the failure's status; -p names the process that
      # ended so that it leaves the list.)
      wait -n -p ended "${FORWARD_TO[@]}" 2>/dev/null || st=$?
      if [[ -z "${ended:-}" ]]; then
        ((st > 128)) && continue       # interrupted by a trapped signal, which its trap passed on
        ((st == 127 && lost++ == 0)) && continue   # the next round's look takes it
        log "wait failed with status $st"
        return "$st"
      fi
    fi
    lost=0
    left=()
    for p in "${FORWARD_TO[@]}"; do [[ "$p" == "$ended" ]] || left+=("$p"); done
    FORWARD_TO=("${left[@]}")
    if ((st == EX_TEMPFAIL)); then
      tempfail=1
    elif ((st != 0 && rc == 0)); then
      rc=$st
      if [[ "$mode" == stop ]] && ((${#FORWARD_TO[@]})); then
        why=""
        ((st <= 128)) || why=" (128 + SIG$(kill -l $((st - 128))))"
        log "a rank exited with status $st$why; stopping the others"
        kill -KILL "${FORWARD_TO[@]}" 2>/dev/null || true
      fi
    fi
  done
  ((rc == 0)) || return "$rc"
  ((tempfail == 0)) || return "$EX_TEMPFAIL"
  return 0
}

# Runs `ropex COMMAND ARGS...` as NPROC local ranks (torchrun's environment variables). TERM, INT,
# USR1, HUP and QUIT sent to run.sh are passed on to every rank, and run.sh waits for them: ranks
# that stop with a checkpoint exit 75, and so does launch_ranks once all have ended. The first rank
# to fail otherwise takes the others down instead of leaving them waiting on a collective.
launch_ranks() {
  local nproc="$1" r rc=0 FORWARD_TO=()
  shift
  local port="${MASTER_PORT:-$(( 20000 + RANDOM % 20000 ))}"
  local job="${ROPEX_JOB_ID:-$$-$RANDOM}"   # store keys of this launch (trainer/distributed.h)
  trap_forwarding
  for ((r = 0; r < nproc; r++)); do
    set -m   # a process group of its own (stdin /dev/null, as bash gives background commands without it)
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$nproc LOCAL_WORLD_SIZE=$nproc MASTER_ADDR=127.0.0.1 MASTER_PORT=$port ROPEX_JOB_ID=$job \
      "$BUILD/ropex" "$@" </dev/null &
    set +m
    FORWARD_TO+=($!)
  done
  wait_forwarding stop || rc=$?
  trap - "${FORWARDED_SIGNALS[@]}"
  [[ "$1" != train || rc -ne EX_TEMPFAIL ]] ||
    log "training stopped early with a checkpoint (status 75); the ranks' last lines say how to resume"
  return "$rc"
}

debug_tiny() {
  build >&2
  local dir="$ROOT/runs/debug_tiny" bin="$BUILD/ropex"
  mkdir -p "$dir"
  if [[ ! -f "$dir/store/COMPLETE" ]]; then
    cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 /usr/share/common-licenses/GPL-2 \
        /usr/share/common-licenses/LGPL-2.1 > "$dir/corpus.txt"
    "$bin" train-tokenizer --input "$dir/corpus.txt" --output "$dir/tok" --vocab-size 500 >/dev/null
    "$bin" new-model --output "$dir/model" --overwrite --tokenizer "$dir/tok.model" --set hidden_size=64 \
      --set intermediate_size=128 --set num_hidden_layers=2 --set num_attention_heads=4 \
      --set num_key_value_heads=2 --set max_position_embeddings=64
    "$bin" prepare --tokenizer "$dir/tok.model" --input "$dir/corpus.txt" --output "$dir/store" --txt-split blank_line
  fi
  launch_ranks 1 train configs/debug_tiny.json "$@"   # signals passed on as for ./run.sh train
}

# ---- bench ----
bench() {
  local device="" quick=0
  while (($#)); do
    case "$1" in
      --device) device="$2"; shift 2 ;;
      --quick) quick=1; shift ;;
      *) die "bench: unknown option '$1' (expected --device cpu|cuda, --quick)" ;;
    esac
  done
  build >&2
  local py="${ROPEX_PYTHON:-$VENV/bin/python}" bin="$BUILD/ropex"
  if [[ -z "$device" ]]; then
    device=cpu; "$py" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && device=cuda
  fi
  local out="$ROOT/runs/bench/$(date +%Y%m%d-%H%M%S)-$device"
  mkdir -p "$out"
  local -a runs
  if [[ $device == cuda ]]; then
    runs=("--shape debug --seq 4096 --batch 8 --dtype bfloat16"
          "--shape tinyllama-1.1b --seq 4096 --batch 4 --dtype bfloat16"
          "--shape tinyllama-1.1b --seq 4096 --batch 4 --dtype bfloat16 --ckpt"
          "--shape llama2-7b --seq 4096 --batch 1 --dtype bfloat16 --ckpt")
    ((quick)) || runs+=("--shape tinyllama-1.1b --seq 16384 --batch 1 --dtype bfloat16 --ckpt"
                        "--shape tinyllama-1.1b --seq 32768 --batch 1 --dtype bfloat16 --ckpt"
                        "--shape llama2-7b --seq 16384 --batch 1 --dtype bfloat16 --ckpt"
                        "--shape llama2-7b --seq 32768 --batch 1 --dtype bfloat16 --ckpt")
  else
    runs=("--shape debug --seq 256 --batch 4 --dtype float32"
          "--config bench/shapes/small.json --seq 256 --batch 2 --dtype float32")
    ((quick)) || runs+=("--config bench/shapes/small.json --seq 256 --batch 2 --dtype float32 --ckpt")
  fi
  local threads=()
  [[ $device == cpu ]] && threads=(--threads "$(nproc)")
  log "bench on $device: ${#runs[@]} shapes, ropex then transformers eager then torch.compile; lines in $out"
  local r
  for r in "${runs[@]}"; do
    log "  $r"
    # shellcheck disable=SC2086
    "$bin" bench $r --device "$device" --json --out "$out/ropex.jsonl" >/dev/null || log "    ropex: failed (see $out/ropex.jsonl)"
    # shellcheck disable=SC2086
    "$py" bench/baseline_hf.py $r --device "$device" "${threads[@]}" --json --out "$out/hf.jsonl" >/dev/null ||
      log "    transformers eager: failed"
    # shellcheck disable=SC2086
    "$py" bench/baseline_hf.py $r --device "$device" "${threads[@]}" --compile --json --out "$out/hf.jsonl" >/dev/null ||
      log "    transformers torch.compile: failed"
  done
  "$py" bench/compare.py "$out/ropex.jsonl" "$out/hf.jsonl" | tee "$out/table.md"
  log "table: $out/table.md"
}

# ---- gpu-check: bench/gpu_check.py, the prepared call for a GPU node (--cpu: its dry run) ----
gpu_check() {
  local cpu=0 out="" only=() kind=cuda
  while (($#)); do
    case "$1" in
      --cpu) cpu=1; kind=cpu; shift ;;
      --out) [[ $# -ge 2 && -n "$2" ]] || die "--out expects a folder"; out="$2"; shift 2 ;;
      --only) [[ $# -ge 2 && -n "$2" ]] || die "--only expects STAGE,... (env, fp32-parity, bf16-vs-hf, sdpa, train-resume, bench)"
              only=(--only "$2"); shift 2 ;;
      *) die "gpu-check: unknown option '$1' (expected --cpu, --out DIR, --only STAGE,...)" ;;
    esac
  done
  # On a GPU node the build counts against the call's time: a device command may run 10 minutes, so
  # the stages get what is left of ROPEX_GPU_CHECK_SECONDS (default 560) after the build.
  local t0=$SECONDS total="${ROPEX_GPU_CHECK_SECONDS:-560}" tool missing=()
  [[ "$total" =~ ^[1-9][0-9]*$ ]] || die "ROPEX_GPU_CHECK_SECONDS must be a number of seconds, got '$total'"
  # What the build needs on a node without a package registry, said before anything is compiled.
  if [[ "${ROPEX_SKIP_BUILD:-0}" != 1 ]]; then
    for tool in cmake ninja pkg-config "${CXX:-c++}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    ((cpu)) || command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]] || missing+=("nvcc (the CUDA toolkit)")
    ((${#missing[@]} == 0)) || die "gpu-check: this machine lacks ${missing[*]}, which the build needs"
  fi
  build ropex >&2
  use_python   # (ROPEX_PYTHON as an absolute path also when the build step is skipped)
  local py="${ROPEX_PYTHON:-$VENV/bin/python}"
  if ((!cpu)) && ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    die "gpu-check: no GPU visible to $py (torch.cuda.is_available() is false); for the CPU dry run: ./run.sh gpu-check --cpu"
  fi
  if [[ -n "$out" ]]; then out="$(abspath "$out")"
  else out="$ROOT/runs/gpu-check/$(date +%Y%m%d-%H%M%S)-$kind"
  fi
  local flags=("${only[@]}") left=$((total - (SECONDS - t0)))
  if ((cpu)); then flags+=(--cpu)
  else
    ((left >= 120)) || log "warning: the build took $((SECONDS - t0)) s; 120 s are left for the stages"
    flags+=(--deadline "$((left >= 120 ? left : 120))")
  fi
  log "gpu-check on $kind: files in $out"
  local rc=0
  "$py" "$ROOT/bench/gpu_check.py" --ropex "$BUILD/ropex" --out "$out" "${flags[@]}" || rc=$?
  return "$rc"
}

# ---- demo ----
DEMO_T0=0
DEMO_TAG=demo
DEMO_KV_IDS=hex:2  # 2-character ids: 2 tokens each, a key a 2-layer model can match
demo_stage() { printf '\033[1m[%s %s]\033[0m %s  (%s elapsed)\n' "$DEMO_TAG" "$1" "$2" "$(date -u -d @$((SECONDS - DEMO_T0)) +%M:%S)" >&2; }

demo() {
  demo_base
  local dir="$ROOT/runs/demo" py="${ROPEX_PYTHON:-$VENV/bin/python}"
  demo_stage 4/7 "extending to 1024, side by side on one core each: CREAM at the 256 window, PI at 1024 (configs/demo/)"
  demo_parallel "demo_train demo cream" "demo_train demo pi"
  demo_stage 5/7 "evaluating base, CREAM and PI (perplexity, passkey, key-value) at 128 ... 1024"
  local lengths=128,256,512,768,1024
  demo_parallel "demo_eval demo pretrain 'base (256)' $lengths" "demo_eval demo cream CREAM $lengths"
  demo_eval demo pi PI $lengths 2

  demo_stage 6/7 "pictures (matplotlib)"
  "$py" "$ROOT/trainer/plot_eval.py" --output "$dir/compare" "$dir/eval-pretrain" "$dir/eval-cream" "$dir/eval-pi" >/dev/null

  demo_stage 7/7 "summary"
  "$py" "$ROOT/trainer/demo_summary.py" "$dir/eval-pretrain" "$dir/eval-cream" "$dir/eval-pi"
  printf '\nexported models: %s\n' "$dir/cream/export  $dir/pi/export  (Hugging Face format; transformers loads them)"
  printf 'full tables:     %s\n' "$dir/compare/summary.md  $dir/eval-*/results.md"
  printf 'pictures:        %s\n' "$dir/compare/ppl_vs_length.png" "$dir/compare/passkey_heatmap.png" "$dir/compare/kv_by_position.png"
  printf 'demo time:       %s (after the build)\n' "$(date -u -d @$((SECONDS - DEMO_T0)) +%M:%S)"
}

# Stages 1-3 of the demo: corpus, tokenizer, training data, the base model pre-trained at 256.
demo_base() {
  build >&2
  DEMO_T0=$SECONDS
  local dir="$ROOT/runs/demo" bin="$BUILD/ropex" py="${ROPEX_PYTHON:-$VENV/bin/python}"
  mkdir -p "$dir"

  demo_stage 1/7 "corpus (Python's standard library sources; every 8th module held out for perplexity) and tokenizer"
  [[ -f "$dir/corpus/corpus.json" ]] || "$py" "$ROOT/trainer/demo_corpus.py" "$dir/corpus" >&2
  if [[ ! -f "$dir/tok.model" ]]; then
    # Two passes: a first tokenizer measures a few task prompts, the final one learns their words too.
    "$bin" train-tokenizer --input "$dir/corpus/train.txt" --output "$dir/tok0" --vocab-size 1000 >/dev/null
    "$bin" make-tasks --tokenizer "$dir/tok0.model" --task passkey --length 400 --count 20 --seed 100 --output "$dir/tok_passkey.jsonl"
    "$bin" make-tasks --tokenizer "$dir/tok0.model" --task kv --length 400 --count 20 --kv-ids hex:4 --seed 101 --output "$dir/tok_kv.jsonl"
    "$py" -c 'import json,sys; [print(json.loads(l)["text"]) for f in sys.argv[1:] for l in open(f)]' \
      "$dir/tok_passkey.jsonl" "$dir/tok_kv.jsonl" | cat "$dir/corpus/train.txt" - > "$dir/tokenizer_text.txt"
    "$bin" train-tokenizer --input "$dir/tokenizer_text.txt" --output "$dir/tok.partial" --vocab-size 1000 >/dev/null
    mv "$dir/tok.partial.vocab" "$dir/tok.vocab" && mv "$dir/tok.partial.model" "$dir/tok.model"
  fi

  demo_stage 2/7 "training data: passkey, key-value and copy examples + source code, in 256- and 1024-token windows"
  # Copy examples (a run of random ids, then the same run again) teach the induction mechanism that
  # retrieval is built on, passkey examples the retrieval itself: with half as many of either, a
  # 2-layer model's induction formed late or never depending on the seed. CREAM fine-tunes on the
  # pre-training store (its windows stay 256 tokens, its positions go to 1024); PI on 1024-token
  # windows with the same shares, its retrieval examples 256 to 1024 tokens long (TASK:COUNT:MIN)
  # so that it keeps short prompts.
  local spec
  for spec in "pre-256 256 passkey:6000 kv:1500 copy:6000" "ft-1024 1024 passkey:1500:256 kv:375:256 copy:1500"; do
    demo_store $spec
  done
  [[ -f "$dir/store-heldout/COMPLETE" ]] ||
    "$bin" prepare --tokenizer "$dir/tok.model" --input "$dir/corpus/heldout.jsonl" --output "$dir/store-heldout" --overwrite >/dev/null

  demo_stage 3/7 "pre-training the base model at a 256-token window (configs/demo/pretrain.json)"
  [[ -f "$dir/base-init/config.json" ]] ||
    "$bin" new-model --output "$dir/base-init" --tokenizer "$dir/tok.model" --set hidden_size=64 --set intermediate_size=192 \
      --set num_hidden_layers=2 --set num_attention_heads=4 --set num_key_value_heads=4 --set max_position_embeddings=256 >/dev/null
  # Two data-parallel ranks of one thread each (Gloo) train a model this small about twice as fast
  # as one process with two threads.
  OMP_NUM_THREADS=1 demo_train demo pretrain 2
}

# ---- repro: the papers' comparison in miniature (configs/repro, results in bench/REPRO.md) ----
repro() {
  demo_base >&2   # the demo's corpus, tokenizer, stores and base model (reused when done)
  local dir="$ROOT/runs/repro" demo="$ROOT/runs/demo" py="${ROPEX_PYTHON:-$VENV/bin/python}"
  mkdir -p "$dir"
  DEMO_TAG=repro
  demo_stage 1/4 "training data in 2048-token windows (runs/demo/store-ft-2048)"
  demo_store ft-2048 2048 passkey:750:256 kv:190:256 copy:750
  demo_stage 2/4 "extending the base x8 to 2048: PI and YaRN at 2048, PoSE and CREAM at the 256 window (configs/repro/)"
  demo_parallel "demo_train repro pi" "demo_train repro pose"
  demo_parallel "demo_train repro yarn" "demo_train repro cream"
  demo_stage 3/4 "evaluating the base and the four extensions at 256 ... 2048"
  local lengths=256,512,1024,1536,2048
  [[ -f "$dir/eval-base/results.json" ]] || { mkdir -p "$dir/base" && ln -sfn "$demo/pretrain/export" "$dir/base/export"; }
  demo_parallel "demo_eval repro base 'base (256)' $lengths" "demo_eval repro pi PI $lengths"
  demo_parallel "demo_eval repro yarn YaRN $lengths" "demo_eval repro pose PoSE $lengths"
  demo_eval repro cream CREAM $lengths 2
  demo_stage 4/4 "pictures and summary"
  local evals=("$dir/eval-base" "$dir/eval-pi" "$dir/eval-yarn" "$dir/eval-pose" "$dir/eval-cream")
  "$py" "$ROOT/trainer/plot_eval.py" --output "$dir/compare" "${evals[@]}" >/dev/null
  "$py" "$ROOT/trainer/demo_summary.py" "${evals[@]}" | tee "$dir/compare/headline.md"
  printf '\nfull tables: %s\npictures:    %s\nrepro time:  %s\n' "$dir/compare/summary.md  $dir/eval-*/results.md" \
    "$dir/compare/*.png" "$(date -u -d @$((SECONDS - DEMO_T0)) +%M:%S)"
}

# Writes runs/demo/store-NAME unless complete: task examples of N tokens (two make-tasks at a time,
# one core each) and the training modules, cut into N-token windows: demo_store NAME N TASK:COUNT[:MIN]...
# (MIN: the examples' lengths vary from MIN to N tokens, filler after them).
# Each task's seed is N, then the lengths of the TASK:COUNT word and of NAME, written side by side:
# fixed, so reruns rebuild the same data, and different for every task and store the demo makes.
demo_store() {
  local name="$1" n="$2" dir="$ROOT/runs/demo" t inputs=() pids=()
  shift 2
  [[ -f "$dir/store-$name/COMPLETE" ]] && return 0
  local task count min
  for t in "$@"; do
    IFS=: read -r task count min <<< "$t"
    OMP_NUM_THREADS=1 "$BUILD/ropex" make-tasks --tokenizer "$dir/tok.model" --task "$task" --length "$n" \
      --min-length "${min:-0}" --count "$count" --kv-ids "$DEMO_KV_IDS" --seed "$n${#t}${#name}" \
      --output "$dir/$name-$task.jsonl" >/dev/null &
    pids+=($!)
    inputs+=(--input "$dir/$name-$task.jsonl")
    if (( ${#pids[@]} == 2 )); then wait "${pids[0]}" || return 1; pids=("${pids[1]}"); fi
  done
  for t in "${pids[@]}"; do wait "$t" || return 1; done
  "$BUILD/ropex" prepare --tokenizer "$dir/tok.model" "${inputs[@]}" --input "$dir/corpus/train.jsonl" --chunk "$n" \
    --output "$dir/store-$name" --overwrite >/dev/null
}

# Runs two shell commands at once, one core each (tiny models gain little from a second thread; two
# runs side by side nearly halve the wall time), each in a process group of its own with signals
# passed on as launch_ranks does. Fails if either fails (75 if either stopped with a checkpoint).
demo_parallel() {
  local rc=0 FORWARD_TO=() c
  trap_forwarding
  for c in "$1" "$2"; do
    set -m   # (a group, not `VAR=1 eval ... &`: under set -e that one exits 1 whatever eval returned)
    { export OMP_NUM_THREADS=1; eval "$c"; } </dev/null &
    set +m
    FORWARD_TO+=($!)
  done
  wait_forwarding all || rc=$?
  trap - "${FORWARDED_SIGNALS[@]}"
  return "$rc"
}

# Evaluates runs/GROUP/NAME/export into runs/GROUP/eval-NAME unless done, on RANKS local ranks (one
# thread each when several): demo_eval GROUP NAME LABEL LENGTHS [RANKS]
demo_eval() {
  local dir="$ROOT/runs/$1" name="$2" label="$3" lengths="$4" nproc="${5:-1}"
  [[ -f "$dir/eval-$name/results.json" ]] && { log "runs/$1/eval-$name: done before, reused"; return 0; }
  rm -rf "$dir/eval-$name.partial"
  local args=(eval --model "$dir/$name/export" --label "$label" --tasks ppl,passkey,kv --data "$ROOT/runs/demo/store-heldout"
              --lengths "$lengths" --depths 10 --samples 5 --docs 8 --kv-ids "$DEMO_KV_IDS" --protocols truncated --no-plot
              --output "$dir/eval-$name.partial")
  if (( nproc > 1 )); then
    OMP_NUM_THREADS=1 launch_ranks "$nproc" "${args[@]}" >/dev/null
  else
    launch_ranks 1 "${args[@]}" >/dev/null
  fi
  mv "$dir/eval-$name.partial" "$dir/eval-$name"
}

# Trains configs/GROUP/NAME.json (output runs/GROUP/NAME) unless its export exists; an interrupted
# run resumes from its checkpoint: demo_train GROUP NAME [RANKS]
# The ranks' lines go through a filter beside launch_ranks, not after it in a pipeline, so that
# launch_ranks runs in this shell and gets the signals sent to it; the filter ignores them and ends
# when the ranks close its input (a Ctrl-C must not leave ranks saving a checkpoint into a closed pipe).
demo_train() {
  local group="$1" name="$2" nproc="${3:-1}" out filter rc=0
  [[ -f "$ROOT/runs/$group/$name/export/config.json" ]] && { log "runs/$group/$name: done before, reused"; return 0; }
  exec {out}> >(trap '' INT TERM HUP USR1
                { grep --line-buffered -E 'step [0-9]+/|done:|resumed|stopp|interrupt|error|warn' || true; } | sed -u "s/^/  [$name] /")
  filter=$!
  launch_ranks "$nproc" train "$ROOT/configs/$group/$name.json" --set logging.progress=off >&"$out" 2>&1 || rc=$?
  exec {out}>&-
  wait "$filter" 2>/dev/null || true
  return "$rc"
}

# ---- fuzz: the libFuzzer targets of tests/fuzz (README.md there), build folder build-fuzz ----
# ./run.sh fuzz [--smoke] [--time SECONDS_PER_TARGET] [--runs N] [TARGET...]: configures build-fuzz
# with clang (-DROPEX_FUZZ=ON), builds the targets, makes the seeds (tests/fuzz/make_seeds.py) and runs
# each target in turn; prints target / executions / seconds / result and fails if any target found
# a crash, leak, timeout, out-of-memory or sanitizer report (reproducers in build-fuzz/artifacts/).
FUZZ_BUILD="$ROOT/build-fuzz"
FUZZ_SMOKE_SECONDS=10     # per target in --smoke (./run.sh test): ten targets in about 110 s
FUZZ_DEFAULT_SECONDS=300  # per target otherwise, unless --time or --runs says
# A 1 MiB stack instead of the usual 8: recursion that grows with the input (a nested JSON value
# dumped into a message) then overflows at inputs of a few KB, which the fuzzer reaches (max_len).
FUZZ_STACK_KB=1024
fuzz_configure() {
  command -v clang++ >/dev/null || die "fuzzing needs clang and libFuzzer (Debian: apt-get install clang libclang-rt-14-dev)"
  [[ ! -f "$FUZZ_BUILD/build.ninja" ]] || return 0
  local prefix="" py="${ROPEX_PYTHON:-$VENV/bin/python}" launcher=()
  [[ -n "${Torch_DIR:-}" ]] || prefix="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  log "configuring $FUZZ_BUILD (clang, ROPEX_FUZZ=ON)"
  # Debug: the targets' own flags choose -O1; Release would add -DNDEBUG and silence assertions.
  cmake -S . -B "$FUZZ_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DROPEX_FUZZ=ON -DROPEX_BUILD_TESTS=OFF ${prefix:+-DCMAKE_PREFIX_PATH="$prefix"} ${Torch_DIR:+-DTorch_DIR="$Torch_DIR"} \
    ${ROPEX_DEPS:+-DROPEX_DEPS="$ROPEX_DEPS"} "${launcher[@]}" >/dev/null
}

# One line of FILE's "[libfuzzer]" options: fuzz_option FILE KEY
fuzz_option() { [[ -f "$1" ]] && sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | head -1; }

fuzz() {
  local smoke=0 seconds="" runs="" targets=() t
  while (($#)); do
    case "$1" in
      --smoke) smoke=1; shift ;;
      --time) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "--time expects seconds per target"; seconds="$2"; shift 2 ;;
      --runs) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--runs expects a number of inputs per target"; runs="$2"; shift 2 ;;
      -*) die "fuzz: unknown option '$1' (expected --smoke, --time SECONDS, --runs N, target names)" ;;
      *) targets+=("$1"); shift ;;
    esac
  done
  ((smoke)) && seconds="${seconds:-$FUZZ_SMOKE_SECONDS}"
  [[ -n "$seconds" || -n "$runs" ]] || seconds="$FUZZ_DEFAULT_SECONDS"
  setup
  fuzz_configure
  log "building the fuzz targets with $JOBS jobs"
  export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
  cmake --build "$FUZZ_BUILD" --target ropex_fuzz -j "$JOBS"
  local bin="$FUZZ_BUILD/tests/fuzz" src="$ROOT/tests/fuzz" built
  mapfile -t built < "$bin/targets.txt"
  ((${#targets[@]})) || targets=("${built[@]}")
  for t in "${targets[@]}"; do
    [[ " ${built[*]} " == *" $t "* ]] || die "fuzz: no target '$t' (built: ${built[*]})"
  done
  "${ROPEX_PYTHON:-$VENV/bin/python}" "$src/make_seeds.py" "$FUZZ_BUILD" || die "tests/fuzz/make_seeds.py failed"
  # Stack traces name functions and lines: llvm-symbolizer when installed, else binutils' addr2line.
  local symbolizer
  symbolizer="$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || command -v addr2line || true)"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}${symbolizer:+:external_symbolizer_path=$symbolizer}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}${symbolizer:+:external_symbolizer_path=$symbolizer}"
  local rows=() failed=0 name opts dirs d args logf t0 rc execs rate secs result artifact
  log "fuzzing ${targets[*]}: ${seconds:+${seconds} s}${seconds:+${runs:+ or }}${runs:+$runs inputs} each (logs in $FUZZ_BUILD/logs)"
  for name in "${targets[@]}"; do
    opts="$src/fuzz_$name.options"
    mkdir -p "$FUZZ_BUILD/corpus/$name" "$FUZZ_BUILD/artifacts/$name" "$FUZZ_BUILD/logs"
    dirs=("$FUZZ_BUILD/corpus/$name")   # new inputs go to the first folder; the others are read only
    for d in "$src/corpus/$name" "$FUZZ_BUILD/seeds/$name" "$src/regressions/$name"; do [[ -d "$d" ]] && dirs+=("$d"); done
    args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_BUILD/artifacts/$name/")
    [[ -n "$(fuzz_option "$opts" max_len)" ]] && args+=(-max_len="$(fuzz_option "$opts" max_len)")
    [[ -f "$FUZZ_BUILD/dict/$name.dict" ]] && args+=(-dict="$FUZZ_BUILD/dict/$name.dict")
    ((smoke)) && args+=(-seed=1)  # the smoke explores the same way on every run of the same code
    [[ -n "$seconds" ]] && args+=(-max_total_time="$seconds")
    [[ -n "$runs" ]] && args+=(-runs="$runs")
    logf="$FUZZ_BUILD/logs/$name.log"
    t0=$(date +%s.%N)
    rc=0
    (cd "$FUZZ_BUILD" && ulimit -s "$FUZZ_STACK_KB" && "$bin/fuzz_$name" "${args[@]}" "${dirs[@]}") >"$logf" 2>&1 || rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
    [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' "$logf" | tail -1 | tr -d '#')
    rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
    if ((rc == 0)); then result=ok
    else
      failed=1
      if grep -q 'ERROR: LeakSanitizer' "$logf"; then result=leak
      elif grep -q 'ERROR: libFuzzer: timeout' "$logf"; then result=timeout
      elif grep -q 'ERROR: libFuzzer: out-of-memory' "$logf"; then result=out-of-memory
      elif grep -q 'ERROR: AddressSanitizer' "$logf"; then
        result="asan $(grep -m1 -oE 'ERROR: AddressSanitizer: [a-z-]+' "$logf" | awk '{ print $3 }')"
      elif grep -q 'runtime error:' "$logf"; then result="ubsan"
      elif grep -q 'ERROR: libFuzzer: deadly signal' "$logf"; then result="crash (signal)"
      else result="failed (status $rc)"
      fi
      artifact="$(grep -m1 -oE 'Test unit written to [^ ]+' "$logf" | awk '{ print $5 }')"
      log "fuzz_$name: $result${artifact:+; reproduce: $bin/fuzz_$name $artifact}; log: $logf"
    fi
    rows+=("$(printf '%-18s %12s %9s %8s  %s' "$name" "${execs:-?}" "$secs" "${rate:-?}" "$result")")
  done
  printf '%-18s %12s %9s %8s  %s\n' target executions seconds exec/s result
  printf '%s\n' "${rows[@]}"
  ((failed == 0)) || die "fuzzing found problems (see above; tests/fuzz/README.md says how to reproduce one)"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  setup) setup ;;
  build) build ;;
  configure) setup; configure ;;
  bundle-deps) bundle_deps "$@" ;;
  test) run_tests "$@" ;;
  fuzz) fuzz "$@" ;;
  sanitize) run_sanitized_tests "$@" ;;
  train) train_local "$@" ;;
  eval) eval_local "$@" ;;
  debug-tiny) debug_tiny "$@" ;;
  demo) demo "$@" ;;
  repro) repro "$@" ;;
  bench) bench "$@" ;;
  gpu-check) gpu_check "$@" ;;
  help|-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *) die "unknown command '$cmd' (expected setup, build, configure, bundle-deps, test, fuzz, sanitize, train, eval, debug-tiny, bench, gpu-check, demo or repro)" ;;
esac
