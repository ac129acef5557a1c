// The training job: setup (distributed init, model with the run's rope scaling, optimizer, loader,
// resume from the newest sound checkpoint), then the loop: a step (trainer/train_step.h: micro-
// batches, loss, reduction, clip, the ranks' agreement, update unless non-finite), then hooks
// (non-finite policy, metrics, evaluation, checkpoint, stop on a signal or run.stop_after); the
// final checkpoint and the export at the end. Stop signals: trainer/preemption.h.
#pragma once
#include "data/loader.h"
#include "models/llama_config.h"
#include "trainer/run_config.h"

#include <cmath>
#include <string>

namespace ropex {

struct TrainSummary {
  int64_t steps = 0;
  double last_loss = std::nan("");  // of the last finite step (NaN when unknown)
  std::string last_checkpoint;
  std::string export_dir;
  bool preempted = false;  // stopped by a signal, with a checkpoint (ropex train exits kPreemptedExitCode)
  bool already_complete = false;  // resumed at schedule.steps: nothing was trained
  bool main_rank = false;  // this process is rank 0 (it writes the run folder's metrics and pictures)
};

// `resolved` is the run config as JSON (saved in the run dir and every checkpoint). A resume refuses
// config changes that break the exact resume (trainer/resume_check.h) unless `accepted_changes`
// names them (keys or sections).
TrainSummary train(const RunConfig& cfg, const nlohmann::json& resolved,
                   const std::vector<std::string>& accepted_changes = {});

// What to tell a user whose run stopped early: run again, or (under checkpoint.resume = never)
// set checkpoint.resume=auto.
std::string resume_hint(const RunConfig& cfg);

// The rope scaling a run trains with, from the model's config and the run's rope section; also the
// max_position_embeddings to record and the target length L position ids may reach.
RopeScaling run_rope(const RunConfig& cfg, const LlamaConfig& model, int64_t* max_position_embeddings, int64_t* target_len);

// The run's loader for one rank: opens data.store, checks it against the model's vocabulary and
// tokenizer (meta.json's record of the tokenizer it was made with, when model.path has one), and
// sets up the sampler for the window and target length (a ConfigError when the sampler needs a
// target length the rope section does not give; an error naming the store when no document is
// long enough). `model` is the model's own config.json.
std::unique_ptr<Loader> make_loader(const RunConfig& cfg, const LlamaConfig& model, int rank, int world);

// What train checks before it starts, without starting: the rope section against the model's
// config.json and the token store (make_loader's checks, the tokenizer's included).
void check_run_inputs(const RunConfig& cfg);

}  // namespace ropex
