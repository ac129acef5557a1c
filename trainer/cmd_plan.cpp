// ropex plan CONFIG: per-rank memory and per-step cost of a run, and whether it fits, before launching
// it (trainer/plan.h).
#include "models/llama_config.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/plan.h"

#include <iostream>

namespace ropex {

int cmd_plan(const Args& argv) {
  ArgParser args("plan", "Says what a run config needs per rank (weights, gradients, optimizer state, activations with and\n"
                         "without checkpointing, the loss, an allocator allowance), its tokens and FLOPs per step, and\n"
                         "whether it fits the GPUs, from the config and the model's config.json alone (no weights read).\n"
                         "Every term: bench/MEMORY.md.");
  args.positional("CONFIG", "run configuration (JSON)")
      .option("set", "KEY=VALUE", "override a config key, e.g. --set data.train_len=32768", std::nullopt, /*repeatable=*/true)
      .option("world", "N", "data-parallel ranks (default: WORLD_SIZE, else 1)")
      .option("gpu-memory", "SIZE", "memory of one GPU, e.g. 80GiB (default: the visible GPU's)")
      .flag("json", "print one JSON object");
  args.parse(argv);
  const RunConfig cfg = RunConfig::load(args.get("CONFIG"), args.get_all("set"));
  const int64_t world = args.has("world") ? args.get_int("world") : launcher_world();
  if (world < 1) throw UsageError("plan: --world must be >= 1, got " + std::to_string(world));
  const PlanTarget target = plan_target(cfg, args.has("gpu-memory") ? args.get("gpu-memory") : "");
  const PlanInputs in = plan_inputs(cfg, world, target.cuda);
  const Plan plan = make_plan(load_config(cfg.model.path), in);
  if (args.flag_set("json")) std::cout << plan_json(plan, in, target.gpu_memory).dump(2) << std::endl;
  else std::cout << plan_text(plan, in, target.gpu_memory, cfg.model.path);
  return 0;
}

}  // namespace ropex
