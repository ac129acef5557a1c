// AdamW with decoupled weight decay (torch.optim.AdamW's update, step for step), float32 master
// weights when the model computes in a lower precision, global-norm gradient clipping, and the
// learning-rate schedules. State is keyed by parameter NAME, so checkpoints survive refactors and
// are readable anywhere (safetensors: exp_avg.<name>, exp_avg_sq.<name>, master.<name>).
//
// Precision: with a bfloat16/float16 model the optimizer holds a float32 master copy of every
// parameter; gradients are cast up, the update runs in float32 on the master, and the result is
// cast down into the model. With a float32 model the parameters are their own masters.
//
// Kernels (AdamWOptions::kernel): `reference` updates tensor by tensor with torch.optim.AdamW's
// single-tensor sequence of operations; `fused` hands lists of tensors to at::_fused_adamw_
// (trainer/adamw_fused.h), one kernel launch for many parameters on CUDA; `auto` is fused on CUDA
// and the reference on the CPU. Both update the same float32 state and agree to float32 rounding.
#pragma once
#include "models/kernel_choice.h"

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ropex {

using OptimKernel = KernelChoice;  // models/kernel_choice.h

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  OptimKernel kernel = OptimKernel::automatic;
};

// Norm weights and biases get no weight decay.
bool decays(const std::string& param_name);

// One AdamW update, in place, of float32 state from a float32 gradient (all of one shape): the
// sequence of operations of torch.optim.AdamW's single-tensor path. bias1 = 1 - beta1^t and
// bias2_sqrt = sqrt(1 - beta2^t) for step t. Shared by AdamW and the sharded optimizer (trainer/zero.h),
// which applies it to stretches of parameters.
void adamw_update(const at::Tensor& master, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq,
                  const at::Tensor& grad, double lr, const AdamWOptions& opts, double bias1, double bias2_sqrt,
                  bool decay);

// Reads saved float32 optimizer state by key ("master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>"):
// `count` elements from element `offset` of the flattened tensor, as a 1-D float32 CPU tensor, so a
// rank loads only the part it keeps. Throws naming the key when it is missing or its shape is not
// `shape` (count 0 just checks that).
using StateReader =
    std::function<at::Tensor(const std::string& key, at::IntArrayRef shape, int64_t offset, int64_t count)>;
// A StateReader over tensors in memory (e.g. AdamW::state_tensors() output); `state` must outlive it.
StateReader state_reader(const std::map<std::string, at::Tensor>& state);

// A stretch of one saved state tensor that a rank holds: elements [offset, offset + data.numel()) of
// the flattened tensor `key` (of full shape `shape`). `data` is a 1-D contiguous float32 view of the
// live state, on its device: valid until the next optimizer step; a checkpoint copies it out.
struct StatePiece {
  std::string key;
  std::vector<int64_t> shape;
  int64_t offset = 0;
  at::Tensor data;
};

// Bytes of optimizer state on this rank (for the start-of-run log line).
struct OptimizerMemory {
  int64_t master = 0;   // float32 master copies that are not the parameters themselves
  int64_t moments = 0;  // exp_avg + exp_avg_sq
};

class AdamW {
 public:
  // Float32 parameters are their own masters. Others get float32 masters read from `masters` (key
  // "master.<name>", e.g. the original weights' file, so no low bits are lost to the compute
  // dtype), one tensor at a time; without it, from the parameters cast up.
  AdamW(std::vector<std::pair<std::string, at::Tensor>> named_params, AdamWOptions opts,
        const StateReader* masters = nullptr);
  // One update with learning rate `lr` from the parameters' current .grad().
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return step_; }
  // Name-keyed state: "exp_avg.<name>", "exp_avg_sq.<name>", "master.<name>" (CPU float32 copies).
  std::map<std::string, at::Tensor> state_tensors() const;
  // Restores from state_tensors() output; throws naming any missing/mismatched tensor.
  void load_state(const std::map<std::string, at::Tensor>& state, int64_t step);
  void load_state(const StateReader& read, int64_t step);  // tensor by tensor
  OptimizerMemory memory() const;
  // The state of elements [begin, end) of the parameters laid end to end in order (all three kinds
  // of every parameter the range touches), as views: how replicated ranks split a checkpoint.
  std::vector<StatePiece> state_pieces(int64_t begin, int64_t end) const;
  int64_t numel() const;  // elements of all parameters
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }

 private:
  struct Slot {
    at::Tensor master, exp_avg, exp_avg_sq;  // float32, on the parameter's device
    bool decay = true;
  };
  void step_fused(double lr);
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<Slot> slots_;
  AdamWOptions opts_;
  int64_t step_ = 0;
};

// Scales gradients so their global L2 norm is at most max_norm (0 = no clipping). Returns the norm
// before clipping as a float32 scalar on the gradients' device: the clip coefficient is computed
// there too, so clipping needs no host synchronisation. Squares are summed in float64 and the norm
// rounded to float32 once (global_grad_norm), so the norm, and with it the clipped gradients, do not
// depend on how the gradients are split into tensors, buckets or ZeRO shards (trainer/zero.h).
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);
// sqrt of a float64 sum of squares, as a float32 scalar on its device.
at::Tensor global_grad_norm(const at::Tensor& sum_of_squares);
// The sum of squares of t's elements in float64, as a 1-element tensor on t's device. Taken 2^22
// elements at a time: a float64 copy of the whole tensor (what linalg_vector_norm with a float64
// dtype makes) would cost twice a float32 gradient's memory for the moment.
at::Tensor sum_of_squares_f64(const at::Tensor& t);

struct LrSchedule {
  std::string type = "linear";  // constant | linear | cosine
  double peak = 1e-3;
  int64_t warmup = 0, total = 1;
  double min_ratio = 0.0;
  // lr for optimizer step `step` (0-based): linear warmup peak*(step+1)/warmup, reaching the peak
  // at the last warmup step, then decay to peak*min_ratio at `total`. transformers' schedulers give
  // the first step lr 0 (step/warmup); ropex starts one increment in so no step is wasted. After
  // warmup the curves equal get_linear/cosine_schedule_with_warmup (min_ratio 0).
  double at(int64_t step) const;
};

}  // namespace ropex
