// Replicated (stage 0) and sharded (ZeRO stages 1-2) optimizers over data-parallel ranks. See zero.h.
#include "trainer/zero.h"

#include "trainer/adamw_fused.h"
#include "trainer/log.h"

#include <cmath>
#include <optional>
#include <stdexcept>

namespace ropex {
namespace {

// Stage 0: AdamW's replicated state; GradReducer all-reduces whole gradients.
class Replicated final : public DataParallelOptimizer {
 public:
  Replicated(Distributed& dist, std::vector<std::pair<std::string, at::Tensor>> named, AdamWOptions opts, int64_t bucket_bytes,
             const StateReader* masters)
      : dist_(dist), opt_(std::move(named), opts, masters), bucket_bytes_(bucket_bytes) {
    for (const auto& [n, p] : opt_.params()) params_.push_back(p);
  }
  void attach() override { reducer_ = std::make_unique<GradReducer>(dist_, params_, bucket_bytes_); }
  void arm() override { reducer_->arm(); }
  void finish() override { reducer_->finish(); }
  at::Tensor clip_grad_norm(double max_norm) override { return ropex::clip_grad_norm(params_, max_norm); }
  void step(double lr) override { opt_.step(lr); }
  void zero_grad() override { opt_.zero_grad(); }
  std::vector<StatePiece> owned_state() const override {
    const int64_t n = opt_.numel(), w = dist_.world(), r = dist_.rank();
    return opt_.state_pieces(n * r / w, n * (r + 1) / w);
  }
  int64_t steps() const override { return opt_.steps(); }
  void load_state(const StateReader& read, int64_t step) override { opt_.load_state(read, step); }
  OptimizerMemory memory() const override { return opt_.memory(); }
  int zero_stage() const override { return 0; }
  std::string reduction_summary() const override {
    return cat("gradient all-reduce: ", reducer_->buckets(), " buckets, ", reducer_->launched_during_backward(),
               " launched while backward was still running");
  }

 private:
  Distributed& dist_;
  AdamW opt_;
  int64_t bucket_bytes_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<GradReducer> reducer_;
};

// Stages 1-2: float32 master, exp_avg and exp_avg_sq of this rank's shard only (flat, in the
// layout's shard order); segments map stretches of the shard to stretches of parameters.
class Sharded final : public DataParallelOptimizer {
 public:
  Sharded(Distributed& dist, std::vector<std::pair<std::string, at::Tensor>> named, AdamWOptions opts, int stage,
          int64_t bucket_bytes, at::ScalarType compute_dtype, const StateReader* masters)
      : dist_(dist), named_(std::move(named)), opts_(opts), stage_(stage), dtype_(compute_dtype) {
    if (named_.empty()) throw std::invalid_argument("ZeRO optimizer: the model has no parameters");
    std::vector<int64_t> numels;
    for (const auto& [n, p] : named_) {
      params_.push_back(p);
      numels.push_back(p.numel());
      decay_.push_back(decays(n));
    }
    layout_ = ShardLayout::plan(numels, static_cast<int64_t>(c10::elementSize(dtype_)), bucket_bytes, dist.world(),
                                dist.rank());
    at::NoGradGuard ng;
    const auto f32 = at::TensorOptions().dtype(at::kFloat).device(params_[0].device());
    master_ = at::zeros({layout_.shard_numel}, f32);
    exp_avg_ = at::zeros({layout_.shard_numel}, f32);
    exp_avg_sq_ = at::zeros({layout_.shard_numel}, f32);
    // Masters of this rank's shard: from `masters` when the parameters are not float32, else from
    // the parameters as they are now (see zero.h).
    for (const auto& s : layout_.segments) {
      const at::Tensor& p = params_[s.param];
      master_.narrow(0, s.shard_offset, s.length)
          .copy_(masters && p.scalar_type() != at::kFloat
                     ? (*masters)("master." + named_[s.param].first, p.sizes(), s.param_offset, s.length)
                     : p.detach().reshape({-1}).narrow(0, s.param_offset, s.length));
    }
  }

  void attach() override {
    for (const auto& p : params_)
      if (p.scalar_type() != dtype_)
        throw std::logic_error("ZeRO optimizer: planned for " + std::string(c10::toString(dtype_)) +
                               " parameters, attached to " + c10::toString(p.scalar_type()));
    reducer_ = std::make_unique<GradReducer>(dist_, params_, layout_, stage_);
  }
  void arm() override { reducer_->arm(); }
  void finish() override { reducer_->finish(); }

  at::Tensor clip_grad_norm(double max_norm) override {
    at::NoGradGuard ng;
    const at::Tensor& g = reducer_->grad_shard();
    // Sum of squares of this rank's chunks (padding is zero) in float64, summed over ranks; on the
    // device. In float64 the float32 norm comes out as the replicated optimizer's (optim.h).
    at::Tensor sq = sum_of_squares_f64(g);
    dist_.allreduce_sum(sq);
    at::Tensor total = global_grad_norm(sq);
    if (max_norm > 0) {
      // min(1, max_norm / (norm + 1e-6)), as clip_grad_norm (optim.h), kept on the device.
      at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
      g.mul_(coef.to(g.scalar_type()));
    }
    return total;
  }

  void step(double lr) override {
    at::NoGradGuard ng;
    ++step_;
    const at::Tensor& grad = reducer_->grad_shard();
    if (runs_fused(opts_.kernel, master_.device())) {
      // Stretches handed to the fused kernel in groups (trainer/adamw_fused.h); the parameters are
      // published from the masters once all are updated, as below.
      FusedAdamW fused(lr, opts_, step_, nullptr);
      for (const auto& s : layout_.segments)
        fused.add(master_.narrow(0, s.shard_offset, s.length), exp_avg_.narrow(0, s.shard_offset, s.length),
                  exp_avg_sq_.narrow(0, s.shard_offset, s.length), grad.narrow(0, s.shard_offset, s.length), decay_[s.param],
                  s.param);
      fused.flush();
      publish();
      return;
    }
    const double bias1 = 1 - std::pow(opts_.beta1, static_cast<double>(step_));
    const double bias2_sqrt = std::sqrt(1 - std::pow(opts_.beta2, static_cast<double>(step_)));
    // Segment by segment: each is a stretch of one parameter, so weight decay follows the parameter
    // and temporaries stay as small as AdamW's (at most one parameter).
    for (const auto& s : layout_.segments) {
      at::Tensor g = grad.narrow(0, s.shard_offset, s.length);
      if (g.scalar_type() != at::kFloat) g = g.to(at::kFloat);
      adamw_update(master_.narrow(0, s.shard_offset, s.length), exp_avg_.narrow(0, s.shard_offset, s.length),
                   exp_avg_sq_.narrow(0, s.shard_offset, s.length), g, lr, opts_, bias1, bias2_sqrt, decay_[s.param]);
    }
    publish();
  }

  void zero_grad() override {
    for (auto& p : params_) {
      if (!p.grad().defined()) continue;
      if (stage_ == 1) p.mutable_grad().zero_();  // views into the reducer's buckets: keep them
      else p.mutable_grad().reset();
    }
  }

  std::vector<StatePiece> owned_state() const override {
    std::vector<StatePiece> out;
    for (const auto& s : layout_.segments) {
      const auto& [name, p] = named_[s.param];
      const std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
      for (const auto& [kind, state] : kinds())
        out.push_back({kind + name, shape, s.param_offset, state->narrow(0, s.shard_offset, s.length)});
    }
    return out;
  }
  int64_t steps() const override { return step_; }

  void load_state(const StateReader& read, int64_t step) override {
    at::NoGradGuard ng;
    // Every rank checks every key and shape, so a checkpoint that does not fit fails on all ranks.
    for (const auto& [name, p] : named_)
      for (const auto& [kind, state] : kinds()) read(kind + name, p.sizes(), 0, 0);
    for (const auto& s : layout_.segments) {
      const auto& [name, p] = named_[s.param];
      for (const auto& [kind, state] : kinds())
        state->narrow(0, s.shard_offset, s.length).copy_(read(kind + name, p.sizes(), s.param_offset, s.length));
    }
    step_ = step;
    publish();  // the parameters from the loaded masters, as after a step
  }

  OptimizerMemory memory() const override {
    return {.master = static_cast<int64_t>(master_.nbytes()),
            .moments = static_cast<int64_t>(exp_avg_.nbytes() + exp_avg_sq_.nbytes())};
  }
  int zero_stage() const override { return stage_; }
  std::string reduction_summary() const override {
    return cat("gradient reduce-scatter (ZeRO-", stage_, "): ", reducer_->buckets(), " buckets, ",
               reducer_->launched_during_backward(), " launched while backward was still running");
  }

 private:
  std::vector<std::pair<std::string, const at::Tensor*>> kinds() const {
    return {{"master.", &master_}, {"exp_avg.", &exp_avg_}, {"exp_avg_sq.", &exp_avg_sq_}};
  }

  // Every rank's updated chunks, cast to the compute dtype, all-gathered bucket by bucket into every
  // rank's parameters; the next bucket's all-gather runs while the last one is copied back.
  void publish() {
    at::NoGradGuard ng;
    struct InFlight {
      const ShardLayout::Bucket* bucket;
      at::Tensor mine, full;
      PendingCollective work;
    };
    auto land = [&](InFlight& f) {
      f.work.wait();
      for (size_t i = 0; i < f.bucket->members.size(); ++i) {
        at::Tensor& p = params_[f.bucket->members[i]];
        p.copy_(f.full.narrow(0, f.bucket->offsets[i], p.numel()).view(p.sizes()));
      }
    };
    std::optional<InFlight> last;
    for (const auto& b : layout_.buckets) {
      InFlight f{&b, master_.narrow(0, b.shard_offset, b.chunk).to(dtype_), {}, {}};
      f.full = at::empty({b.padded}, f.mine.options());
      f.work = dist_.allgather(f.full, f.mine);
      if (last) land(*last);
      last = std::move(f);
    }
    if (last) land(*last);
  }

  Distributed& dist_;
  std::vector<std::pair<std::string, at::Tensor>> named_;
  std::vector<at::Tensor> params_;
  std::vector<bool> decay_;
  AdamWOptions opts_;
  int stage_;
  at::ScalarType dtype_;
  ShardLayout layout_;
  at::Tensor master_, exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
  std::unique_ptr<GradReducer> reducer_;  // declared after layout_, which it refers to
};

}  // namespace

std::unique_ptr<DataParallelOptimizer> make_data_parallel_optimizer(
    Distributed& dist, std::vector<std::pair<std::string, at::Tensor>> named_params, AdamWOptions opts, int zero_stage,
    int64_t bucket_bytes, at::ScalarType compute_dtype, const StateReader* masters) {
  if (zero_stage == 0) return std::make_unique<Replicated>(dist, std::move(named_params), opts, bucket_bytes, masters);
  if (zero_stage == 1 || zero_stage == 2)
    return std::make_unique<Sharded>(dist, std::move(named_params), opts, zero_stage, bucket_bytes, compute_dtype, masters);
  throw std::invalid_argument("zero_stage must be 0, 1 or 2, got " + std::to_string(zero_stage));
}

}  // namespace ropex
