// Fuzz target: a checkpoint's manifest.json as trainer/checkpoint_manifest.h reads it: parsed by
// data/input/json.h's parse_json as the checkpoint reader does, then manifest_from_json. An
// accepted manifest must survive its own round trip (manifest_to_json, then read back equal);
// anything else traps. Rejections (std::exception) are fine.
#include "data/input/json.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = "step_x/manifest.json";
  ropex_fuzz::guard([&] {
    const ropex::Manifest m = ropex::manifest_from_json(ropex::input::parse_json(text, path), path);
    ropex::Manifest back;
    try {
      back = ropex::manifest_from_json(ropex::manifest_to_json(m), path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "an accepted manifest does not read back: %s\n", e.what());
      __builtin_trap();
    }
    if (back.step != m.step || back.world != m.world || back.tensors != m.tensors || back.files.size() != m.files.size())
      __builtin_trap();
    for (size_t i = 0; i < m.files.size(); ++i)
      if (back.files[i].name != m.files[i].name || back.files[i].bytes != m.files[i].bytes || back.files[i].xxh3 != m.files[i].xxh3)
        __builtin_trap();
  });
  return 0;
}
