// Fuzz target: a run config as `ropex train CONFIG --set k=v ...` reads it (trainer/run_config.h:
// RunConfig::load = ConfigSchema::apply_file, one apply_override per --set, validate), then the
// resolved config written back (to_json) as it is saved in the run folder, and export.max_shard_size
// read by st::parse_size as the export reads it.
// Input: the JSON file, then optionally fuzz_util.h's separator line and one `section.key=value`
// override per line. Rejections (ConfigError and other std::exception) are fine.
#include "models/safetensors.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/run_config.h"

#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = ropex_fuzz::split_parts(data, size);
  const auto path = ropex_fuzz::Scratch::get().write("run.json", parts[0]);
  std::vector<std::string> overrides;
  for (size_t k = 1; k < parts.size(); ++k) {
    std::istringstream lines(parts[k]);
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  }
  if (overrides.size() > 64) return 0;
  ropex_fuzz::guard([&] {
    ropex::RunConfig cfg = ropex::RunConfig::load(path.string(), overrides);
    (void)cfg.to_json().dump();
    (void)cfg.global_batch(8);
    (void)ropex::st::parse_size(cfg.export_.max_shard_size);  // what export does with it
  });
  return 0;
}
