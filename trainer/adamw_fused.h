// The fused AdamW update: at::_fused_adamw_ over lists of float32 tensors (masters, both moments,
// float32 gradients), one call for many parameters (on CUDA a few multi-tensor kernel launches
// for the whole list instead of several launches per tensor; a vectorised loop on the CPU). The same update as adamw_update (trainer/optim.h), which stays
// the reference; the two agree to float32 rounding (tests/test_fast_paths.cpp).
//
// It does not own state or know parameter names: AdamW and the sharded optimizer (trainer/zero.h)
// hand it their tensors, or stretches of them, and are told which were updated (to copy masters
// into lower-precision parameters). Gradients in another dtype are cast to float32 as they are added;
// those temporaries are bounded: a call is made whenever they reach kFusedCastElements.
#pragma once
#include "trainer/optim.h"

#include <functional>
#include <vector>

namespace ropex {

// 2^26 float32 elements (256 MiB) of cast-up gradients at most between two fused calls.
constexpr int64_t kFusedCastElements = int64_t{1} << 26;

class FusedAdamW {
 public:
  // step: the optimizer step these updates belong to (1-based, already counted). on_done(tags):
  // called after each fused call with the tags of the tensors it updated. cast_limit: cast-up
  // gradient elements after which a call is made (a test makes it small).
  FusedAdamW(double lr, const AdamWOptions& opts, int64_t step, std::function<void(const std::vector<int64_t>&)> on_done,
             int64_t cast_limit = kFusedCastElements);
  // One tensor (or stretch) to update: master, exp_avg and exp_avg_sq float32 of one shape on one
  // device, grad of that shape (any float dtype); `decay`: weight decay applies.
  void add(const at::Tensor& master, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, const at::Tensor& grad,
           bool decay, int64_t tag);
  void flush();  // updates everything added so far

 private:
  struct Group {
    std::vector<at::Tensor> master, exp_avg, exp_avg_sq, grad;
    std::vector<int64_t> tags;
  };
  void run(Group& g, bool decay);
  double lr_;
  AdamWOptions opts_;
  int64_t step_;
  std::function<void(const std::vector<int64_t>&)> on_done_;
  Group groups_[2];  // [0] without weight decay, [1] with
  int64_t cast_limit_;
  int64_t cast_elements_ = 0;
};

}  // namespace ropex
