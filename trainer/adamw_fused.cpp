// at::_fused_adamw_ over groups of tensors. See adamw_fused.h.
#include "trainer/adamw_fused.h"

#include <ATen/ops/_fused_adamw.h>

namespace ropex {

FusedAdamW::FusedAdamW(double lr, const AdamWOptions& opts, int64_t step,
                       std::function<void(const std::vector<int64_t>&)> on_done, int64_t cast_limit)
    : lr_(lr), opts_(opts), step_(step), on_done_(std::move(on_done)), cast_limit_(cast_limit) {}

void FusedAdamW::add(const at::Tensor& master, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq,
                     const at::Tensor& grad, bool decay, int64_t tag) {
  TORCH_CHECK(master.scalar_type() == at::kFloat && exp_avg.scalar_type() == at::kFloat && exp_avg_sq.scalar_type() == at::kFloat,
              "fused AdamW: masters and moments must be float32");
  TORCH_CHECK(grad.sizes() == master.sizes(), "fused AdamW: gradient of shape ", grad.sizes(), " for state of shape ",
              master.sizes());
  Group& g = groups_[decay && opts_.weight_decay != 0 ? 1 : 0];
  g.master.push_back(master);
  g.exp_avg.push_back(exp_avg);
  g.exp_avg_sq.push_back(exp_avg_sq);
  if (grad.scalar_type() == at::kFloat) {
    g.grad.push_back(grad);
  } else {
    g.grad.push_back(grad.to(at::kFloat));
    cast_elements_ += grad.numel();
  }
  g.tags.push_back(tag);
  if (cast_elements_ >= cast_limit_) flush();
}

void FusedAdamW::flush() {
  run(groups_[0], false);
  run(groups_[1], true);
  cast_elements_ = 0;
}

void FusedAdamW::run(Group& g, bool decay) {
  if (g.master.empty()) return;
  // The kernel reads the step count (for the bias corrections) from one float32 tensor per
  // parameter on the state's device; every tensor here is at the same step, so one is shared.
  const at::Tensor step = at::full({}, static_cast<double>(step_), g.master[0].options());
  const std::vector<at::Tensor> steps(g.master.size(), step);
  at::_fused_adamw_(g.master, g.grad, g.exp_avg, g.exp_avg_sq, /*max_exp_avg_sqs=*/{}, steps, lr_, opts_.beta1, opts_.beta2,
                    decay ? opts_.weight_decay : 0.0, opts_.eps, /*amsgrad=*/false, /*maximize=*/false);
  const std::vector<int64_t> tags = std::move(g.tags);
  g = Group{};
  if (on_done_) on_done_(tags);
}

}  // namespace ropex
