// One training step: the micro-batches' forward and backward with the token-normalised loss, the
// gradient reduction, clipping, and one agreement across ranks — a single all-reduce of a few
// numbers read once on the host — on the global loss, whether loss and gradient norm are finite,
// whether any rank was asked to stop, and whether every rank's checkpoint write is done. The
// optimizer update is applied only when the step is finite (optim.skip_nonfinite decides in the
// loop what a skipped step means).
//
// What this does not do: no logging of metrics, no checkpoints, no evaluation (trainer/train.cpp).
//
// Test hook: ROPEX_FAULT_INJECT=nan-at-step:S[,S...] makes this rank's loss NaN at those steps
// (0-based, the step being computed).
#pragma once
#include "data/loader.h"
#include "models/llama.h"
#include "trainer/distributed.h"
#include "trainer/zero.h"

namespace ropex {

struct StepInputs {
  int64_t step = 0;  // 0-based index of the step being computed
  int64_t grad_accum = 1;
  double lr = 0, grad_clip = 0;
  bool stop_requested = false;  // this rank's signal flag
  bool writer_idle = true;      // this rank has no checkpoint write in flight
};

struct StepOutcome {
  double loss = 0, grad_norm = 0;
  bool finite = true;           // the update was applied
  bool local_finite = true;     // this rank's own loss was finite
  bool stop_requested = false;  // some rank was asked to stop
  bool writers_idle = true;     // every rank's checkpoint write is done
};

StepOutcome train_step(LlamaForCausalLM& model, DataParallelOptimizer& opt, Loader& loader, Distributed& dist,
                       const at::Device& dev, const ForwardOptions& fo, const StepInputs& in);

// Held-out mean loss over `batches` (sharded over ranks), or nothing when some rank was asked to
// stop in the middle (`stop` is polled between batches and agreed across ranks).
std::optional<double> evaluate(LlamaForCausalLM& model, const std::vector<Batch>& batches, const at::Device& dev,
                               Distributed& dist, const ForwardOptions& fo, const std::function<bool()>& stop);

}  // namespace ropex
