// ropex train CONFIG [--set key=value ...], ropex export --checkpoint DIR --output HFDIR and
// ropex verify-checkpoint DIR: the training job, the HF export of one of its checkpoints, and the
// check of one. Launching several ranks is the
// launcher's job (./run.sh train --nproc N, torchrun --no-python, srun): see README.
#include "models/llama.h"
#include "models/safetensors.h"
#include "trainer/checkpoint.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/dry_run.h"
#include "trainer/log.h"
#include "trainer/pictures.h"
#include "trainer/preemption.h"
#include "trainer/train.h"

#include <cmath>
#include <iostream>

namespace ropex {

int cmd_train(const Args& argv) {
  ArgParser args("train", "Fine-tunes a Hugging Face Llama to a longer context as one JSON config describes\n"
                          "(every key: configs/README.md). Resumes from the newest complete checkpoint by default.");
  args.positional("CONFIG", "run configuration (JSON)")
      .option("set", "KEY=VALUE", "override a config key, e.g. --set optim.lr=1e-5", std::nullopt, /*repeatable=*/true)
      .option("gpu-memory", "SIZE", "with --dry-run: memory of one GPU, e.g. 80GiB (default: the visible GPU's)")
      .option("accept-change", "KEY", "resume although KEY (or a section, e.g. optim) differs from the checkpoint's\n"
                                      "config, giving up the exact resume (every change is logged)", std::nullopt,
              /*repeatable=*/true)
      .flag("print-config", "check the configuration against the model and the token store, print it resolved, and exit")
      .flag("dry-run", "check the config, the model directory and the token store, print the plan (ropex plan), and exit");
  args.parse(argv);
  RunConfig cfg = RunConfig::load(args.get("CONFIG"), args.get_all("set"));
  nlohmann::json resolved = cfg.to_json();
  if (args.flag_set("print-config")) {
    check_run_inputs(cfg);  // what train checks before it starts: the rope against the model, the store
    std::cout << resolved.dump(2) << std::endl;
    return 0;
  }
  if (args.has("gpu-memory") && !args.flag_set("dry-run"))
    throw UsageError("train: --gpu-memory is for --dry-run (the plan); a run uses the GPUs it is given");
  if (args.flag_set("dry-run")) {
    const PlanTarget target = plan_target(cfg, args.has("gpu-memory") ? args.get("gpu-memory") : "");
    const DryRun d = dry_run(cfg, launcher_world(), target.cuda);
    std::cout << d.checks << plan_text(d.plan, d.inputs, target.gpu_memory, cfg.model.path);
    const bool fits = !target.gpu_memory || d.plan.per_rank.total <= *target.gpu_memory;
    std::cout << (fits ? "dry run: ok" : "dry run: the checks pass, but the plan does not fit the GPU memory") << std::endl;
    return fits ? 0 : 1;
  }
  TrainSummary s = train(cfg, resolved, args.get_all("accept-change"));
  // logging.picture: RUN/run.png, drawn by rank 0 (not after a preemption: the grace period is the
  // scheduler's, so only the command is said). One that cannot be drawn is a warning: the
  // checkpoints and the export are what the run made.
  if (s.main_rank && cfg.logging.picture && s.preempted) {
    log::info("draw the picture of the run with: ropex plot-run " + cfg.run.output_dir);
  } else if (s.main_rank && cfg.logging.picture) {
    const PictureRun picture = draw_run_picture(cfg.run.output_dir);
    if (picture.ok) log::info("picture of the run: " + run_picture_path(cfg.run.output_dir));
    else log::warn("picture of the run not drawn (needs Python with matplotlib; logging.picture=false turns it off); draw "
                   "it with: " + picture.command);
  }
  if (s.preempted) {
    log::info(cat("preempted: checkpoint ", s.last_checkpoint, "; exit status ", kPreemptedExitCode, " (", resume_hint(cfg), ")"));
    return kPreemptedExitCode;
  }
  const std::string loss = std::isnan(s.last_loss) ? "unknown" : cat(s.last_loss);
  log::info(cat(s.already_complete ? "already complete: " : "done: ", s.steps, " steps, last loss ", loss, ", checkpoint ",
                s.last_checkpoint, s.export_dir.empty() ? "" : ", export " + s.export_dir));
  return 0;
}

int cmd_export(const Args& argv) {
  ArgParser args("export", "Writes a Hugging Face directory (config.json with the trained rope scaling and target\n"
                           "max_position_embeddings, sharded safetensors + index, tokenizer.model) from a checkpoint.");
  args.option("checkpoint", "DIR", "a complete checkpoint (RUN/checkpoints/step_XXXXXXXX)")
      .option("output", "HFDIR", "directory to write")
      .option("max-shard-size", "SIZE", "largest safetensors shard, e.g. 5GB, 500MB (0 = one file)", "5GB")
      .option("dtype", "float32|bfloat16|float16", "dtype of the written weights", "bfloat16");
  args.parse(argv);
  if (args.get("output").empty()) throw UsageError("export: --output must name the directory to write, got ''");
  if (args.get("checkpoint").empty()) throw UsageError("export: --checkpoint must name a checkpoint folder, got ''");
  uint64_t max_shard = 0;
  try {
    max_shard = st::parse_size(args.get("max-shard-size"));
  } catch (const std::exception& e) {
    throw UsageError(std::string("export: --max-shard-size: ") + e.what());
  }
  export_checkpoint(args.get("checkpoint"), args.get("output"), max_shard, parse_dtype_name(args.get("dtype")));
  log::info("exported " + args.get("checkpoint") + " -> " + args.get("output"));
  return 0;
}

int cmd_verify_checkpoint(const Args& argv) {
  ArgParser args("verify-checkpoint", "Checks a training checkpoint: its manifest, that its shards cover the whole state,\n"
                                      "and every file's size and xxh3 checksum. Exit status 0 if sound, 1 if not.");
  args.positional("DIR", "a checkpoint folder (RUN/checkpoints/step_XXXXXXXX)");
  args.parse(argv);
  const std::vector<std::string> problems = verify_checkpoint(args.get("DIR"));
  for (const auto& p : problems) std::cout << p << "\n";
  if (problems.empty()) std::cout << args.get("DIR") << ": sound\n";
  return problems.empty() ? 0 : 1;
}

int cmd_config_docs(const Args& argv) {
  ArgParser args("config-docs", "Prints the markdown table of every run-config key (configs/README.md embeds it).");
  args.parse(argv);
  std::cout << run_config_docs();
  return 0;
}

}  // namespace ropex
