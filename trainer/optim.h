// AdamW with decoupled weight decay (torch.optim.AdamW's update, step for step), float32 master
// weights when the model computes in a lower precision, global-norm gradient clipping, and the
// learning-rate schedules. State is keyed by parameter NAME, so checkpoints survive refactors and
// are readable anywhere (safetensors: exp_avg.<name>, exp_avg_sq.<name>, master.<name>).
//
// Precision: with a bfloat16/float16 model the optimizer holds a float32 master copy of every
// parameter; gradients are cast up, the update runs in float32 on the master, and the result is
// cast down into the model. With a float32 model the parameters are their own masters.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace ropex {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// Norm weights and biases get no weight decay.
bool decays(const std::string& param_name);

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, at::Tensor>> named_params, AdamWOptions opts);
  // One update with learning rate `lr` from the parameters' current .grad().
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return step_; }
  // Name-keyed state: "exp_avg.<name>", "exp_avg_sq.<name>", "master.<name>" (CPU float32 copies).
  std::map<std::string, at::Tensor> state_tensors() const;
  // Restores from state_tensors() output; throws naming any missing/mismatched tensor.
  void load_state(const std::map<std::string, at::Tensor>& state, int64_t step);
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }

 private:
  struct Slot {
    at::Tensor master, exp_avg, exp_avg_sq;  // float32, on the parameter's device
    bool decay = true;
  };
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<Slot> slots_;
  AdamWOptions opts_;
  int64_t step_ = 0;
};

// Scales gradients so their global L2 norm is at most max_norm (0 = no clipping). Returns the norm
// before clipping as a float32 scalar on the gradients' device: the clip coefficient is computed
// there too, so clipping needs no host synchronisation.
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

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
