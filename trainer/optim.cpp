// AdamW, clipping and schedules. See optim.h.
#include "trainer/optim.h"

#include "trainer/adamw_fused.h"

#include <cmath>
#include <stdexcept>

namespace ropex {

bool decays(const std::string& n) {
  const bool bias = n.size() >= 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
  return !bias && n.find("norm") == std::string::npos;
}

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> named_params, AdamWOptions opts, const StateReader* masters)
    : params_(std::move(named_params)), opts_(opts) {
  at::NoGradGuard ng;
  for (auto& [name, p] : params_) {
    Slot s;
    if (p.scalar_type() == at::kFloat) s.master = p.detach();
    else if (masters) s.master = (*masters)("master." + name, p.sizes(), 0, p.numel()).to(p.device()).view(p.sizes());
    else s.master = p.detach().to(at::kFloat).clone();
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

void adamw_update(const at::Tensor& master, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq,
                  const at::Tensor& g, double lr, const AdamWOptions& o, double bias1, double bias2_sqrt, bool decay) {
  // The same sequence of operations as torch.optim.AdamW (single-tensor path).
  if (decay && o.weight_decay != 0) master.mul_(1 - lr * o.weight_decay);
  exp_avg.lerp_(g, 1 - o.beta1);
  exp_avg_sq.mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
  at::Tensor denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(o.eps);
  master.addcdiv_(exp_avg, denom, -lr / bias1);
}

void AdamW::step(double lr) {
  at::NoGradGuard ng;
  if (!params_.empty() && runs_fused(opts_.kernel, params_[0].second.device())) return step_fused(lr);
  ++step_;
  const double bias1 = 1 - std::pow(opts_.beta1, static_cast<double>(step_));
  const double bias2_sqrt = std::sqrt(1 - std::pow(opts_.beta2, static_cast<double>(step_)));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i].second;
    Slot& s = slots_[i];
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad().scalar_type() == at::kFloat ? p.grad() : p.grad().to(at::kFloat);
    adamw_update(s.master, s.exp_avg, s.exp_avg_sq, g, lr, opts_, bias1, bias2_sqrt, s.decay);
    if (!s.master.is_same(p)) p.copy_(s.master);  // lower-precision model: cast the master down
  }
}

void AdamW::step_fused(double lr) {
  ++step_;
  // Parameters in a lower precision get their masters back once their batch is updated.
  FusedAdamW fused(lr, opts_, step_, [this](const std::vector<int64_t>& done) {
    for (int64_t i : done)
      if (!slots_[i].master.is_same(params_[i].second)) params_[i].second.copy_(slots_[i].master);
  });
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    Slot& s = slots_[i];
    fused.add(s.master, s.exp_avg, s.exp_avg_sq, p.grad(), s.decay, static_cast<int64_t>(i));
  }
  fused.flush();
}

OptimizerMemory AdamW::memory() const {
  OptimizerMemory m;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].master.is_alias_of(params_[i].second)) m.master += slots_[i].master.nbytes();
    m.moments += slots_[i].exp_avg.nbytes() + slots_[i].exp_avg_sq.nbytes();
  }
  return m;
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

int64_t AdamW::numel() const {
  int64_t n = 0;
  for (const auto& [name, p] : params_) n += p.numel();
  return n;
}

std::vector<StatePiece> AdamW::state_pieces(int64_t begin, int64_t end) const {
  std::vector<StatePiece> out;
  int64_t start = 0;  // this parameter's first element in the concatenation
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    const int64_t lo = std::max(begin, start), hi = std::min(end, start + p.numel());
    if (lo < hi) {
      const std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
      const Slot& s = slots_[i];
      for (const auto& [kind, t] : {std::pair<const char*, const at::Tensor*>{"master.", &s.master},
                                    {"exp_avg.", &s.exp_avg}, {"exp_avg_sq.", &s.exp_avg_sq}})
        out.push_back({kind + name, shape, lo - start, t->detach().reshape({-1}).narrow(0, lo - start, hi - lo)});
    }
    start += p.numel();
  }
  return out;
}

StateReader state_reader(const std::map<std::string, at::Tensor>& state) {
  return [&state](const std::string& key, at::IntArrayRef shape, int64_t offset, int64_t count) {
    auto it = state.find(key);
    if (it == state.end()) throw std::runtime_error("optimizer state lacks '" + key + "'");
    if (it->second.sizes() != shape)
      throw std::runtime_error("optimizer state '" + key + "' has shape " + c10::str(it->second.sizes()) +
                               ", the model expects " + c10::str(shape));
    return it->second.reshape({-1}).narrow(0, offset, count).to(at::kFloat);
  };
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& state, int64_t step) {
  load_state(state_reader(state), step);
}

void AdamW::load_state(const StateReader& read, int64_t step) {
  at::NoGradGuard ng;
  // Check every key before changing anything.
  for (const auto& [n, p] : params_)
    for (const char* kind : {"exp_avg.", "exp_avg_sq.", "master."}) read(kind + n, p.sizes(), 0, 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i].first;
    Slot& s = slots_[i];
    const int64_t numel = s.master.numel();
    s.exp_avg.copy_(read("exp_avg." + n, s.exp_avg.sizes(), 0, numel).view_as(s.exp_avg));
    s.exp_avg_sq.copy_(read("exp_avg_sq." + n, s.exp_avg_sq.sizes(), 0, numel).view_as(s.exp_avg_sq));
    s.master.copy_(read("master." + n, s.master.sizes(), 0, numel).view_as(s.master));
    if (!s.master.is_same(params_[i].second)) params_[i].second.copy_(s.master);
  }
  step_ = step;
}

at::Tensor global_grad_norm(const at::Tensor& sum_of_squares) {
  return sum_of_squares.sqrt().to(at::kFloat).reshape({});
}

at::Tensor sum_of_squares_f64(const at::Tensor& t) {
  const at::Tensor flat = t.reshape({-1});
  constexpr int64_t kChunk = int64_t{1} << 22;
  at::Tensor total = at::zeros({1}, flat.options().dtype(at::kDouble));
  for (int64_t begin = 0; begin < flat.numel(); begin += kChunk)
    total += at::linalg_vector_norm(flat.narrow(0, begin, std::min(kChunk, flat.numel() - begin)), 2, std::nullopt, false,
                                    at::kDouble).square();
  return total;
}

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard ng;
  std::vector<at::Tensor> squares;
  for (const auto& p : params)
    if (p.grad().defined()) squares.push_back(sum_of_squares_f64(p.grad()));
  if (squares.empty()) return at::zeros({}, at::kFloat);
  at::Tensor total = global_grad_norm(at::cat(squares).sum());
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
