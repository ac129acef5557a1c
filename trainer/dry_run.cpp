// The checks of a run before its first step. See dry_run.h.
#include "trainer/dry_run.h"

#include "data/loader.h"
#include "data/token_store.h"
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
  out.checks += cat("config      ", cfg.run.name, ": rope ", describe_rope(rope, mc.rope_theta), ", window ", cfg.data.train_len,
                    ", positions < ", cfg.sampler.name == "contiguous" ? cfg.data.train_len : target_len, "\n");
  if (cfg.model.from_scratch) {
    out.checks += "model       " + cfg.model.path + ": config.json (random init: no weights read)\n";
  } else {
    LlamaForCausalLM skeleton(mc, at::TensorOptions().device(at::kMeta));
    const WeightReader weights(cfg.model.path);
    check_weights(skeleton, weights);
    out.checks += cat("model       ", cfg.model.path, ": config.json and ", skeleton->named_parameters().size(),
                      " weights match (names, shapes, dtypes)\n");
  }
  const SamplerOptions so = run_sampler(cfg, mc);
  auto store = std::make_shared<const TokenStore>(TokenStore::open(cfg.data.store));
  if (store->vocab_size() > mc.vocab_size)
    throw std::runtime_error(cfg.data.store + ": tokenized with a vocabulary of " + std::to_string(store->vocab_size()) +
                             " but the model has vocab_size " + std::to_string(mc.vocab_size));
  const Loader loader(store, so,
                      LoaderOptions{.seed = static_cast<uint64_t>(cfg.run.seed), .rank = 0, .world = world,
                                    .micro_batch = cfg.batch.micro_batch_size, .grad_accum = cfg.batch.grad_accum,
                                    .holdout_docs = cfg.eval.every > 0 ? cfg.eval.docs : 0});
  out.checks += cat("data        ", cfg.data.store, ": ", loader.train_docs(), " documents long enough for sampler ", so.name,
                    " (", loader.skipped_docs(), " shorter skipped)\n");
  out.inputs = plan_inputs(cfg, world, cuda);
  out.plan = make_plan(mc, out.inputs);
  return out;
}

}  // namespace ropex
