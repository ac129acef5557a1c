// Fuzz target: one .safetensors file as models/safetensors.h opens it (SafetensorsFile: the 8-byte
// length, the JSON header, dtypes, shapes, offsets, the layout of the data section).
// The input is the whole file. A file that opens is walked as a loader would walk it: every
// tensor looked up by name and the first and last byte of its region read, so that an offset the
// validation let through past the mapping shows up as a fault. Rejections (std::exception) are fine.
#include "models/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = ropex_fuzz::Scratch::get().dir() / "model.safetensors";
  ropex_fuzz::Scratch::get().write("model.safetensors", {reinterpret_cast<const char*>(data), size});
  ropex_fuzz::guard([&] {
    ropex::st::SafetensorsFile f(path);
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      const auto& again = f.at(t.name);
      const auto* p = static_cast<const uint8_t*>(f.data(again));
      const uint64_t n = t.end - t.begin;
      if (n != ropex::st::nbytes(t.dtype, t.shape)) __builtin_trap();  // the header's sizes were checked
      if (n > 0) sink = sink + p[0] + p[n - 1];
      (void)t.numel();
      (void)ropex::st::dtype_name(t.dtype);
    }
    for (const auto& [k, v] : f.metadata()) sink = sink + static_cast<uint8_t>(k.size() + v.size());
    (void)f.find("model.embed_tokens.weight");
  });
  return 0;
}
