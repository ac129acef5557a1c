// Config changes across a resume. See resume_check.h.
#include "trainer/resume_check.h"

#include "data/input/json.h"

#include "trainer/log.h"

#include <algorithm>
#include <stdexcept>

namespace ropex {

namespace {
// How the run is carried out, not what it trains.
bool free_to_change(const std::string& key) {
  static const std::vector<std::string> free_keys = {
      "run.name", "run.output_dir", "run.log_level", "run.stop_after", "model.device", "model.attention",
      "model.sdpa_backends", "model.norm", "model.activation_checkpointing", "model.loss_chunk_tokens", "optim.kernel",
      "eval.every"};
  // batch.*: how the global batch is split over micro-batches, accumulation and ranks; the global
  // batch itself, which fixes the data order, is checked by load_checkpoint (trainer/checkpoint.h).
  static const std::vector<std::string> free_sections = {"checkpoint", "export", "distributed", "logging", "batch"};
  const std::string section = key.substr(0, key.find('.'));
  return std::find(free_keys.begin(), free_keys.end(), key) != free_keys.end() ||
         std::find(free_sections.begin(), free_sections.end(), section) != free_sections.end();
}

// The held-out documents: eval.docs when evaluations run, none otherwise (data/loader.h).
int64_t holdout(const nlohmann::json& cfg) {
  const nlohmann::json& e = cfg.contains("eval") ? cfg["eval"] : nlohmann::json::object();
  return e.value("every", int64_t{0}) > 0 ? e.value("docs", int64_t{0}) : 0;
}
}  // namespace

std::vector<ConfigChange> config_changes(const nlohmann::json& before, const nlohmann::json& now) {
  std::vector<ConfigChange> out;
  for (const auto& [section, keys] : now.items()) {
    if (!keys.is_object() || !before.contains(section) || !before[section].is_object()) continue;
    for (const auto& [key, value] : keys.items()) {
      if (!before[section].contains(key)) continue;
      const nlohmann::json& old = before[section][key];
      if (old == value) continue;
      const std::string name = section + "." + key;
      out.push_back({name, old, value, !free_to_change(name)});
    }
  }
  // eval.every and eval.docs matter to training only through the held-out documents. (The device
  // matters through the compute dtype, which checkpoints record as runtime.compute_dtype.)
  const bool same_holdout = holdout(before) == holdout(now);
  for (auto& c : out)
    if (c.key == "eval.docs" || c.key == "eval.every") c.breaks_resume = !same_holdout;
  return out;
}

void check_config_changes(const std::vector<ConfigChange>& changes, const std::vector<std::string>& accepted,
                          const std::string& checkpoint) {
  std::string refused;
  for (const auto& c : changes) {
    const std::string section = c.key.substr(0, c.key.find('.'));
    const bool ok = !c.breaks_resume || std::find(accepted.begin(), accepted.end(), c.key) != accepted.end() ||
                    std::find(accepted.begin(), accepted.end(), section) != accepted.end();
    const std::string line = cat(c.key, ": ", input::json_excerpt(c.before), " -> ", input::json_excerpt(c.now));
    if (!c.breaks_resume) log::info("config change since " + checkpoint + ": " + line);
    else if (ok) log::warn("config change since " + checkpoint + ": " + line + " (accepted: the run no longer equals a straight one)");
    else refused += "\n  " + line;
  }
  if (!refused.empty())
    throw std::runtime_error("the run config differs from the one checkpoint " + checkpoint + " was trained with:" + refused +
                             "\nresuming with these would not continue the same run (e.g. a new optim.lr takes effect "
                             "mid-schedule, a new seed or window changes the data). Put the old values back, start "
                             "a new run.output_dir, or accept each change with --accept-change KEY (or a section, e.g. "
                             "--accept-change optim)");
}

}  // namespace ropex
