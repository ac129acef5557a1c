#!/usr/bin/env bash
# Checks a dependency bundle (./run.sh bundle-deps DIR) without building ropex: configures a scratch
# build folder through `ROPEX_DEPS=DIR ./run.sh configure`, then checks that
#   - CMake found SentencePiece, spdlog, fmt, nlohmann/json, gloo, xxHash, GoogleTest, protobuf-c, protoc-c
#     and ISA-L inside DIR, and the bundle's protoc-c runs (with the bundle's libprotoc),
#   - their headers, as a few sources include them, come from DIR (or torch), none from /usr,
#   - ropex links the bundle's shared libraries with an RPATH into DIR,
#   - ropex_log and ropex_tensorboard (protoc-c's output included) compile, and a small program linked like ropex runs and loads its libraries from DIR.
# ROPEX_PYTHON / Torch_DIR pass through to run.sh.
#   tests/deps_bundle_check.sh DIR [BUILD_DIR]     (BUILD_DIR: default a new temporary folder)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 1 ]] || { echo "usage: $0 DIR [BUILD_DIR]" >&2; exit 2; }
DEPS="$(realpath -m -- "$1")"
BUILD="$(realpath -m -- "${2:-$(mktemp -d)/build}")"
fails=0
ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }

[[ ! -e "$BUILD/CMakeCache.txt" ]] || { echo "$BUILD is configured already: give a new folder" >&2; exit 2; }
ROPEX_DEPS="$DEPS" ROPEX_BUILD_DIR="$BUILD" "$ROOT/run.sh" configure
cache="$BUILD/CMakeCache.txt"

for var in pkgcfg_lib_SENTENCEPIECE_sentencepiece pkgcfg_lib_SENTENCEPIECE_sentencepiece_train spdlog_DIR fmt_DIR \
           nlohmann_json_DIR GTest_DIR ROPEX_GLOO_INCLUDE ROPEX_XXHASH_INCLUDE pkgcfg_lib_PROTOBUF_C_protobuf-c \
           pkgcfg_lib_ISAL_isal ROPEX_PROTOC_C; do
  val="$(sed -n "s/^$var:[A-Z]*=//p" "$cache")"
  [[ "$val" == "$DEPS"/* ]] && ok "$var = $val" || bad "$var = '$val' is not in $DEPS"
done

# protoc-c's output (event.pb-c.h) is needed by the header check below; the bundle's protoc-c makes it.
cmake --build "$BUILD" --target ropex_tensorboard -j1 >/dev/null && ok "ropex_tensorboard compiled (protoc-c and protobuf-c, ISA-L from the bundle)" ||
  bad "ropex_tensorboard"

python="$(sed -n 's/^ROPEX_PYTHON:FILEPATH=//p' "$cache")"
command -v "$python" >/dev/null || python=python3
"$python" - "$BUILD" "$DEPS" <<'EOF' || fails=$((fails + 1))
import json, re, shlex, subprocess, sys
build, deps = sys.argv[1], sys.argv[2]
pattern = re.compile(r"/(gloo|nlohmann|spdlog|fmt|gtest|infiniband|hiredis|protobuf-c|isa-l)/|/(sentencepiece)_\w+\.h$|/(xxhash)\.h$")
failed = False
for entry in json.load(open(f"{build}/compile_commands.json")):
    if not entry["file"].endswith(("trainer/log.cpp", "data/tokenizer.cpp", "trainer/distributed.cpp", "tests/test_cli.cpp",
                                   "trainer/checkpoint_io.cpp", "trainer/tensorboard/scalar_log.cpp",
                                   "trainer/tensorboard/event_file.cpp", "trainer/tensorboard/event_codec.cpp")):
        continue
    args, cmd, skip = shlex.split(entry["command"]), [], False
    for a in args[1:] if args[0].endswith("ccache") else args:
        if skip or a in ("-o", "-MF", "-MT"):
            skip = not skip
            continue
        if a not in ("-c", "-MD"):
            cmd.append(a)
    run = subprocess.run(cmd + ["-M"], cwd=entry["directory"], capture_output=True, text=True)
    if run.returncode:
        print(f"FAIL  preprocessing {entry['file']}:\n{run.stderr[-3000:]}")
        failed = True
        continue
    found, outside = set(), []
    for header in run.stdout.replace("\\\n", " ").split()[1:]:
        m = pattern.search(header)
        if not m:
            continue
        if header.startswith(deps + "/"):
            found.add(m.group(1) or m.group(2) or m.group(3))
        elif "/torch/include/" not in header:
            outside.append(header)
    if outside:
        print(f"FAIL  {entry['file']}: headers from outside the bundle: {outside[:5]}")
        failed = True
    else:
        print(f"ok    {entry['file']}: {', '.join(sorted(found))} headers from the bundle")
sys.exit(1 if failed else 0)
EOF

link="$(awk '/^build ropex:/ { on = 1 } on && /LINK_(FLAGS|LIBRARIES|PATH)/ { print } on && /^$/ { exit }' "$BUILD/build.ninja")"
[[ "$link" == *--disable-new-dtags* ]] && ok "ropex links with DT_RPATH (--disable-new-dtags)" || bad "no --disable-new-dtags in ropex's link flags"
[[ "$link" =~ -rpath,([^ ]*) && "${BASH_REMATCH[1]}" == *"$DEPS/usr/lib/"* ]] && ok "ropex's RPATH includes $DEPS/usr/lib/..." ||
  bad "ropex's RPATH does not include the bundle"
for lib in libsentencepiece.so libsentencepiece_train.so libspdlog.so libfmt.so libprotobuf-c.so libisal.so; do
  [[ "$link" == *"$DEPS/usr/lib/"*"/$lib"* ]] && ok "ropex links $DEPS/.../$lib" || bad "ropex does not link $lib from the bundle"
done

# Arrow/Parquet (the Parquet reader), when the bundle has them (MANIFEST "pyarrow VERSION"; not with
# ROPEX_BUNDLE_PARQUET=0): linked from DIR/pyarrow/lib, which is on the RPATH.
if grep -q '^pyarrow ' "$DEPS/MANIFEST"; then
  for lib in libarrow.so libparquet.so; do
    [[ "$link" == *"$DEPS/pyarrow/lib/$lib."* ]] && ok "ropex links $DEPS/pyarrow/lib/$lib.*" || bad "ropex does not link $lib from the bundle's pyarrow"
  done
  [[ "$link" =~ -rpath,([^ ]*) && "${BASH_REMATCH[1]}" == *"$DEPS/pyarrow/lib"* ]] && ok "ropex's RPATH includes $DEPS/pyarrow/lib" ||
    bad "ropex's RPATH does not include $DEPS/pyarrow/lib"
fi

cmake --build "$BUILD" --target ropex_log -j1 >/dev/null && ok "ropex_log compiled against the bundle's spdlog/fmt" || bad "ropex_log"

# A small program linked like ropex (bundle libraries by path, DT_RPATH into the bundle) must run
# with its libraries, the bundled libraries' own dependencies included, loaded from the bundle.
libdir="$(echo "$DEPS"/usr/lib/*-linux-gnu*)"
cat > "$BUILD/bundle_probe.cpp" <<'EOF'
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include "trainer/log.h"
int main() {
  sentencepiece::SentencePieceProcessor sp;
  bool load_failed = !sp.Load("/nonexistent.model").ok();
  bool train_failed = !sentencepiece::SentencePieceTrainer::Train("--input=/nonexistent --model_prefix=/nonexistent").ok();
  ropex::log::info("bundle probe: spdlog, fmt and sentencepiece loaded");
  return load_failed && train_failed ? 0 : 1;
}
EOF
cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")"
if "$cxx" -std=c++20 -I"$ROOT" -I"$DEPS/usr/include" "$BUILD/bundle_probe.cpp" "$BUILD/libropex_log.a" \
     "$libdir/libsentencepiece.so" "$libdir/libsentencepiece_train.so" "$libdir/libspdlog.so" "$libdir/libfmt.so" \
     -Wl,--disable-new-dtags -Wl,-rpath,"$libdir" -o "$BUILD/bundle_probe" && env -u LD_LIBRARY_PATH "$BUILD/bundle_probe" >"$BUILD/bundle_probe.log" 2>&1; then
  ok "probe program ran"
  for lib in libsentencepiece.so libsentencepiece_train.so libspdlog.so libfmt.so; do
    where="$(env -u LD_LIBRARY_PATH ldd "$BUILD/bundle_probe" | awk -v l="$lib" 'index($1, l) == 1 { print $3 }')"
    [[ "$where" == "$DEPS"/* ]] && ok "at run time $lib => $where" || bad "at run time $lib => '$where', not the bundle"
  done
else
  bad "probe program did not link or run"
fi

((fails == 0)) && echo "bundle $DEPS: all checks passed ($BUILD)" || { echo "bundle $DEPS: $fails check(s) failed ($BUILD)"; exit 1; }
