// Fuzz target: a checkpoint's trainer_state.json as trainer/checkpoint_state.h reads it: parsed by
// data/input/json.h's parse_json as the checkpoint reader does, then trainer_state_from_json.
// Input: the file's bytes, or a folder name, fuzz_util.h's separator line, then the file (the
// folder name goes through step_of_checkpoint_name and its step is checked against the file's).
// An accepted state must survive its own round trip: trainer_state_to_json, then read back equal;
// anything else traps. Rejections (std::exception) are fine.
#include "data/input/json.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = ropex_fuzz::split_parts(data, size);
  if (parts.size() > 2) return 0;
  const std::string& text = parts.back();
  std::optional<int64_t> folder_step;
  if (parts.size() == 2) folder_step = ropex::step_of_checkpoint_name(parts[0]);
  const std::string path = "step_x/trainer_state.json";
  ropex_fuzz::guard([&] {
    const nlohmann::json j = ropex::input::parse_json(text, path);
    const ropex::TrainerState s = ropex::trainer_state_from_json(j, path, folder_step);
    ropex::TrainerState back;
    try {
      back = ropex::trainer_state_from_json(ropex::trainer_state_to_json(s), path, folder_step);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "an accepted trainer state does not read back: %s\n", e.what());
      __builtin_trap();
    }
    if (back.step != s.step || back.optimizer_steps != s.optimizer_steps || back.tokens_seen != s.tokens_seen ||
        back.world != s.world || back.seed != s.seed || back.skipped_steps != s.skipped_steps ||
        back.consecutive_skips != s.consecutive_skips)
      __builtin_trap();
  });
  return 0;
}
