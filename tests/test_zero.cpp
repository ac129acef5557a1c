// ZeRO (trainer/shard_layout.h, trainer/zero.h) in one process: the shard layout covers every
// parameter element exactly once for odd sizes and 2 or 3 ranks; on one rank, the sharded optimizer
// (stages 1 and 2: flat gradient buffers, segment-wise AdamW, clipping from the flat shard,
// parameters copied back from the masters) equals the replicated AdamW bit for bit, with and
// without clipping, in float32 and bfloat16; the state as checkpointed loads into another stage and continues
// identically.
// The multi-rank equalities (2 Gloo ranks, every stage) and ZeRO resume are in test_train.cpp.
#include "models/hf_checkpoint.h"
#include "models/llama.h"
#include "models/lm_loss.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"
#include "trainer/log.h"
#include "trainer/shard_layout.h"
#include "trainer/zero.h"

#include <chrono>
#include <memory>
#include <set>

namespace ropex::test {
namespace {

TEST(ShardLayout, EveryParameterElementIsInExactlyOneShard) {
  const std::vector<int64_t> numels = {7, 1, 13, 30, 5, 2, 11, 64, 3, 17};
  for (int world : {2, 3}) {
    for (int64_t bucket_bytes : {1, 24, 60, 100, 1 << 30}) {
      SCOPED_TRACE(cat("world ", world, ", bucket_bytes ", bucket_bytes));
      std::vector<std::vector<int>> seen(numels.size());
      for (size_t k = 0; k < numels.size(); ++k) seen[k].assign(numels[k], 0);
      int64_t shard_numel = -1;
      for (int rank = 0; rank < world; ++rank) {
        const ShardLayout L = ShardLayout::plan(numels, 4, bucket_bytes, world, rank);
        if (shard_numel < 0) shard_numel = L.shard_numel;
        EXPECT_EQ(L.shard_numel, shard_numel) << "ranks hold different shard sizes";
        int64_t chunks = 0;
        for (const auto& b : L.buckets) {
          EXPECT_EQ(b.padded % world, 0);
          EXPECT_EQ(b.chunk * world, b.padded);
          EXPECT_LT(b.padded - b.numel, world);
          EXPECT_EQ(b.shard_offset, chunks);
          chunks += b.chunk;
        }
        EXPECT_EQ(chunks, L.shard_numel);
        // Segments: inside their bucket's chunk, in shard order, never overlapping.
        int64_t end = 0;
        for (const auto& s : L.segments) {
          ASSERT_GT(s.length, 0);
          const auto& b = L.buckets[s.bucket];
          EXPECT_GE(s.shard_offset, std::max(end, b.shard_offset));
          EXPECT_LE(s.shard_offset + s.length, b.shard_offset + b.chunk);
          end = s.shard_offset + s.length;
          ASSERT_LE(s.param_offset + s.length, numels[s.param]);
          for (int64_t e = 0; e < s.length; ++e) ++seen[s.param][s.param_offset + e];
          // The element's place in the bucket's flat buffer is this rank's chunk.
          size_t member = 0;
          while (b.members[member] != s.param) ++member;
          EXPECT_EQ(b.offsets[member] + s.param_offset, rank * b.chunk + (s.shard_offset - b.shard_offset));
        }
      }
      for (size_t k = 0; k < numels.size(); ++k)
        for (int64_t e = 0; e < numels[k]; ++e) ASSERT_EQ(seen[k][e], 1) << "parameter " << k << " element " << e;
    }
  }
}

TEST(ShardLayout, BucketsFollowTheReducersPlan) {
  // Reverse parameter order; a new bucket once the current one holds bucket_bytes.
  const ShardLayout L = ShardLayout::plan({10, 10, 10, 10, 10}, 4, 80, 2, 0);
  ASSERT_EQ(L.buckets.size(), 3u);
  EXPECT_EQ(L.buckets[0].members, (std::vector<size_t>{4, 3}));
  EXPECT_EQ(L.buckets[1].members, (std::vector<size_t>{2, 1}));
  EXPECT_EQ(L.buckets[2].members, (std::vector<size_t>{0}));
  EXPECT_EQ(plan_buckets({40, 40, 40}, {0, 1, 1}, 1000), (std::vector<std::vector<size_t>>{{2, 1}, {0}}));
  EXPECT_THROW(ShardLayout::plan({1}, 4, 8, 2, 2), std::invalid_argument);
}

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 61;
  c.hidden_size = 24;
  c.intermediate_size = 37;  // odd sizes: segments start at unaligned offsets
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

// A tiny model and its optimizer, trained as ropex's loop does (two micro-batches, the reduction
// armed for the last one, clip, step, zero_grad).
struct Trainee {
  Trainee(Distributed& dist, int stage, at::ScalarType dtype, double weight_decay, OptimKernel kernel = OptimKernel::automatic)
      : model(tiny_config()) {
    model->init_weights(11);
    std::vector<std::pair<std::string, at::Tensor>> named;
    for (auto& p : model->named_parameters()) named.emplace_back(p.key(), p.value());
    opt = make_data_parallel_optimizer(dist, named, {.lr = 2e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8,
                                                     .weight_decay = weight_decay, .kernel = kernel},
                                       stage, 700, dtype);
    model->to(dtype);
    opt->attach();
  }
  void backward(int64_t n) {
    at::manual_seed(100 + n);
    const at::Tensor ids = at::randint(0, 61, {2, 2, 16}, at::kLong), pos = at::arange(16, at::kLong).repeat({2, 1});
    for (int m = 0; m < 2; ++m) {
      if (m == 1) opt->arm();
      (causal_lm_loss(model->forward(ids[m], pos), ids[m]).mean / 2).backward();
    }
    opt->finish();
  }
  double step(int64_t n, double clip) {
    backward(n);
    const double norm = opt->clip_grad_norm(clip).item<double>();
    opt->step(1e-2);
    opt->zero_grad();
    return norm;
  }
  std::map<std::string, at::Tensor> params() {
    std::map<std::string, at::Tensor> out;
    for (auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
    return out;
  }
  LlamaForCausalLM model;
  std::unique_ptr<DataParallelOptimizer> opt;
};

Distributed& one_rank() {
  static Distributed dist(DistEnv{}, "gloo", std::chrono::seconds(10));
  return dist;
}

// The whole optimizer state of a one-rank optimizer, from the pieces it would checkpoint; also
// checks that the pieces cover every element of every state tensor exactly once.
std::map<std::string, at::Tensor> state_of(const DataParallelOptimizer& opt) {
  std::map<std::string, at::Tensor> out;
  std::map<std::string, at::Tensor> covered;
  for (const auto& p : opt.owned_state()) {
    int64_t numel = 1;
    for (int64_t d : p.shape) numel *= d;
    if (!out.count(p.key)) {
      out[p.key] = at::zeros({numel}, at::kFloat);
      covered[p.key] = at::zeros({numel}, at::kInt);
    }
    out[p.key].narrow(0, p.offset, p.data.numel()).copy_(p.data);
    covered[p.key].narrow(0, p.offset, p.data.numel()).add_(1);
  }
  for (auto& [k, v] : out) {
    EXPECT_TRUE(at::equal(covered[k], at::ones_like(covered[k]))) << k << ": pieces overlap or leave a gap";
    for (const auto& p : opt.owned_state())
      if (p.key == k) {
        v = v.view(p.shape);
        break;
      }
  }
  return out;
}

// On one rank every stage runs the same float32/bfloat16 operations element by element, so the
// comparison is bit for bit; the relative error is printed when it fails.
void compare(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [k, v] : a) {
    ASSERT_TRUE(b.count(k)) << what << ": " << k;
    EXPECT_TRUE(at::equal(v, b.at(k))) << what << ": " << k << " differs by " << rel_err(b.at(k), v);
  }
}

TEST(ZeroOptimizer, OneRankStagesEqualTheReplicatedAdamW) {
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (double clip : {0.0, 0.05}) {
      Trainee ref(one_rank(), 0, dtype, 0.1);
      Trainee s1(one_rank(), 1, dtype, 0.1), s2(one_rank(), 2, dtype, 0.1);
      for (int64_t n = 0; n < 4; ++n) {
        const double norm = ref.step(n, clip);
        if (clip > 0) {
          EXPECT_GT(norm, clip) << "clipping should be active";
        }
        EXPECT_EQ(s1.step(n, clip), norm);
        EXPECT_EQ(s2.step(n, clip), norm);
      }
      const std::string what = cat(c10::toString(dtype), clip > 0 ? ", clipped" : ", unclipped");
      // The same arithmetic element by element; the clipping norm is summed in float64 (optim.h), so
      // its float32 value does not depend on the flat shard against per-parameter norms.
      compare(ref.params(), s1.params(), "stage 1 vs 0, " + what + ", parameters");
      compare(ref.params(), s2.params(), "stage 2 vs 0, " + what + ", parameters");
      compare(state_of(*ref.opt), state_of(*s1.opt), "stage 1 vs 0, " + what + ", state");
      EXPECT_EQ(s1.opt->memory().moments, ref.opt->memory().moments);
      // One rank holds everything; a float32 model's replicated masters are its weights (no copy).
      EXPECT_EQ(ref.opt->memory().master, dtype == at::kFloat ? 0 : ref.opt->memory().moments / 2);
      EXPECT_EQ(s1.opt->memory().master, s1.opt->memory().moments / 2);
    }
  }
}

// The fused AdamW (trainer/adamw_fused.h) at every stage against the reference kernel at stage 0,
// with clipping, float32 and bfloat16 parameters. The fused kernel runs the update's operations in
// another order and form (a multiply-add where the reference lerps), so the two agree to rounding,
// not bit for bit: per step each state element passes through about 8 rounded float32 operations,
// whose errors add over the steps (the moments carry them forward). Limit: kSafety x 8 x steps x
// u(float32) of the largest |value| for the masters and moments. float32: 4 steps (the parameters
// are the masters; gradients of parameters that differ by float32 rounding differ by about as
// much). bfloat16: 1 step: the parameters are the masters rounded to bfloat16, which may round two
// masters a float32 ulp apart to neighbouring bfloat16 values, after which the next gradients differ
// at bfloat16's scale (seen: 3e-3 in the moments under ATEN_CPU_CAPABILITY=default), a difference of
// the model's precision, not of the kernels; the parameters may differ by one bfloat16 rounding.
TEST(ZeroOptimizer, FusedKernelMatchesTheReferenceAtEveryStage) {
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const int64_t steps = dtype == at::kFloat ? 4 : 1;
    const double f32_limit = tol::kSafety * 8 * static_cast<double>(steps) * tol::kFloat32;
    Trainee ref(one_rank(), 0, dtype, 0.1, OptimKernel::reference);
    std::vector<std::unique_ptr<Trainee>> fused;
    for (int stage : {0, 1, 2}) fused.push_back(std::make_unique<Trainee>(one_rank(), stage, dtype, 0.1, OptimKernel::fused));
    for (int64_t n = 0; n < steps; ++n) {
      ref.step(n, 0.05);
      for (auto& f : fused) f->step(n, 0.05);
    }
    const auto ref_state = state_of(*ref.opt);
    const auto ref_params = ref.params();
    for (size_t stage = 0; stage < fused.size(); ++stage) {
      SCOPED_TRACE(cat(c10::toString(dtype), ", stage ", stage));
      const auto state = state_of(*fused[stage]->opt);
      ASSERT_EQ(state.size(), ref_state.size());
      for (const auto& [k, v] : ref_state) EXPECT_LE(rel_err(state.at(k), v), f32_limit) << k;
      const double param_limit = dtype == at::kFloat ? f32_limit : f32_limit + tol::kBFloat16;
      for (const auto& [k, v] : fused[stage]->params()) EXPECT_LE(rel_err(v, ref_params.at(k)), param_limit) << k;
    }
  }
}

TEST(ZeroOptimizer, GradientsAreBucketViewsAtStage1AndFreedAfterTheReductionAtStage2) {
  Trainee s1(one_rank(), 1, at::kFloat, 0.1), s2(one_rank(), 2, at::kFloat, 0.1);
  s1.backward(0);
  s2.backward(0);
  std::set<const void*> storages;
  for (auto& p : s1.model->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(p.grad().is_view());
    storages.insert(p.grad().storage().data());
  }
  EXPECT_LT(storages.size(), s1.model->parameters().size()) << "stage-1 gradients should share bucket buffers";
  for (auto& p : s2.model->parameters()) EXPECT_FALSE(p.grad().defined()) << "stage 2 kept a whole gradient";
}

TEST(ZeroOptimizer, SavedStateLoadsIntoAnotherStageAndContinuesIdentically) {
  Trainee a(one_rank(), 1, at::kFloat, 0.1);
  for (int64_t n = 0; n < 3; ++n) a.step(n, 0.05);
  const std::map<std::string, at::Tensor> state = state_of(*a.opt);
  for (int stage : {0, 2}) {
    Trainee b(one_rank(), stage, at::kFloat, 0.1);  // other initial weights would do: all come from the state
    b.opt->load_state(state_reader(state), 3);
    compare(a.params(), b.params(), cat("loaded into stage ", stage, ", parameters"));
    Trainee c(one_rank(), 1, at::kFloat, 0.1);
    c.opt->load_state(state_reader(state), 3);
    for (int64_t n = 3; n < 5; ++n) {
      b.step(n, 0.05);
      c.step(n, 0.05);
    }
    compare(c.params(), b.params(), cat("continued at stage ", stage, " vs 1"));
  }
  expect_error([&] {
    std::map<std::string, at::Tensor> bad = state;
    bad.erase("exp_avg.model.norm.weight");
    Trainee b(one_rank(), 1, at::kFloat, 0.1);
    b.opt->load_state(state_reader(bad), 3);
  }, {"exp_avg.model.norm.weight"});
}

}  // namespace
}  // namespace ropex::test

namespace ropex::test {
namespace {
// A bfloat16 model streamed from a float32 HF directory gets float32 masters read from the file,
// stretch by stretch, at every stage: equal to the file's values bit for bit, not to the bfloat16
// parameters cast back up (which lose the low bits); the parameters are the file's values rounded.
TEST(ZeroOptimizer, MastersOfALowerPrecisionModelComeFromTheWeightsFile) {
  TempDir dir("masters");
  {
    LlamaForCausalLM src(tiny_config());
    src->init_weights(5);
    save_pretrained(src, dir.str());
  }
  const WeightReader weights(dir.str());
  const StateReader masters = [&](const std::string& key, at::IntArrayRef, int64_t offset, int64_t count) {
    return weights.read(key.substr(7), offset, count, at::kFloat);
  };
  for (int stage : {0, 1, 2}) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    LlamaForCausalLM model(tiny_config(), at::TensorOptions().dtype(at::kBFloat16));
    load_weights(model, weights);
    std::vector<std::pair<std::string, at::Tensor>> named;
    for (auto& p : model->named_parameters()) named.emplace_back(p.key(), p.value());
    auto opt = make_data_parallel_optimizer(one_rank(), named, {}, stage, 700, at::kBFloat16, &masters);
    const auto state = state_of(*opt);
    int64_t low_bits = 0;
    for (auto& p : model->named_parameters()) {
      const at::Tensor file = weights.read(p.key(), 0, p.value().numel(), at::kFloat).view(p.value().sizes());
      EXPECT_TRUE(at::equal(state.at("master." + p.key()), file)) << p.key();
      EXPECT_TRUE(at::equal(p.value(), file.to(at::kBFloat16))) << p.key();
      low_bits += file.ne(file.to(at::kBFloat16).to(at::kFloat)).sum().item<int64_t>();
    }
    EXPECT_GT(low_bits, 0) << "the test needs weights that bfloat16 cannot hold exactly";
  }
}
}  // namespace
}  // namespace ropex::test
