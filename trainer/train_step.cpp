// One training step and the held-out evaluation. See train_step.h.
#include "trainer/train_step.h"

#include "models/lm_loss.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace ropex {
namespace {
bool nan_injected(int64_t step) {
  const char* f = std::getenv("ROPEX_FAULT_INJECT");
  if (!f || std::string(f).rfind("nan-at-step:", 0) != 0) return false;
  std::stringstream list(std::string(f).substr(12));
  for (std::string s; std::getline(list, s, ',');)
    if (!s.empty() && std::stoll(s) == step) return true;
  return false;
}
}  // namespace

StepOutcome train_step(LlamaForCausalLM& model, DataParallelOptimizer& opt, Loader& loader, Distributed& dist,
                       const at::Device& dev, const ForwardOptions& fo, const StepInputs& in) {
  std::vector<Batch> micro;
  double local_tokens = 0;
  for (int64_t m = 0; m < in.grad_accum; ++m) {
    micro.push_back(loader.micro_batch(in.step, m));
    local_tokens += static_cast<double>(micro.back().valid_labels);
  }
  // The loss is the mean over every valid label of the global batch (all micro-batches, all ranks).
  // Device tensors throughout (NCCL reduces device tensors only); the host reads once, below.
  at::Tensor total_tokens = at::tensor({local_tokens}, at::kFloat).to(dev);
  dist.allreduce_sum(total_tokens);
  at::Tensor loss_sum = at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(dev));
  const bool poison = nan_injected(in.step);
  for (size_t mi = 0; mi < micro.size(); ++mi) {
    const Batch& b = micro[mi];
    if (mi + 1 == micro.size()) opt.arm();  // reduce during the last backward only
    LossResult l = lm_loss(model, b.input_ids.to(dev), b.position_ids.to(dev), b.labels.to(dev), fo);
    at::Tensor sum = poison ? l.sum * std::nan("") : l.sum;
    (sum / total_tokens[0]).backward();
    loss_sum += sum.detach().to(at::kDouble);
  }
  opt.finish();
  at::Tensor grad_norm = opt.clip_grad_norm(in.grad_clip);
  // The agreement: [global loss sum, ranks asked to stop, ranks still writing] (a new tensor: this
  // rank's loss_sum stays as it is), then the norm and the token count (the same on every rank
  // already) join it for the one host read.
  at::Tensor ctl = at::cat({loss_sum, at::tensor({in.stop_requested ? 1.0 : 0.0, in.writer_idle ? 0.0 : 1.0},
                                                 at::kDouble).to(dev)});
  dist.allreduce_sum(ctl);
  const at::Tensor host = at::cat({ctl, grad_norm.to(at::kDouble).reshape({1}), total_tokens.to(at::kDouble)}).cpu();
  const double* h = host.data_ptr<double>();
  StepOutcome out;
  out.loss = h[0] / h[4];
  out.stop_requested = h[1] > 0;
  out.writers_idle = h[2] == 0;
  out.grad_norm = h[3];
  out.finite = std::isfinite(out.loss) && std::isfinite(out.grad_norm);
  if (out.finite) {
    opt.step(in.lr);
  } else {
    out.local_finite = std::isfinite(loss_sum.item<double>());  // only read on this rare path
  }
  opt.zero_grad();
  return out;
}

std::optional<double> evaluate(LlamaForCausalLM& model, const std::vector<Batch>& batches, const at::Device& dev,
                               Distributed& dist, const ForwardOptions& fo, const std::function<bool()>& stop) {
  torch::NoGradGuard ng;
  model->eval();
  // [loss sum, label count] accumulated on the device: the host reads only the stop flag per round.
  at::Tensor acc = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(dev));
  const size_t world = static_cast<size_t>(dist.world());
  // Rounds of one batch per rank (held-out docs sharded over ranks), the stop flag agreed after each.
  for (size_t first = 0; first < batches.size(); first += world) {
    if (const size_t i = first + static_cast<size_t>(dist.rank()); i < batches.size()) {
      const Batch& b = batches[i];
      LossResult l = lm_loss(model, b.input_ids.to(dev), b.position_ids.to(dev), b.labels.to(dev), fo);
      acc += at::stack({l.sum.to(at::kDouble), l.count.to(at::kDouble)});
    }
    at::Tensor flag = at::tensor({stop() ? 1.0 : 0.0}, at::kDouble).to(dev);
    dist.allreduce_sum(flag);
    if (flag.item<double>() > 0) {
      model->train();
      return std::nullopt;
    }
  }
  dist.allreduce_sum(acc);
  const at::Tensor t = acc.cpu();
  model->train();
  return t[0].item<double>() / std::max(1.0, t[1].item<double>());
}

}  // namespace ropex
