// What changed in the run configuration since the checkpoint a run resumes, and whether the
// resume still continues the same run: the same data in the same order, the same hyperparameters
// and model. (Bit-for-bit equality with a straight run also needs the same reduction order: the
// keys below that change it, the batch split, ZeRO stage, buckets, kernel, are allowed and logged.)
//
// Keys that only say how the run is carried out (logging, checkpointing, export, distributed
// settings, the device (what it changes, the compute dtype model.dtype auto resolves to, is compared
// as runtime.compute_dtype, recorded in every checkpoint's run_config.json), the attention kernel, activation
// checkpointing, the loss chunk, the run's name and stop_after, and how the global batch is split:
// batch.*, whose product with the world size load_checkpoint requires unchanged) may change freely. Every other key changes what is
// trained: the learning rate and schedule, the data and its order (data.*, sampler.*, run.seed,
// the held-out documents), the model and its rope. Those are refused unless accepted explicitly (ropex train
// --accept-change KEY, a key or a whole section). Every change is logged either way.
//
// It does NOT load checkpoints or compare model shapes (trainer/checkpoint.h refuses another
// shape, rope or global batch on its own).
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ropex {

struct ConfigChange {
  std::string key;  // section.key
  nlohmann::json before, now;
  bool breaks_resume = false;
};

// Changes from the checkpoint's run_config.json to the current resolved config (both nested by
// section). Keys the checkpoint's config lacks (added by a later ropex) are not compared.
std::vector<ConfigChange> config_changes(const nlohmann::json& checkpoint_config, const nlohmann::json& now);

// Logs every change, then throws naming each one that breaks an exact resume and is not covered
// by `accepted` (keys, or sections such as "optim").
void check_config_changes(const std::vector<ConfigChange>& changes, const std::vector<std::string>& accepted,
                          const std::string& checkpoint);

}  // namespace ropex
