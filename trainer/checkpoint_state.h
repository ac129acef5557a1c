// trainer_state.json of a checkpoint: its fields read and checked, and written.
//
// A checkpoint's state decides where a resumed run starts; a damaged or hand-edited file must be
// refused, naming the file and the field, rather than resume at a negative step, train forever or
// report "done" untrained. Every field is checked for type and range, and against the others and
// the folder's name (step_00000100 holds step 100). Versions 1 and 2 of the format are read
// (version 1 lacked optimizer_steps and the skip counters). No LibTorch, no file I/O: the caller
// reads the file (input/json.h), so the parser is fuzzed on its own (tests/fuzz).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ropex {

struct TrainerState {
  int64_t step = 0;               // training steps completed (batches consumed, skipped ones included)
  int64_t optimizer_steps = 0;    // updates applied (AdamW's t)
  int64_t tokens_seen = 0;        // training tokens (all ranks)
  int world = 1;
  uint64_t seed = 0;
  int64_t skipped_steps = 0;      // non-finite steps skipped, in all
  int64_t consecutive_skips = 0;  // ... in a row up to `step`
};

// Bounds: 2^40 steps (a step a microsecond for 12 days) and 2^20 ranks.
constexpr int64_t kMaxCheckpointStep = int64_t{1} << 40;
constexpr int64_t kMaxWorldSize = int64_t{1} << 20;

// The state in `ts` (trainer_state.json at `path`); `folder_step` is the step the folder's name says,
// when known. Throws std::runtime_error naming path and field.
TrainerState trainer_state_from_json(const nlohmann::json& ts, const std::string& path,
                                     std::optional<int64_t> folder_step);

// The current format's document (version 2).
nlohmann::json trainer_state_to_json(const TrainerState& state);

// The step in a checkpoint folder's name "step_NNNNNNNN" (8 or more digits), or nullopt when the name
// is not one or its number exceeds kMaxCheckpointStep.
std::optional<int64_t> step_of_checkpoint_name(const std::string& name);

}  // namespace ropex
