// The checks of a run before its first step. See dry_run.h.
#include "trainer/dry_run.h"

#include "models/hf_checkpoint.h"
#include "trainer/log.h"
#include "trainer/train.h"

#include <filesystem>

namespace ropex {

DryRun dry_run(const RunConfig& cfg, int64_t world, bool cuda) {
  DryRun out;
  const LlamaConfig mc = load_config(cfg.model.path);
  int64_t max_pos = 0, target_len = 0;
  const RopeScaling rope = run_rope(cfg, mc, &max_pos, &target_len);
  out.checks += cat("config      ", cfg.run.name, ": rope ", describe_rope(rope, mc.rope_theta), "\n");
  if (cfg.model.from_scratch) {
    out.checks += "model       " + cfg.model.path + ": config.json (random init: no weights read)\n";
  } else {
    LlamaForCausalLM skeleton(mc, at::TensorOptions().device(at::kMeta));
    const WeightReader weights(cfg.model.path);
    check_weights(skeleton, weights);
    out.checks += cat("model       ", cfg.model.path, ": config.json and ", skeleton->named_parameters().size(),
                      " weights match (names, shapes, dtypes)\n");
  }
  const std::unique_ptr<Loader> loader = make_loader(cfg, mc, 0, static_cast<int>(world));
  const SamplerOptions& so = loader->sampler_options();
  out.checks += cat("data        ", cfg.data.store, ": ", loader->train_docs(), " documents long enough for sampler ", so.name,
                    " at window ", so.train_len, ", positions < ", so.target_len, " (", loader->skipped_docs(),
                    " shorter skipped)\n");
  out.inputs = plan_inputs(cfg, world, cuda);
  out.plan = make_plan(mc, out.inputs);
  return out;
}

}  // namespace ropex
