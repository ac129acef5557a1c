// `ropex train CONFIG --dry-run`: what a run checks before its first step, without training or
// loading weights, then its plan (trainer/plan.h):
//   the config (parsed and validated by the caller), the rope scaling and the sampler it implies;
//   the model directory: config.json, and every weight's name, shape and dtype against it (on the
//   meta device: no weight is read);
//   the token store: that it opens, fits the model's vocabulary, and holds documents long enough for
//   the window and the sampler (and the held-out ones evaluation takes).
// Problems are thrown as errors naming the file or key. What it does not check: the devices, the
// launcher's ranks, or free disk space for checkpoints.
#pragma once
#include "trainer/plan.h"
#include "trainer/run_config.h"

#include <optional>
#include <string>

namespace ropex {

struct DryRun {
  std::string checks;  // one line per check passed
  Plan plan;
  PlanInputs inputs;
};

DryRun dry_run(const RunConfig& cfg, int64_t world, bool cuda);

}  // namespace ropex
