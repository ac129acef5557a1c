// Fuzz target: a sharded checkpoint folder as models/safetensors.h's CheckpointReader opens it:
// model.safetensors.index.json (weight_map, metadata, shard names) checked against its shards.
// Input: the index, then each shard, cut by fuzz_util.h's separator line; part k (k >= 1) is
// written as model-0000k-of-0000K.safetensors (K = the number of shards), the names transformers
// writes, so that seeds open and mutations of the index's names reach the reader's own checks.
// Every tensor the reader lists is looked up and its first and last byte read.
#include "models/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = ropex_fuzz::split_parts(data, size);
  if (parts.size() > 9) return 0;  // a few shards are enough to exercise the cross-checks
  auto& scratch = ropex_fuzz::Scratch::get();
  const auto dir = scratch.fresh_dir("ckpt");
  scratch.write("ckpt/model.safetensors.index.json", parts[0]);
  for (size_t k = 1; k < parts.size(); ++k)
    scratch.write("ckpt/" + ropex::st::shard_file_name(k, parts.size() - 1), parts[k]);
  ropex_fuzz::guard([&] {
    ropex::st::CheckpointReader r(dir.string());
    volatile uint8_t sink = 0;
    for (const auto& name : r.names()) {
      if (!r.contains(name)) __builtin_trap();
      const auto& t = r.info(name);
      const auto* p = static_cast<const uint8_t*>(r.data(name));
      const uint64_t n = t.end - t.begin;
      if (n > 0) sink = sink + p[0] + p[n - 1];
      sink = sink + static_cast<uint8_t>(r.file_of(name).size());
    }
  });
  return 0;
}
