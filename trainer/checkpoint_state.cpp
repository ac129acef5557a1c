#include "trainer/checkpoint_state.h"

#include <set>
#include <stdexcept>

#include "data/input/json.h"

namespace ropex {
namespace {

using json = nlohmann::json;

constexpr const char* kFormat = "ropex-checkpoint";

[[noreturn]] void bad(const std::string& path, const std::string& key, const std::string& what) {
  throw std::runtime_error(path + ": key '" + key + "' " + what +
                           " (the checkpoint's trainer_state.json is damaged or was edited; resume from another checkpoint)");
}

// An integer in [min, max]; 1.5, 1e308, "3", true and numbers beyond int64 are refused.
int64_t integer(const json& ts, const char* key, const std::string& path, int64_t min, int64_t max,
                std::optional<int64_t> missing = std::nullopt) {
  const auto it = ts.find(key);
  if (it == ts.end()) {
    if (missing) return *missing;
    bad(path, key, "is missing");
  }
  const std::string range = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(max)) bad(path, key, "must be " + range + ", got " + it->dump());
    if (static_cast<int64_t>(v) < min) bad(path, key, "must be " + range + ", got " + it->dump());
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) {
    const int64_t v = it->get<int64_t>();
    if (v < min || v > max) bad(path, key, "must be " + range + ", got " + it->dump());
    return v;
  }
  bad(path, key, "must be " + range + ", got " + input::json_excerpt(*it) + " (" + it->type_name() + ")");
}

}  // namespace

TrainerState trainer_state_from_json(const json& ts, const std::string& path, std::optional<int64_t> folder_step) {
  if (!ts.is_object()) throw std::runtime_error(path + ": expected a JSON object, got " + std::string(ts.type_name()));
  const auto format = ts.find("format");
  if (format == ts.end() || !format->is_string() || format->get_ref<const std::string&>() != kFormat)
    bad(path, "format", std::string("must be \"") + kFormat + "\", got " + (format == ts.end() ? "nothing" : input::json_excerpt(*format)));
  const int64_t version = integer(ts, "version", path, 1, 1000);
  if (version > 2)
    throw std::runtime_error(path + ": checkpoint format version " + std::to_string(version) +
                             " is newer than this ropex reads (1-2); resume with the ropex that wrote it");
  static const std::set<std::string> known = {"format", "version", "step", "optimizer_steps", "tokens_seen", "world_size",
                                              "seed", "skipped_steps", "consecutive_skips"};
  for (const auto& item : ts.items())
    if (!known.count(item.key())) bad(path, item.key(), "is not a field of a version " + std::to_string(version) + " checkpoint");

  TrainerState s;
  s.step = integer(ts, "step", path, 0, kMaxCheckpointStep);
  if (folder_step && *folder_step != s.step)
    bad(path, "step", "is " + std::to_string(s.step) + " but the folder's name says step " + std::to_string(*folder_step));
  // Version 1 had no skipped steps: every step was an update.
  const std::optional<int64_t> v1_default = version == 1 ? std::optional<int64_t>(s.step) : std::nullopt;
  s.optimizer_steps = integer(ts, "optimizer_steps", path, 0, s.step, v1_default);
  s.tokens_seen = integer(ts, "tokens_seen", path, 0, std::numeric_limits<int64_t>::max());
  if (s.step > 0 && s.tokens_seen == 0) bad(path, "tokens_seen", "is 0 after " + std::to_string(s.step) + " steps");
  s.world = static_cast<int>(integer(ts, "world_size", path, 1, kMaxWorldSize));
  const auto seed = ts.find("seed");
  if (seed == ts.end()) bad(path, "seed", "is missing");
  if (!seed->is_number_integer() || (!seed->is_number_unsigned() && seed->get<int64_t>() < 0))
    bad(path, "seed", "must be an integer in [0, 2^64), got " + input::json_excerpt(*seed) + " (" + seed->type_name() + ")");
  s.seed = seed->get<uint64_t>();
  const std::optional<int64_t> zero = version == 1 ? std::optional<int64_t>(0) : std::nullopt;
  s.skipped_steps = integer(ts, "skipped_steps", path, 0, s.step, zero);
  s.consecutive_skips = integer(ts, "consecutive_skips", path, 0, s.skipped_steps, zero);
  if (s.optimizer_steps + s.skipped_steps != s.step)
    bad(path, "optimizer_steps", "(" + std::to_string(s.optimizer_steps) + ") plus skipped_steps (" +
                                     std::to_string(s.skipped_steps) + ") must equal step (" + std::to_string(s.step) + ")");
  return s;
}

json trainer_state_to_json(const TrainerState& state) {
  return json{{"format", kFormat},
              {"version", 2},
              {"step", state.step},
              {"optimizer_steps", state.optimizer_steps},
              {"tokens_seen", state.tokens_seen},
              {"world_size", state.world},
              {"seed", state.seed},
              {"skipped_steps", state.skipped_steps},
              {"consecutive_skips", state.consecutive_skips}};
}

std::optional<int64_t> step_of_checkpoint_name(const std::string& name) {
  constexpr const char* kPrefix = "step_";
  if (name.rfind(kPrefix, 0) != 0 || name.size() < 13 || name.size() > 5 + 19) return std::nullopt;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    step = step * 10 + (c - '0');  // at most 19 digits: fits before the bound check
    if (step > kMaxCheckpointStep) return std::nullopt;
  }
  return step;
}

}  // namespace ropex
