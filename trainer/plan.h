// What a training run will hold in memory per rank, and what a step costs, from the model's
// config.json and the run config alone (no weights, no device): the arithmetic behind
// `ropex plan` and `ropex train --dry-run`. Every term is written out in bench/MEMORY.md.
//
// It models ropex's own layout (trainer/zero.h, trainer/optim.h, models/lm_loss.h): parameters and
// gradients in the compute dtype, float32 masters (unless the model computes in float32, when the
// parameters are their own masters at stage 0) and float32 moments, sharded by ZeRO stage; the
// saved activations of one decoder layer op by op; activation checkpointing of every k-th layer;
// the chunked or the plain loss; the optimizer's per-tensor temporaries. The peak is the largest of
// three moments of a step (the loss, the first layer backward, the optimizer update).
//
// What it does not do: measure anything, or know the allocator's fragmentation, NCCL's buffers or
// the CUDA context exactly: those are one stated allowance (allowance_bytes).
#pragma once
#include "models/llama_config.h"
#include "trainer/run_config.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace ropex {

struct PlanInputs {
  int64_t seq = 4096, micro_batch = 1, grad_accum = 1, world = 1, zero_stage = 0;
  int64_t checkpoint_every = 0;  // 0 none, 1 all, k every k-th layer
  int64_t loss_chunk_tokens = 1024;  // 0 = the plain loss over the full logits
  int64_t bucket_bytes = 25 << 20;
  bool cuda = true;                  // the device: CUDA, or the CPU
  int64_t dtype_bytes = 2;           // compute dtype: 2 (bfloat16) or 4 (float32)
};

struct PlanMemory {
  int64_t weights = 0, gradients = 0, optimizer = 0;  // model states
  int64_t activations = 0;  // at the peak moment, including the loss's share
  int64_t activations_no_ckpt = 0, activations_all_ckpt = 0;  // the same with no / every layer recomputed
  int64_t loss = 0;         // the loss's share of `activations` (chunk and its kept gradients)
  int64_t optimizer_transient = 0;
  int64_t allowance = 0;    // allocator, CUDA context, communication buffers (stated, not derived)
  int64_t total = 0;
  std::string peak_phase;   // "loss", "layer backward" or "optimizer step"
};

struct Plan {
  int64_t params = 0, largest_tensor = 0;
  PlanMemory per_rank;
  int64_t tokens_per_step = 0;         // global: micro x seq x accum x world
  double flops_per_step = 0;           // model FLOPs (6 per parameter-token in matmuls + attention)
  double flops_per_step_hardware = 0;  // with the recomputation of checkpointed layers
};

// Parameters of a Llama of this config (embedding, layers, final norm, untied lm_head).
int64_t count_params(const LlamaConfig& c);
Plan make_plan(const LlamaConfig& c, const PlanInputs& in);

// Where a plan is for and the memory it is held against. `gpu_memory_flag` is --gpu-memory's text
// ("" when not given; errors name the flag). The device is model.device, and for "auto" CUDA when a
// GPU is visible here or a memory size was given (planning a GPU run from a machine without one);
// a run config for the CPU refuses a GPU memory size; a CUDA plan without one takes the visible GPU's.
struct PlanTarget {
  bool cuda = false;
  std::optional<int64_t> gpu_memory;
};
PlanTarget plan_target(const RunConfig& cfg, const std::string& gpu_memory_flag);
// The launcher's world size (WORLD_SIZE), else 1.
int64_t launcher_world();
// PlanInputs from a resolved run config, the number of ranks and where it will run.
PlanInputs plan_inputs(const RunConfig& cfg, int64_t world, bool cuda);

// The plan as `ropex plan --json` prints it: params, per_rank {weights_bytes, gradients_bytes,
// optimizer_bytes, activations_bytes, ..., total_bytes}, tokens and FLOPs per step, and `fits`
// (true/false against gpu_memory, null when no memory size is known).
nlohmann::json plan_json(const Plan& p, const PlanInputs& in, std::optional<int64_t> gpu_memory);
// The same as a table for people.
std::string plan_text(const Plan& p, const PlanInputs& in, std::optional<int64_t> gpu_memory, const std::string& model);

}  // namespace ropex
