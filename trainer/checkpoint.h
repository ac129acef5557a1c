// Training checkpoints: written atomically, found, loaded, pruned, exported.
//
// Layout of RUN/checkpoints/step_00000100/:
//   model.safetensors    float32 master weights under HF names (loadable by `ropex export`)
//                        (whatever distributed.zero_stage and world size wrote them: sharded state
//                        is gathered to rank 0 for saving, and each rank reads only its chunks back)
//   config.json          the model config with the rope scaling trained with (ropex's own types
//                        allowed: ntk and dynamic-yarn are converted at export)
//   optimizer.safetensors  exp_avg.<name>, exp_avg_sq.<name>
//   trainer_state.json   step, tokens seen, world size, seed, the loader state of every rank
//   run_config.json      the resolved run configuration
//   tokenizer.model      copied from the model directory (when it has one)
//   COMPLETE             written last
// Writing goes to checkpoints/.step_00000100.partial, every file fsynced, COMPLETE written, the
// folder renamed into place and the parent fsynced: a crash at any moment leaves either the previous
// complete checkpoints only, or the new one complete. Only folders with COMPLETE are ever loaded.
#pragma once
#include "data/loader.h"
#include "models/llama.h"
#include "trainer/distributed.h"
#include "trainer/optim.h"
#include "trainer/zero.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace ropex {

struct TrainerState {
  int64_t step = 0;         // optimizer steps completed
  int64_t tokens_seen = 0;  // training tokens (all ranks)
  int world = 1;
  uint64_t seed = 0;
};

std::string checkpoint_name(int64_t step);  // step_00000100

// Collective: every rank calls it. Returns the checkpoint directory.
std::string save_checkpoint(Distributed& dist, const std::string& run_dir, LlamaForCausalLM& model, DataParallelOptimizer& opt,
                            const Loader& loader, const TrainerState& state, const nlohmann::json& run_config,
                            const std::string& tokenizer_model, int64_t keep_last);

// The newest complete checkpoint under RUN/checkpoints, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Loads weights, optimizer and this rank's loader state; refuses (with the reason) a checkpoint of
// another model shape, rope scaling or world size. Optimizer state is read from the memory-mapped
// files tensor by tensor (sharded: only this rank's stretches), never whole files at once.
// Collective (every rank calls it). Returns the trainer state.
TrainerState load_checkpoint(const std::string& dir, Distributed& dist, LlamaForCausalLM& model, DataParallelOptimizer& opt,
                             Loader& loader);

// An HF directory from a checkpoint: weights in `dtype`, sharded at max_shard_bytes, config.json
// with the trained rope scaling in a form transformers loads (ntk -> default with the stretched
// theta; dynamic-yarn -> yarn at its trained factor), the tokenizer.
void export_checkpoint(const std::string& checkpoint_dir, const std::string& out_dir, uint64_t max_shard_bytes,
                       at::ScalarType dtype);

// The rope scaling as transformers can load it (see export_checkpoint).
LlamaConfig hf_loadable(LlamaConfig cfg);

// fsync a file or directory; throws naming the path.
void fsync_path(const std::string& path);

}  // namespace ropex
