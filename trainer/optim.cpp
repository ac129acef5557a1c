// AdamW, clipping and schedules. See optim.h.
#include "trainer/optim.h"

#include <cmath>
#include <stdexcept>

namespace ropex {

bool decays(const std::string& n) {
  const bool bias = n.size() >= 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
  return !bias && n.find("norm") == std::string::npos;
}

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> named_params, AdamWOptions opts)
    : params_(std::move(named_params)), opts_(opts) {
  at::NoGradGuard ng;
  for (auto& [name, p] : params_) {
    Slot s;
    s.master = p.scalar_type() == at::kFloat ? p.detach() : p.detach().to(at::kFloat).clone();
    s.exp_avg = at::zeros_like(s.master);
    s.exp_avg_sq = at::zeros_like(s.master);
    s.decay = decays(name);
    slots_.push_back(std::move(s));
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) {
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    }
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard ng;
  ++step_;
  const double b1 = opts_.beta1, b2 = opts_.beta2;
  const double bias1 = 1 - std::pow(b1, static_cast<double>(step_));
  const double bias2_sqrt = std::sqrt(1 - std::pow(b2, static_cast<double>(step_)));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i].second;
    Slot& s = slots_[i];
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad().scalar_type() == at::kFloat ? p.grad() : p.grad().to(at::kFloat);
    // The same sequence of operations as torch.optim.AdamW (single-tensor path).
    if (s.decay && opts_.weight_decay != 0) s.master.mul_(1 - lr * opts_.weight_decay);
    s.exp_avg.lerp_(g, 1 - b1);
    s.exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2);
    at::Tensor denom = (s.exp_avg_sq.sqrt() / bias2_sqrt).add_(opts_.eps);
    s.master.addcdiv_(s.exp_avg, denom, -lr / bias1);
    if (!s.master.is_same(p)) p.copy_(s.master);  // lower-precision model: cast the master down
  }
}

std::map<std::string, at::Tensor> AdamW::state_tensors() const {
  std::map<std::string, at::Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i].first;
    out["exp_avg." + n] = slots_[i].exp_avg.to(at::kCPU).contiguous();
    out["exp_avg_sq." + n] = slots_[i].exp_avg_sq.to(at::kCPU).contiguous();
    out["master." + n] = slots_[i].master.to(at::kCPU).contiguous();
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& state, int64_t step) {
  at::NoGradGuard ng;
  auto fetch = [&](const std::string& key, const at::Tensor& like) {
    auto it = state.find(key);
    if (it == state.end()) throw std::runtime_error("optimizer state lacks '" + key + "'");
    if (it->second.sizes() != like.sizes())
      throw std::runtime_error("optimizer state '" + key + "' has shape " + c10::str(it->second.sizes()) +
                               ", the model expects " + c10::str(like.sizes()));
    return it->second;
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i].first;
    Slot& s = slots_[i];
    s.exp_avg.copy_(fetch("exp_avg." + n, s.exp_avg));
    s.exp_avg_sq.copy_(fetch("exp_avg_sq." + n, s.exp_avg_sq));
    s.master.copy_(fetch("master." + n, s.master));
    if (!s.master.is_same(params_[i].second)) params_[i].second.copy_(s.master);
  }
  step_ = step;
}

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard ng;
  std::vector<at::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().to(at::kFloat).norm(2));
  if (norms.empty()) return at::zeros({}, at::kFloat);
  at::Tensor total = at::stack(norms).norm(2);
  if (max_norm > 0) {
    // min(1, max_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_, kept on the device.
    at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(coef.to(p.grad().scalar_type()));
  }
  return total;
}

double LrSchedule::at(int64_t step) const {
  const double s = static_cast<double>(step);
  if (warmup > 0 && step < warmup) return peak * (s + 1) / static_cast<double>(warmup);
  if (type == "constant") return peak;
  const double span = std::max<int64_t>(1, total - warmup);
  const double progress = std::clamp((s - warmup) / span, 0.0, 1.0);
  double frac;
  if (type == "linear") frac = 1.0 - progress;
  else if (type == "cosine") frac = 0.5 * (1.0 + std::cos(M_PI * progress));
  else throw std::invalid_argument("unknown schedule '" + type + "'");
  return peak * (min_ratio + (1.0 - min_ratio) * frac);
}

}  // namespace ropex
