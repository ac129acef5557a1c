// GPU-check stages in C++. See device_check.h.
#include "trainer/device_check.h"

#include "models/attention.h"
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "models/safetensors.h"
#include "models/sdpa_backends.h"
#include "trainer/cuda_allocator.h"
#include "trainer/device.h"
#include "trainer/distributed.h"
#include "trainer/optim.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAContext.h>
#define ROPEX_DEVICE_CHECK_CUDA 1
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ropex {
namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ||a - b||_F / ||b||_F in float64 on the CPU; infinity when either holds a non-finite value.
double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.detach().to(at::kCPU, at::kDouble), y = b.detach().to(at::kCPU, at::kDouble);
  if (!at::isfinite(x).all().item<bool>() || !at::isfinite(y).all().item<bool>())
    return std::numeric_limits<double>::infinity();
  const double den = y.norm().item<double>();
  const double num = (x - y).norm().item<double>();
  return den > 0 ? num / den : num;
}

// JSON has no infinity: a non-finite error is written as null (and fails its check).
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// Plain float32 everywhere: no TF32 in cuBLAS or cuDNN matmuls and convolutions.
void float32_highest() {
  auto& c = at::globalContext();
  c.setFloat32MatmulPrecision("highest");
  c.setAllowTF32CuBLAS(false);
  c.setAllowTF32CuDNN(false);
}

LlamaConfig parity_config() {
  LlamaConfig c;
  c.vocab_size = 512, c.hidden_size = 128, c.intermediate_size = 352, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 256;
  c.rms_norm_eps = 1e-5, c.tie_word_embeddings = false;
  return c;
}

}  // namespace

nlohmann::json device_check_env(const at::Device& device) {
  nlohmann::json j = {{"torch", TORCH_VERSION},
                      {"device", device.str()},
#ifdef ROPEX_DEVICE_CHECK_CUDA  // compiled against a LibTorch with CUDA (its headers were there)
                      {"built_with_cuda", true},
#else
                      {"built_with_cuda", false},
#endif
                      {"cuda_available", torch::cuda::is_available()},
                      {"device_count", torch::cuda::is_available() ? torch::cuda::device_count() : 0},
                      {"nccl_built", nccl_built()},
                      {"threads", at::get_num_threads()},
                      {"allocator_settings", cuda_allocator_settings()},
                      {"expandable_segments", expandable_segments_enabled()}};
  set_sdpa_order("auto");
  j["sdpa_order"] = sdpa_order();
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) throw std::runtime_error("device-check env: CUDA is not available to this binary");
    j["cudnn"] = at::detail::getCUDAHooks().hasCuDNN() ? nlohmann::json(at::detail::getCUDAHooks().versionCuDNN())
                                                       : nlohmann::json(nullptr);
#ifdef ROPEX_DEVICE_CHECK_CUDA
    const auto* p = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index());
    j["name"] = p->name;
    j["capability"] = std::to_string(p->major) + "." + std::to_string(p->minor);
    j["memory_gib"] = static_cast<double>(p->totalGlobalMem) / (1 << 30);
    j["multiprocessors"] = p->multiProcessorCount;
#endif
  }
  return j;
}

nlohmann::json device_check_parity(const at::Device& device, uint64_t seed) {
  float32_highest();
  const LlamaConfig cfg = parity_config();
  const int64_t B = 2, T = 128;
  LlamaForCausalLM ref(cfg, at::TensorOptions().dtype(at::kFloat));
  ref->init_weights(seed);
  ref->set_norm_kernel(NormKernel::reference);
  LlamaForCausalLM dev(cfg, at::TensorOptions().dtype(at::kFloat).device(device));
  {
    at::NoGradGuard ng;
    auto src = ref->named_parameters();
    for (auto& p : dev->named_parameters()) p.value().copy_(src[p.key()]);
  }
  dev->set_norm_kernel(NormKernel::fused);
  set_sdpa_order("auto");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
  const at::Tensor ids = at::randint(0, cfg.vocab_size, {B, T}, gen, at::kLong);
  const at::Tensor pos = at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();

  ForwardOptions plain;
  plain.attention = AttentionBackend::reference;
  plain.loss_chunk_tokens = 0;  // the full logits: the loss's reference path
  ForwardOptions fast;
  fast.attention = AttentionBackend::sdpa;
  fast.loss_chunk_tokens = 64;  // chunked, as training runs it
  const at::Tensor loss_ref = lm_loss(ref, ids, pos, ids, plain).mean;
  loss_ref.backward();
  const at::Tensor ids_d = ids.to(device), pos_d = pos.to(device);
  const at::Tensor loss_dev = lm_loss(dev, ids_d, pos_d, ids_d, fast).mean;
  loss_dev.backward();

  // Tolerances (float32, TF32 off). Both sides compute the same function with different summation
  // orders (matmul blocking, flash attention's online softmax against the explicit one, chunked loss):
  // each reduction of n <= 512 terms carries a relative error of order sqrt(n) x 2^-24 ~ 1e-6, and a
  // two-layer backward compounds a few of them. 1e-5 (loss) and 1e-4 (each gradient, Frobenius
  // relative) leave a margin of 10-100x over that and stay far below what a wrong kernel gives
  // (a dropped term or a wrong scale moves them by 1e-3 or more).
  const double loss_tol = 1e-5, grad_tol = 1e-4;
  nlohmann::json out = {{"device", device.str()}, {"shape", {{"batch", B}, {"seq", T}, {"hidden", cfg.hidden_size},
                                                            {"layers", cfg.num_hidden_layers}, {"vocab", cfg.vocab_size}}}};
  const double loss_rel = std::abs(loss_dev.item<double>() - loss_ref.item<double>()) / std::abs(loss_ref.item<double>());
  out["loss_ref"] = loss_ref.item<double>();
  out["loss_dev"] = loss_dev.item<double>();
  out["loss_rel"] = number(loss_rel);
  double grad_worst = 0;
  std::string grad_worst_name;
  auto dev_params = dev->named_parameters();
  for (const auto& p : ref->named_parameters()) {
    const at::Tensor& gd = dev_params[p.key()].grad();
    const double e = gd.defined() && p.value().grad().defined() ? rel_err(gd, p.value().grad())
                                                                : std::numeric_limits<double>::infinity();
    if (!(e <= grad_worst)) grad_worst = e, grad_worst_name = p.key();
  }
  out["grad_rel_max"] = number(grad_worst);
  out["grad_worst"] = grad_worst_name;

  // One AdamW update from the same gradients (the reference's, copied to the device), so that the
  // comparison sees the optimizer kernels alone: reference on the CPU, fused on the device. At step 1
  // the update is -lr x g / (|g| + eps) plus decay, a few float32 operations per element, which the
  // two kernels round differently: element by element the updates may differ by 1e-5 of themselves
  // (kSafety x ~8 roundings of 2^-24 is 5e-6) plus the rounding of the new weight on each side, one
  // ulp of |w| at most (2^-23 |w|; 2^-22 |w| allowed). The latter is not small against an update of
  // lr = 1e-3 on weights near 1 (the norms), hence an elementwise check; the Frobenius relative error
  // of the updates is reported beside it.
  {
    at::NoGradGuard ng;
    for (auto& p : dev->named_parameters()) p.value().mutable_grad().copy_(ref->named_parameters()[p.key()].grad());
  }
  auto named = [](LlamaForCausalLM& m) {
    std::vector<std::pair<std::string, at::Tensor>> v;
    for (auto& p : m->named_parameters()) v.emplace_back(p.key(), p.value());
    return v;
  };
  std::map<std::string, at::Tensor> before;
  for (auto& p : ref->named_parameters()) before[p.key()] = p.value().detach().clone();
  AdamWOptions o{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .kernel = OptimKernel::reference};
  AdamW opt_ref(named(ref), o);
  o.kernel = OptimKernel::fused;
  AdamW opt_dev(named(dev), o);
  opt_ref.step(o.lr);
  opt_dev.step(o.lr);
  double step_worst = 0, step_excess = 0;
  std::string step_worst_name;
  for (auto& p : ref->named_parameters()) {
    const at::Tensor w0 = before[p.key()].to(at::kDouble);
    const at::Tensor delta_ref = p.value().detach().to(at::kDouble) - w0;
    const at::Tensor delta_dev = dev_params[p.key()].detach().to(at::kCPU, at::kDouble) - w0;
    const double e = rel_err(delta_dev, delta_ref);
    if (!(e <= step_worst)) step_worst = e, step_worst_name = p.key();
    const at::Tensor allowed = w0.abs() * 0x1p-22 + delta_ref.abs() * 1e-5;
    const double excess = ((delta_dev - delta_ref).abs() - allowed).max().item<double>();
    if (!(excess <= step_excess)) step_excess = std::isnan(excess) ? std::numeric_limits<double>::infinity() : excess;
  }
  out["param_rel_max"] = number(step_worst);
  out["param_worst"] = step_worst_name;
  out["step_excess"] = number(step_excess);  // > 0: an element outside its allowance (above)
  out["tolerances"] = {{"loss_rel", loss_tol}, {"grad_rel", grad_tol}, {"step_per_element", "1e-5 |update| + 2^-22 |w|"}};
  // Which SDPA backend ran the float32 attention (no flash or cuDNN in float32 on CUDA): if it were
  // one that rounds to TF32 inside, the gradients would show it, and this says where to look.
  out["attention_backend"] = sdpa_choice(B, cfg.num_attention_heads, cfg.num_key_value_heads, T, cfg.resolved_head_dim(),
                                         at::kFloat, device);
  out["kernels"] = {{"reference", "CPU: reference attention, reference RMSNorm, reference AdamW, full-logits loss"},
                    {"device", device.str() + ": SDPA (" + sdpa_order() + "), fused RMSNorm, fused AdamW, chunked loss"}};
  out["pass"] = loss_rel <= loss_tol && grad_worst <= grad_tol && step_excess <= 0;
  return out;
}

nlohmann::json device_check_logits(const std::string& model_dir, const std::string& input, const std::string& output,
                                   const at::Device& device, at::ScalarType dtype) {
  set_sdpa_order("auto");
  LlamaForCausalLM model = load_pretrained(model_dir, {.dtype = dtype, .device = device});
  model->eval();
  const st::SafetensorsFile in(input);
  const st::TensorInfo& info = in.at("input_ids");
  const at::Tensor ids = tensor_from_st(info, in.data(info), input + ": input_ids").to(at::kLong);
  if (ids.dim() != 2) throw std::runtime_error(input + ": input_ids must be [batch, seq], got " + c10::str(ids.sizes()));
  const at::Tensor ids_d = ids.to(device);
  const at::Tensor pos = at::arange(ids.size(1), ids_d.options()).unsqueeze(0).expand(ids.sizes()).contiguous();
  at::NoGradGuard ng;
  ForwardOptions fo;  // SDPA, the model's default RMSNorm kernel (fused on CUDA)
  const at::Tensor logits = model->forward(ids_d, pos, fo).to(at::kCPU, at::kFloat).contiguous();
  // The loss as training computes it (chunked), in float32.
  const at::Tensor loss = lm_loss(model, ids_d, pos, ids_d, fo).mean.to(at::kCPU, at::kFloat).contiguous();
  st::write_file(output, {{"logits", st::DType::F32, std::vector<int64_t>(logits.sizes().begin(), logits.sizes().end()),
                           logits.data_ptr()},
                          {"loss", st::DType::F32, {}, loss.data_ptr()}});
  return {{"model", model_dir}, {"device", device.str()}, {"dtype", dtype_name(dtype)}, {"loss", loss.item<double>()},
          {"norm", runs_fused(NormKernel::automatic, device) ? "fused" : "reference"}, {"sdpa_order", sdpa_order()},
          {"output", output}};
}

nlohmann::json device_check_sdpa(const at::Device& device, int64_t repeats) {
  struct Shape {
    const char* name;
    int64_t batch, heads, kv_heads, seq, head_dim;
  };
  // The attention of the shapes the bench trains on a GPU (TinyLlama-1.1B, Llama-2-7B at 4K), and
  // two small ones on the CPU.
  const std::vector<Shape> shapes =
      device.is_cuda() ? std::vector<Shape>{{"tinyllama-1.1b", 1, 32, 4, 4096, 64}, {"llama2-7b", 1, 32, 32, 4096, 128}}
                       : std::vector<Shape>{{"debug", 1, 4, 2, 256, 16}, {"small", 1, 8, 4, 256, 32}};
  const at::ScalarType dtype = device.is_cuda() ? at::kBFloat16 : at::kFloat;
  // Errors of each backend against the reference attention computed in float32 (with autograd) from
  // the same rounded inputs, output and the three input gradients. bfloat16: the output carries a
  // rounding of 2^-9 relative and the backends accumulate in float32 (METHOD: 1e-3 to 1e-2 for bf16
  // operands), 2e-2; the gradients pass through one more bf16 product chain (dS = P o (dP - D) with
  // dP rounded), 5e-2. Both are far below a wrong mask, scale or GQA mapping (order 1). float32:
  // reductions over <= 256 keys, 1e-4 for all.
  const double tol = dtype == at::kBFloat16 ? 2e-2 : 1e-4, grad_tol = dtype == at::kBFloat16 ? 5e-2 : 1e-4;
  set_sdpa_order("auto");
  nlohmann::json out = {{"device", device.str()}, {"dtype", dtype_name(dtype)}, {"order", sdpa_order()},
                        {"tolerance", tol}, {"grad_tolerance", grad_tol}, {"shapes", nlohmann::json::array()}};
  bool pass = true;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
  for (const Shape& s : shapes) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    auto make = [&](int64_t heads) {
      return at::randn({s.batch, s.seq, heads, s.head_dim}, gen, at::kFloat).to(device, dtype).transpose(1, 2).detach();
    };
    const at::Tensor q = make(s.heads), k = make(s.kv_heads), v = make(s.kv_heads);
    // The output's gradient laid out as training hands it back ([B, T, H, D] viewed as [B, H, T, D]).
    const at::Tensor grad = at::randn({s.batch, s.seq, s.heads, s.head_dim}, gen, at::kFloat).to(device, dtype).transpose(1, 2);
    // One forward + backward through models/attention.h; returns the output and dq, dk, dv.
    auto run = [&](AttentionBackend backend, at::ScalarType as) {
      // Fresh leaves every time (a copy even in the same dtype): gradients must not accumulate
      // into one tensor across the reference and the backends.
      auto fresh = [&](const at::Tensor& t) { return t.to(as, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true); };
      const at::Tensor qg = fresh(q), kg = fresh(k), vg = fresh(v);
      at::Tensor o = causal_attention(qg, kg, vg, scale, backend);
      o.backward(grad.to(as));
      return std::array<at::Tensor, 4>{o.detach(), qg.grad(), kg.grad(), vg.grad()};
    };
    const auto ref = run(AttentionBackend::reference, at::kFloat);
    // The backends' checks differ for inputs that need a backward: ask with leaves that do.
    auto leaf = [](const at::Tensor& t) { return t.detach().requires_grad_(true); };
    nlohmann::json row = {{"name", s.name}, {"q", {s.batch, s.heads, s.seq, s.head_dim}}, {"kv_heads", s.kv_heads},
                          {"choice", sdpa_choice(leaf(q), leaf(k), leaf(v))},
                          {"ms", nlohmann::json::object()}, {"err", nlohmann::json::object()},
                          {"grad_err", nlohmann::json::object()}, {"errors", nlohmann::json::object()}};
    for (const char* name : {"cudnn", "flash", "efficient", "math"}) {
      row["ms"][name] = nullptr, row["err"][name] = nullptr, row["grad_err"][name] = nullptr;
      OnlySdpaBackend only(parse_sdpa_order(name).front());
      std::string runs;
      try {
        runs = sdpa_choice(leaf(q), leaf(k), leaf(v));
      } catch (const c10::Error&) {  // ATen throws when no enabled backend can run the inputs
        runs = "none";
      }
      if (runs != name) continue;  // this backend cannot run these inputs here
      // A backend that accepts the inputs but fails while running is recorded, not fatal: the
      // others are still measured, and the stage fails only if it is the one ropex would pick.
      try {
        const auto got = run(AttentionBackend::sdpa, dtype);
        const double err = rel_err(got[0], ref[0]);
        double gerr = 0;
        for (int i = 1; i < 4; ++i) gerr = std::max(gerr, rel_err(got[i], ref[i]));  // (infinite when not finite)
        row["err"][name] = number(err);
        row["grad_err"][name] = number(gerr);
        if (!(err <= tol) || !(gerr <= grad_tol)) pass = false;
        std::vector<double> times;
        for (int64_t i = 0; i <= repeats; ++i) {  // the first pass is a warm-up
          synchronize(device);
          const double t = now_ms();
          run(AttentionBackend::sdpa, dtype);
          synchronize(device);
          if (i > 0) times.push_back(now_ms() - t);
        }
        std::sort(times.begin(), times.end());
        row["ms"][name] = times[times.size() / 2];
      } catch (const c10::Error& e) {
        row["errors"][name] = e.what_without_backtrace();
        if (row["choice"] == name) pass = false;
      }
    }
    const std::string choice = row["choice"];
    // On CUDA a fused backend must run the trained shapes; the math fallback would be a silent
    // several-fold slowdown. The CPU has flash (float32) and math.
    if (device.is_cuda() && choice == "math") pass = false;
    out["shapes"].push_back(row);
  }
  out["pass"] = pass;
  return out;
}

}  // namespace ropex
