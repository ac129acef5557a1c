// The CUDA fast paths behind the plain paths' interfaces, tested equal to the plain paths on the CPU
// (where each op exists there too; on a GPU `ropex device-check parity` and `./run.sh gpu-check`
// compare them again): fused RMSNorm (models/rms_norm.h), fused AdamW (trainer/adamw_fused.h; the
// sharded optimizer's use of it is in test_zero.cpp), the SDPA backend order (models/sdpa_backends.h),
// the allocator's settings (trainer/cuda_allocator.h), one rank running a real backend
// (distributed.collectives_with_one_rank), and the device-check command's stages in their CPU form.
// Each limit is derived beside its check (tests/tolerance.h's rounding model), and the checks that
// loosen bit-equality show with a mutation that they still catch the bug they are for.
#include "models/llama.h"
#include "models/rms_norm.h"
#include "models/sdpa_backends.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"
#include "tests/train_fixture.h"
#include "trainer/adamw_fused.h"
#include "trainer/cuda_allocator.h"
#include "trainer/distributed.h"
#include "trainer/optim.h"

#include <cstdlib>

namespace ropex::test {
namespace {

// |a - b| <= limit x |b| element by element (plus `floor` absolute, for elements that round to 0).
::testing::AssertionResult within_elementwise(const at::Tensor& a, const at::Tensor& b, double limit, double floor) {
  const at::Tensor x = a.detach().to(at::kDouble), y = b.detach().to(at::kDouble);
  const at::Tensor excess = (x - y).abs() - (y.abs() * limit + floor);
  const double worst = excess.max().item<double>();
  if (worst <= 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "an element is off by " << worst << " beyond " << limit << " x |ref| + " << floor;
}

// On the CPU, at::rms_norm under autograd is a composite of the same elementwise operations as the
// reference (its fused kernel is CUDA's), so in float32 this checks the dispatch, the epsilon and the
// weight through the fast path's entry point; the CUDA kernel is compared with the CPU's plain path
// by `ropex device-check parity` (./run.sh gpu-check). The bfloat16 test below, without grad, does
// reach the CPU's own fused kernel.
TEST(FastPaths, FusedRmsNormEqualsTheReferenceInFloat32ForwardAndBackward) {
  const int64_t H = 96, rows = 4 * 37;
  at::manual_seed(3);
  const at::Tensor x0 = at::randn({4, 37, H}), w0 = at::randn({H}), g = at::randn({4, 37, H});
  auto run = [&](NormKernel k, double eps) {
    at::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    at::Tensor y = rms_norm(x, w, eps, k);
    y.backward(g);
    return std::array<at::Tensor, 3>{y.detach(), x.grad(), w.grad()};
  };
  // eps 1e-5 is Llama's rms_norm_eps, a setting under test (not a tolerance); the limits follow.
  const auto ref = run(NormKernel::reference, 1e-5), fused = run(NormKernel::fused, 1e-5);
  // Forward: one reduction over H and about 4 rounded elementwise operations on each side.
  const double fwd = tol::kSafety * tol::kFloat32 * (std::sqrt(double(H)) + 4);
  // Backward: the forward's reductions transposed (2 over H) and, for the weight, a sum over the rows.
  const double bwd = tol::kSafety * tol::kFloat32 * (2 * std::sqrt(double(H)) + std::sqrt(double(rows)) + 8);
  EXPECT_LE(rel_err(fused[0], ref[0]), fwd);
  EXPECT_LE(rel_err(fused[1], ref[1]), bwd);
  EXPECT_LE(rel_err(fused[2], ref[2]), bwd);
  // Mutation: a norm with another epsilon (1e-3: a 5e-4 relative change for unit-variance rows) is
  // far outside these limits, so they would catch an epsilon dropped or misread by the fused path.
  const auto wrong = run(NormKernel::reference, 1e-3);
  EXPECT_GT(rel_err(wrong[0], ref[0]), fwd);
  EXPECT_GT(rel_err(wrong[2], ref[2]), bwd);
}

TEST(FastPaths, FusedRmsNormInBFloat16IsWithinOneRoundingOfTheReference) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({8, 64}).to(at::kBFloat16), w = at::randn({64}).to(at::kBFloat16);
  // (eps 1e-5: Llama's rms_norm_eps, a setting, not a tolerance.)
  const at::Tensor ref = rms_norm(x, w, 1e-5, NormKernel::reference), fused = rms_norm(x, w, 1e-5, NormKernel::fused);
  ASSERT_EQ(fused.scalar_type(), at::kBFloat16);
  // The reference rounds twice (the normalised value, then the product: <= 2u + u^2 from the exact
  // result), the fused kernel once (<= u), both from float32 arithmetic far below u = 2^-8: they
  // differ by at most 3u + u^2 relative to each element; 3.1u.
  const double limit = 3.1 * tol::kBFloat16;
  EXPECT_TRUE(within_elementwise(fused, ref, limit, 0));
  // Not bit-equal in general: the single rounding is the point of the fused kernel. Mutation: the
  // weight applied to the wrong features (reversed) is caught element by element.
  EXPECT_FALSE(within_elementwise(rms_norm(x, w.flip(0), 1e-5, NormKernel::fused), ref, limit, 0));
}

TEST(FastPaths, AutoIsTheReferenceOnTheCpuAndTheModelTakesTheKernel) {
  EXPECT_FALSE(runs_fused(KernelChoice::automatic, at::kCPU));
  EXPECT_TRUE(runs_fused(KernelChoice::automatic, at::Device(at::kCUDA, 0)));
  EXPECT_TRUE(runs_fused(KernelChoice::fused, at::kCPU));
  EXPECT_FALSE(runs_fused(KernelChoice::reference, at::Device(at::kCUDA, 0)));
  EXPECT_EQ(parse_kernel_choice("fused", "norm kernel"), KernelChoice::fused);
  expect_error([] { parse_kernel_choice("fast", "norm kernel"); }, {"norm kernel 'fast'", "auto, reference or fused"});
  LlamaConfig c;
  c.vocab_size = 97, c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 64;
  LlamaForCausalLM m(c);
  m->init_weights(5);
  const at::Tensor ids = at::randint(0, 97, {2, 16}, at::kLong), pos = at::arange(16, at::kLong).repeat({2, 1});
  at::NoGradGuard ng;
  const at::Tensor automatic = m->forward(ids, pos);
  m->set_norm_kernel(NormKernel::reference);
  const at::Tensor reference = m->forward(ids, pos);
  m->set_norm_kernel(NormKernel::fused);
  const at::Tensor fused = m->forward(ids, pos);
  EXPECT_TRUE(at::equal(automatic, reference)) << "auto must keep transformers' bits on the CPU";
  EXPECT_LE(rel_err(fused, reference), tol::llama_forward(c, 16)) << "the model's norms did not all take the kernel";
  // (In float32 the CPU's at::rms_norm happens to give the reference's bits, so the logits cannot
  // tell whether the norms took the kernel: ask the norms.)
  int norms = 0, fused_norms = 0;
  for (auto& mod : m->modules(false))
    if (auto* n = mod->as<LlamaRMSNorm>()) ++norms, fused_norms += n->kernel == NormKernel::fused;
  EXPECT_EQ(norms, 2 * c.num_hidden_layers + 1);
  EXPECT_EQ(fused_norms, norms);
}

// Named float32 parameters of odd shapes, some decayed and some not (norms, biases), with their grads.
// The AdamW options the tests below use (lr 1e-2, betas 0.9/0.95, eps 1e-8, weight decay 0.1) are
// ordinary training settings, the inputs under test; no limit depends on their values except as the
// comments beside the limits say.
struct OptimCase {
  std::vector<std::pair<std::string, at::Tensor>> named;
  explicit OptimCase(at::ScalarType dtype) {
    at::manual_seed(8);
    for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {"a.weight", {7, 13}}, {"a.bias", {7}}, {"b.norm.weight", {13}}, {"c.weight", {5, 3, 2}}})
      named.emplace_back(name, at::randn(shape).to(dtype).requires_grad_(true));
  }
  void grads(int64_t step) {
    at::manual_seed(100 + step);
    // Gradients of widely varying size, down to far below eps = 1e-8 in places.
    for (auto& [n, p] : named) p.mutable_grad() = (at::randn(p.sizes()) * at::pow(10.0, at::randint(-10, 1, p.sizes()))).to(p.scalar_type());
  }
};

TEST(FastPaths, FusedAdamWEqualsTheReferenceStepByStep) {
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    OptimCase a(dtype), b(dtype);
    for (size_t i = 0; i < a.named.size(); ++i) b.named[i].second.detach().copy_(a.named[i].second.detach());
    AdamWOptions o{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .kernel = OptimKernel::reference};
    AdamW ref(a.named, o);
    o.kernel = OptimKernel::fused;
    AdamW fused(b.named, o);
    const int64_t steps = 3;
    for (int64_t s = 0; s < steps; ++s) {
      a.grads(s), b.grads(s);
      ref.step(o.lr);
      fused.step(o.lr);
    }
    // Per step each state element passes through about 8 rounded float32 operations on each side
    // (moments' blends, square root, bias corrections, division, decay, the update): errors of the
    // two orders add over the steps. Limit: kSafety x 8 x steps x u of the largest |value|.
    const double limit = tol::kSafety * 8 * steps * tol::kFloat32;
    const auto sr = ref.state_tensors(), sf = fused.state_tensors();
    for (const auto& [k, v] : sr) EXPECT_LE(rel_err(sf.at(k), v), limit) << k;
    // bfloat16 parameters are their masters rounded: one bfloat16 rounding apart at most.
    for (size_t i = 0; i < a.named.size(); ++i)
      EXPECT_LE(rel_err(b.named[i].second, a.named[i].second), limit + (dtype == at::kFloat ? 0 : tol::kBFloat16))
          << a.named[i].first;
    EXPECT_EQ(fused.steps(), steps);
  }
  // Mutation: the fused update one step count off (bias corrections of step 2 applied at step 1) is
  // far outside the limit.
  OptimCase a(at::kFloat), b(at::kFloat);
  for (size_t i = 0; i < a.named.size(); ++i) b.named[i].second.detach().copy_(a.named[i].second.detach());
  a.grads(0), b.grads(0);
  AdamWOptions o{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .kernel = OptimKernel::reference};
  AdamW ref(a.named, o);
  ref.step(o.lr);
  std::vector<at::Tensor> m, v;
  at::NoGradGuard ng;
  FusedAdamW wrong(o.lr, o, /*step=*/2, nullptr);
  for (auto& [n, p] : b.named) {
    m.push_back(at::zeros_like(p)), v.push_back(at::zeros_like(p));
    wrong.add(p.detach(), m.back(), v.back(), p.grad(), decays(n), 0);
  }
  wrong.flush();
  double worst = 0;
  for (size_t i = 0; i < a.named.size(); ++i) worst = std::max(worst, rel_err(b.named[i].second, a.named[i].second));
  EXPECT_GT(worst, tol::kSafety * 8 * tol::kFloat32) << "a wrong step count went unnoticed";
}

TEST(FastPaths, FusedAdamWLeavesAParameterWithoutAGradientAlone) {
  OptimCase a(at::kBFloat16), b(at::kBFloat16);
  for (size_t i = 0; i < a.named.size(); ++i) b.named[i].second.detach().copy_(a.named[i].second.detach());
  a.grads(0), b.grads(0);
  a.named[1].second.mutable_grad().reset(), b.named[1].second.mutable_grad().reset();  // a.bias: no gradient
  const at::Tensor before = a.named[1].second.detach().clone();
  AdamWOptions o{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .kernel = OptimKernel::reference};
  AdamW ref(a.named, o);
  o.kernel = OptimKernel::fused;
  AdamW fused(b.named, o);
  ref.step(o.lr), fused.step(o.lr);
  EXPECT_TRUE(at::equal(b.named[1].second, before)) << "a parameter without a gradient was updated";
  EXPECT_TRUE(at::equal(fused.state_tensors().at("exp_avg.a.bias"), at::zeros({7})));
  // The others were updated and their bfloat16 parameters refreshed from the masters (as the
  // reference does): within one bfloat16 rounding of the reference's.
  for (size_t i : {0, 2, 3}) {
    EXPECT_FALSE(at::equal(b.named[i].second, OptimCase(at::kBFloat16).named[i].second)) << b.named[i].first;
    EXPECT_LE(rel_err(b.named[i].second, a.named[i].second), tol::kBFloat16 + tol::kSafety * 8 * tol::kFloat32);
  }
}

TEST(FastPaths, FusedAdamWGivesTheSameBitsHoweverItsCallsAreGrouped) {
  // Each element's update is independent of the others, so cutting the list into several calls
  // (bounded cast-up gradients, kFusedCastElements) must not change a bit.
  OptimCase c(at::kBFloat16);
  c.grads(0);
  AdamWOptions o{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  auto run = [&](int64_t limit, int64_t* calls) {
    std::vector<at::Tensor> masters;
    std::vector<at::Tensor> m, v;
    FusedAdamW f(o.lr, o, 1, [&](const std::vector<int64_t>& tags) { ++*calls; }, limit);
    for (auto& [n, p] : c.named) {
      masters.push_back(p.detach().to(at::kFloat));
      m.push_back(at::zeros_like(masters.back())), v.push_back(at::zeros_like(masters.back()));
      f.add(masters.back(), m.back(), v.back(), p.grad(), decays(n), 0);
    }
    f.flush();
    return masters;
  };
  int64_t one = 0, many = 0;
  const auto a = run(kFusedCastElements, &one), b = run(10, &many);
  EXPECT_LE(one, 2);  // one call for the decayed tensors, one for the others
  EXPECT_GT(many, 2);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << c.named[i].first;
}

TEST(FastPaths, SdpaOrderIsParsedSetAndRestored) {
  set_sdpa_order("torch");  // (whatever an earlier test in this process left)
  const std::string torch_order = sdpa_order();
  EXPECT_EQ(parse_sdpa_order("auto"), (std::vector<int64_t>{3, 1, 2, 0, 4}));
  EXPECT_EQ(parse_sdpa_order("flash,math").size(), 5u) << "ATen wants every backend placed";
  expect_error([] { parse_sdpa_order("cudnn,fa3"); }, {"'fa3'", "cudnn, flash, efficient, math"});
  expect_error([] { parse_sdpa_order("flash,flash"); }, {"'flash' named twice"});
  expect_error([] { parse_sdpa_order(""); }, {"empty"});
  set_sdpa_order("auto");
  EXPECT_EQ(sdpa_order(), "cudnn,flash,efficient,math,overrideable");
  set_sdpa_order("efficient,flash");
  EXPECT_EQ(sdpa_order().substr(0, 16), "efficient,flash,");
  set_sdpa_order("torch");
  EXPECT_EQ(sdpa_order(), torch_order);
  // On the CPU, float32 causal attention runs the CPU flash kernel or math; never nothing.
  const std::string choice = sdpa_choice(1, 4, 2, 64, 16, at::kFloat, at::kCPU);
  EXPECT_TRUE(choice == "flash" || choice == "math") << choice;
  {
    OnlySdpaBackend only(0);  // math alone
    EXPECT_EQ(sdpa_choice(1, 4, 2, 64, 16, at::kFloat, at::kCPU), "math");
  }
  EXPECT_EQ(sdpa_choice(1, 4, 2, 64, 16, at::kFloat, at::kCPU), choice) << "the switches were not restored";
}

TEST(FastPaths, ExpandableSegmentsUnlessTheUserChoseOtherwise) {
  const char* keep_new = std::getenv("PYTORCH_ALLOC_CONF");
  const char* keep_old = std::getenv("PYTORCH_CUDA_ALLOC_CONF");
  const std::string saved_new = keep_new ? keep_new : "", saved_old = keep_old ? keep_old : "";
  unsetenv("PYTORCH_ALLOC_CONF");
  unsetenv("PYTORCH_CUDA_ALLOC_CONF");
  EXPECT_EQ(choose_cuda_allocator_settings(), "expandable_segments:True");
  EXPECT_TRUE(expandable_segments_enabled());
  unsetenv("PYTORCH_ALLOC_CONF");
  setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:False", 1);
  EXPECT_EQ(choose_cuda_allocator_settings(), "expandable_segments:False");
  EXPECT_EQ(std::getenv("PYTORCH_ALLOC_CONF"), nullptr) << "the user's older variable must be left to speak alone";
  unsetenv("PYTORCH_CUDA_ALLOC_CONF");
  if (keep_new) setenv("PYTORCH_ALLOC_CONF", saved_new.c_str(), 1);
  if (keep_old) setenv("PYTORCH_CUDA_ALLOC_CONF", saved_old.c_str(), 1);
  // The binary: main() chooses before anything else, and the allocator reads it (device-check env).
  std::string out;
  ASSERT_EQ(run_command("env -u PYTORCH_ALLOC_CONF -u PYTORCH_CUDA_ALLOC_CONF '" + ropex_binary() +
                            "' device-check env --device cpu",
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("\"expandable_segments\":true"), std::string::npos) << out;
  ASSERT_EQ(run_command("PYTORCH_ALLOC_CONF=expandable_segments:False '" + ropex_binary() + "' device-check env --device cpu", &out), 0);
  EXPECT_NE(out.find("\"expandable_segments\":false"), std::string::npos) << out;
}

TEST(FastPaths, OneRankCanRunEveryCollectiveThroughARealBackend) {
  DistEnv env;
  env.collectives_with_one_rank = true;
  Distributed dist(env, "gloo", std::chrono::seconds(30));
  EXPECT_TRUE(dist.has_backend());
  at::Tensor t = at::arange(6, at::kFloat);
  dist.allreduce_sum(t);
  EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat)));
  at::Tensor in = at::arange(4, at::kFloat), out = at::zeros({4});
  dist.allgather(out, in).wait();
  EXPECT_TRUE(at::equal(out, in));
  dist.reduce_scatter_sum(out, in).wait();
  EXPECT_TRUE(at::equal(out, in));
  dist.barrier();
  EXPECT_FALSE(Distributed(DistEnv{}, "gloo", std::chrono::seconds(30)).has_backend());
}

TEST(FastPaths, TrainingThroughAOneRankBackendEqualsTrainingWithout) {
  TinySetup s;
  const std::string plain = (s.dir.path / "plain").string(), backend = (s.dir.path / "backend").string();
  const std::string common = "--set schedule.steps=4 --set checkpoint.every=0 --set export.max_shard_size=0";
  ASSERT_EQ(s.train(plain, common), 0) << s.out_text;
  for (int stage : {0, 1, 2}) {
    const std::string dir = backend + std::to_string(stage);
    ASSERT_EQ(s.train(dir, common + " --set distributed.collectives_with_one_rank=true --set distributed.zero_stage=" +
                               std::to_string(stage)),
              0)
        << s.out_text;
    EXPECT_NE(s.out_text.find("every collective runs through it"), std::string::npos) << s.out_text;
    // One rank's sums are its own gradients: the same run, bit for bit.
    const auto a = weights(plain + "/export"), b = weights(dir + "/export");
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [k, v] : a) EXPECT_TRUE(at::equal(v, b.at(k))) << "stage " << stage << ": " << k;
  }
  EXPECT_NE(s.out_text.find("kernels: SDPA runs flash for [2, 4, 32, 8]"), std::string::npos) << s.out_text;
  ASSERT_NE(s.train((s.dir.path / "bad").string(), "--set model.sdpa_backends=fast"), 0);
  EXPECT_NE(s.out_text.find("model.sdpa_backends"), std::string::npos) << s.out_text;
  EXPECT_NE(s.out_text.find("'fast'"), std::string::npos) << s.out_text;
}

// ‖θ − θ_ref‖ / ‖θ_ref − θ₀‖ over every parameter: how far a run's weights are from the reference
// run's, relative to how far training moved them.
double update_distance(const std::map<std::string, at::Tensor>& run, const std::map<std::string, at::Tensor>& ref,
                       const std::map<std::string, at::Tensor>& start) {
  double num = 0, den = 0;
  for (const auto& [k, v] : ref) {
    num += (run.at(k).to(at::kDouble) - v.to(at::kDouble)).square().sum().item<double>();
    den += (v.to(at::kDouble) - start.at(k).to(at::kDouble)).square().sum().item<double>();
  }
  return std::sqrt(num / den);
}

TEST(FastPaths, TrainingWithTheFusedKernelsFollowsTheReferenceAndAResumeMaySwitchKernels) {
  TinySetup s;
  const std::string common = "--set schedule.steps=4 --set checkpoint.every=2 --set export.max_shard_size=0";
  const std::string fused = " --set model.norm=fused --set optim.kernel=fused";
  const std::string ref_dir = (s.dir.path / "ref").string(), fused_dir = (s.dir.path / "fused").string(),
                    switch_dir = (s.dir.path / "switch").string(), wrong_dir = (s.dir.path / "wrong").string();
  ASSERT_EQ(s.train(ref_dir, common), 0) << s.out_text;
  ASSERT_EQ(s.train(fused_dir, common + fused), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("RMSNorm fused; AdamW fused"), std::string::npos) << s.out_text;
  // Half the run with the reference kernels, resumed with the fused ones: allowed, and logged.
  ASSERT_EQ(s.train(switch_dir, common + " --set run.stop_after=2"), 0) << s.out_text;
  ASSERT_EQ(s.train(switch_dir, common + fused), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("optim.kernel"), std::string::npos) << "the kernel change was not logged: " << s.out_text;
  const auto start = weights(s.model()), ref = weights(ref_dir + "/export");
  // The kernels' updates agree to float32 rounding, about 8 roundings per element per step (see
  // FusedAdamWEqualsTheReferenceStepByStep): kSafety x 8u x 4 steps = 2e-5 relative to the update,
  // amplified little over 4 steps at this learning rate; 1e-4. (On the CPU the fused RMSNorm's
  // composite gives the reference's bits in float32, so the difference here is the optimizer's.)
  const double limit = 1e-4;
  EXPECT_LE(update_distance(weights(fused_dir + "/export"), ref, start), limit);
  EXPECT_LE(update_distance(weights(switch_dir + "/export"), ref, start), limit);
  // Mutation: a learning rate 1% off (a bug of that size in the update) is 100x past the limit.
  ASSERT_EQ(s.train(wrong_dir, common + fused + " --set optim.lr=3.03e-3"), 0) << s.out_text;
  EXPECT_GT(update_distance(weights(wrong_dir + "/export"), ref, start), 10 * limit);
}

TEST(FastPaths, DeviceCheckStagesRunOnTheCpu) {
  std::string out;
  ASSERT_EQ(run_command("'" + ropex_binary() + "' device-check parity --device cpu", &out), 0) << out;
  const auto parity = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_TRUE(parity["pass"].get<bool>()) << out;
  EXPECT_LE(parity["grad_rel_max"].get<double>(), 1e-4);
  ASSERT_EQ(run_command("'" + ropex_binary() + "' device-check sdpa --device cpu --repeats 1", &out), 0) << out;
  const auto sdpa = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_TRUE(sdpa["pass"].get<bool>()) << out;
  EXPECT_EQ(sdpa["shapes"].size(), 2u);
  EXPECT_FALSE(sdpa["shapes"][0]["ms"]["math"].is_null()) << "math runs everywhere: it must have been timed";
  EXPECT_NE(run_command("'" + ropex_binary() + "' device-check nothing --device cpu", &out), 0);
  EXPECT_NE(out.find("env, parity, logits or sdpa"), std::string::npos) << out;
}

}  // namespace
}  // namespace ropex::test
