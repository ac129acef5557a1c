// The training job: config -> distributed init -> model (HF dir, rope scaling applied, broadcast)
// -> loader (sampler) -> optimizer -> resume -> loop (lr, micro-batches, token-normalised loss,
// backward, gradient all-reduce, clip, step, metrics, eval, checkpoint) -> final checkpoint -> export.
#pragma once
#include "models/llama_config.h"
#include "trainer/run_config.h"

#include <string>

namespace ropex {

struct TrainSummary {
  int64_t steps = 0;
  double last_loss = 0;
  std::string last_checkpoint;
  std::string export_dir;
};

// `resolved` is the run config as JSON (saved in the run dir and every checkpoint).
TrainSummary train(const RunConfig& cfg, const nlohmann::json& resolved);

// The rope scaling a run trains with, from the model's config and the run's rope section; also the
// max_position_embeddings to record and the target length L position ids may reach.
RopeScaling run_rope(const RunConfig& cfg, const LlamaConfig& model, int64_t* max_position_embeddings, int64_t* target_len);

}  // namespace ropex
