// The optimizer as the training loop sees it over data-parallel ranks: gradient reduction,
// global-norm clipping, the AdamW step, and its state for checkpoints. distributed.zero_stage picks
// where the state lives:
//
//   0  replicated: every rank holds float32 masters and moments of every parameter (AdamW,
//      trainer/optim.h); gradients are all-reduced by GradReducer.
//   1  sharded optimizer state (ZeRO-1): each bucket of gradients is reduce-scattered (summed) so a
//      rank holds the summed gradient of its contiguous chunk (trainer/shard_layout.h); the rank keeps
//      float32 master + moments for its chunks only and updates them with AdamW's arithmetic
//      (adamw_update, decay only on parameters that take it); the updated chunks are cast to the
//      compute dtype and all-gathered back into every rank's parameters.
//   2  also sharded gradients (ZeRO-2): as 1, and the whole gradient is not kept after the
//      reduction (GradReducer stage 2): only this rank's chunk lives until the update.
//
// Clipping at stages 1-2 takes the global norm from every rank's chunk (sum of squares, all-reduced;
// padding is zero), on the device. Checkpoints do not depend on the stage or the world size: the
// state is saved under the same names as AdamW's, every rank writing what it holds (owned_state) and
// reading back only its chunks, so a run resumes with another zero_stage or world size.
//
// Left out at stage 2: micro-batches before the last one of an accumulation step are not reduced
// (only the last backward is, as at stage 0), so with batch.grad_accum > 1 their gradients
// accumulate whole in .grad until the last backward packs and frees them bucket by bucket. DeepSpeed
// instead reduce-scatters every micro-batch (grad_accum times the communication) to never hold
// whole gradients; with grad_accum = 1 both hold the same.
#pragma once
#include "trainer/distributed.h"
#include "trainer/optim.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ropex {

class DataParallelOptimizer {
 public:
  virtual ~DataParallelOptimizer() = default;
  // Construction takes the float32 masters from the parameters as they are; attach() is called
  // once the model has its compute dtype (the gradient hooks need the final parameters).
  virtual void attach() = 0;
  virtual void arm() = 0;     // before the last micro-batch's backward
  virtual void finish() = 0;  // after it: gradients reduced (whole, or this rank's chunks)
  // Clips the global gradient norm to max_norm (0 = off); returns the norm before clipping as a
  // float32 scalar on the device.
  virtual at::Tensor clip_grad_norm(double max_norm) = 0;
  virtual void step(double lr) = 0;
  virtual void zero_grad() = 0;
  // The part of the state this rank writes to a checkpoint (no communication): at stages 1-2 its
  // chunks; at stage 0, where every rank holds everything, an equal 1/W share of the elements of
  // all parameters laid end to end (rank r: [r*N/W, (r+1)*N/W)), so no rank writes more than
  // another. Over all ranks the pieces cover every element of every state tensor exactly once.
  virtual std::vector<StatePiece> owned_state() const = 0;
  virtual int64_t steps() const = 0;  // updates applied (AdamW's t; skipped steps do not count)
  // Collective at stages 1-2 (the parameters are all-gathered from the loaded masters).
  virtual void load_state(const StateReader& read, int64_t step) = 0;
  virtual OptimizerMemory memory() const = 0;
  virtual int zero_stage() const = 0;
  // "gradient all-reduce: N buckets, M launched while backward was still running" (or reduce-scatter).
  virtual std::string reduction_summary() const = 0;
};

// Stage 0 with one rank is the plain AdamW; stages 1-2 work with any world size (one rank shards
// nothing). compute_dtype is the dtype the model will compute in (bucket sizes are planned in it).
// `masters` (key "master.<name>", optional) is where float32 masters are read from, stretch by
// stretch, when the parameters are not float32: at stages 1-2 each rank reads only its own shard.
// Without it they are the parameters as they are now, cast to float32.
std::unique_ptr<DataParallelOptimizer> make_data_parallel_optimizer(
    Distributed& dist, std::vector<std::pair<std::string, at::Tensor>> named_params, AdamWOptions opts, int zero_stage,
    int64_t bucket_bytes, at::ScalarType compute_dtype, const StateReader* masters = nullptr);

}  // namespace ropex
