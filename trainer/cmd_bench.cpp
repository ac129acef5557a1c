// ropex bench: times ropex's training step (the step trainer/train.cpp runs, through the same
// DataParallelOptimizer on one rank: forward, token-mean causal LM loss, backward, gradient
// reduction hooks, global-norm clipping, AdamW with float32 masters, zero_grad) on random
// data for a model shape, and prints the fields bench/baseline_hf.py prints for transformers, so
// bench/compare.py can put them side by side: tokens/s, step time and its breakdown, peak GPU
// memory, model FLOPs per token and MFU (formula in bench/FLOPS.md). Also the peak of live tensor
// bytes (the CUDA allocator's, or on the CPU trainer/cpu_tensor_count.h's) beside `ropex plan`.
#include "models/llama.h"
#include "models/lm_loss.h"
#include "models/sdpa_backends.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/cpu_tensor_count.h"
#include "trainer/device.h"
#include "trainer/log.h"
#include "trainer/plan.h"
#include "trainer/distributed.h"
#include "trainer/zero.h"

#include <ATen/ops/randint.h>
#include <c10/core/GradMode.h>
#include <torch/cuda.h>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#define ROPEX_BENCH_CUDA 1
#endif

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

namespace ropex {
namespace {

LlamaConfig shape_config(const std::string& shape) {
  LlamaConfig c;
  c.rms_norm_eps = 1e-5;
  c.max_position_embeddings = 4096;
  c.tie_word_embeddings = false;
  if (shape == "debug") {  // configs/debug_tiny.json's model
    c.vocab_size = 500, c.hidden_size = 64, c.intermediate_size = 128, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2;
  } else if (shape == "tinyllama-1.1b") {
    c.vocab_size = 32000, c.hidden_size = 2048, c.intermediate_size = 5632, c.num_hidden_layers = 22;
    c.num_attention_heads = 32, c.num_key_value_heads = 4;
  } else if (shape == "llama2-7b") {
    c.vocab_size = 32000, c.hidden_size = 4096, c.intermediate_size = 11008, c.num_hidden_layers = 32;
    c.num_attention_heads = 32, c.num_key_value_heads = 32;
  } else {
    throw UsageError("bench: --shape must be debug, tinyllama-1.1b or llama2-7b (or give --config), got '" + shape + "'");
  }
  return c;
}

// Parameters inside matmuls (every linear, lm_head included; the embedding lookup is not a matmul).
int64_t matmul_params(const LlamaConfig& c) {
  const int64_t d = c.hidden_size, hd = c.resolved_head_dim();
  const int64_t attn = d * c.num_attention_heads * hd * 2 + d * c.num_key_value_heads * hd * 2;
  const int64_t mlp = 3 * d * c.intermediate_size;
  return c.num_hidden_layers * (attn + mlp) + c.vocab_size * d;
}

double peak_tflops(const std::string& gpu, at::ScalarType dtype) {
  if (dtype != at::kBFloat16) return 0;
  if (gpu.find("H100 PCIe") != std::string::npos) return 756;
  if (gpu.find("H100") != std::string::npos || gpu.find("H200") != std::string::npos) return 989;
  return 0;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int cmd_bench(const Args& argv) {
  ArgParser args("bench",
                 "Times ropex's training step on random tokens (forward, loss, backward, clipping, AdamW with\n"
                 "float32 masters) and prints tokens/s, step time with a forward/backward/optimizer breakdown,\n"
                 "peak GPU memory and MFU; --json prints one line in bench/baseline_hf.py's format.");
  args.option("shape", "NAME", "debug | tinyllama-1.1b | llama2-7b", "debug")
      .option("config", "FILE", "a config.json to use instead of --shape")
      .option("layers", "N", "keep only the first N decoder layers (0 = all)", "0")
      .option("seq", "N", "sequence length", "4096")
      .option("batch", "N", "sequences per step", "1")
      .option("dtype", "bfloat16|float32", "compute dtype (bf16: float32 master weights in the optimizer)", "bfloat16")
      .option("device", "cpu|cuda", "where to run", "cuda")
      .option("attention", "sdpa|reference", "attention implementation", "sdpa")
      .option("sdpa-backends", "ORDER", "SDPA backend order: auto (cudnn,flash,efficient,math), torch, or a list", "auto")
      .option("norm", "auto|reference|fused", "RMSNorm kernel (auto: fused on CUDA)", "auto")
      .option("optim-kernel", "auto|reference|fused", "AdamW kernel (auto: fused on CUDA)", "auto")
      .option("warmup", "N", "untimed steps first", "3")
      .option("steps", "N", "timed steps", "10")
      .option("breakdown-steps", "N", "extra steps timed phase by phase (synchronising between phases)", "3")
      .option("peak-tflops", "X", "peak dense TFLOP/s for MFU (default: H100/H200 bf16 989, H100 PCIe 756)")
      .option("out", "FILE", "append the JSON line to FILE")
      .option("loss-chunk", "N", "tokens per chunk of the lm_head + loss (0 = the full logits at once)",
              std::to_string(kDefaultLossChunkTokens))
      .option("ckpt-every", "K", "activation checkpointing of decoder layers 0, K, 2K, ... (0 = off unless --ckpt)", "0")
      .flag("ckpt", "activation checkpointing of every decoder layer (--ckpt-every 1)")
      .flag("json", "print one JSON line");
  args.parse(argv);
  double peak_override = 0;  // checked before any work
  if (args.has("peak-tflops")) {
    const std::string text = args.get("peak-tflops");
    size_t used = 0;
    try {
      peak_override = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || !(peak_override > 0))
      throw UsageError("bench: --peak-tflops expects a positive number, got '" + text + "'");
  }
  LlamaConfig cfg = args.has("config") ? load_config(args.get("config")) : shape_config(args.get("shape"));
  if (const int64_t l = args.get_int("layers"); l > 0) cfg.num_hidden_layers = std::min(cfg.num_hidden_layers, l);
  const int64_t T = args.get_int("seq"), B = args.get_int("batch");
  const int64_t warmup = args.get_int("warmup"), steps = args.get_int("steps"), bsteps = args.get_int("breakdown-steps");
  if (T < 2 || B < 1 || steps < 1 || warmup < 0 || bsteps < 0)
    throw UsageError("bench: --seq must be >= 2, --batch and --steps >= 1, --warmup and --breakdown-steps >= 0");
  cfg.max_position_embeddings = std::max(cfg.max_position_embeddings, T);
  const at::Device dev = parse_device(args.get("device"));
  const at::ScalarType dtype = parse_dtype_name(args.get("dtype"));
  NormKernel norm;
  OptimKernel optim_kernel;
  try {
    norm = parse_kernel_choice(args.get("norm"), "--norm");
    optim_kernel = parse_kernel_choice(args.get("optim-kernel"), "--optim-kernel");
    set_sdpa_order(args.get("sdpa-backends"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("bench: ") + e.what());
  }
  const int64_t ckpt_every_arg = args.get_int("ckpt-every"), loss_chunk = args.get_int("loss-chunk");
  if (ckpt_every_arg < 0 || loss_chunk < 0)
    throw UsageError("bench: --ckpt-every and --loss-chunk must be >= 0, got " + std::to_string(ckpt_every_arg) + " and " +
                     std::to_string(loss_chunk));
  if (ckpt_every_arg > 0 && args.flag_set("ckpt"))
    throw UsageError("bench: give --ckpt (every layer) or --ckpt-every K, not both");
  const int64_t ckpt_every = ckpt_every_arg > 0 ? ckpt_every_arg : (args.flag_set("ckpt") ? 1 : 0);
  const bool ckpt = ckpt_every > 0;

  // A --config shape is named by its file's stem, as bench/baseline_hf.py names it.
  const std::string shape_name = args.has("config") ? std::filesystem::path(args.get("config")).stem().string() : args.get("shape");
  nlohmann::json res = {{"impl", "ropex"}, {"shape", shape_name},
                        {"seq", T}, {"batch", B}, {"dtype", dtype_name(dtype)}, {"device", dev.is_cuda() ? "cuda" : "cpu"},
                        {"ckpt", ckpt}, {"ckpt_every", ckpt_every}, {"loss_chunk", loss_chunk}, {"steps", steps}, {"optimizer", "ropex AdamW, float32 masters and moments"},
                        {"torch", TORCH_VERSION}, {"tokens_per_step", B * T}};
  std::string gpu;
#ifdef ROPEX_BENCH_CUDA
  if (dev.is_cuda()) gpu = at::cuda::getDeviceProperties(dev.index() < 0 ? 0 : dev.index())->name;
#endif
  res["gpu"] = gpu.empty() ? nlohmann::json(nullptr) : nlohmann::json(gpu);
  // On the CPU the tensors' peak is counted by an allocator in front of LibTorch's (the CUDA
  // allocator keeps its own); from here on, so the model and optimizer states are in it.
  if (!dev.is_cuda()) install_cpu_tensor_count();
  try {
    LlamaForCausalLM model(cfg, at::TensorOptions().device(dev).dtype(dtype));
    at::manual_seed(0);
    if (dev.is_cuda()) model->init_weights_in_place();  // drawn on the GPU: seconds, not minutes, at 7B
    else model->init_weights(0);
    model->set_norm_kernel(norm);
    model->train();
    std::vector<std::pair<std::string, at::Tensor>> named;
    int64_t n_params = 0;
    for (auto& p : model->named_parameters()) {
      named.emplace_back(p.key(), p.value());
      n_params += p.value().numel();
    }
    Distributed one_rank(DistEnv{}, dev.is_cuda() ? "nccl" : "gloo", std::chrono::seconds(60));  // world 1: no collectives
    const std::unique_ptr<DataParallelOptimizer> opt = make_data_parallel_optimizer(
        one_rank, named, {.lr = 1e-5, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.0, .kernel = optim_kernel},
        /*zero_stage=*/0,
        int64_t{25} << 20, dtype);
    opt->attach();
    res["params"] = n_params;
    res["kernels"] = {{"norm", runs_fused(norm, dev) ? "fused" : "reference"},
                      {"optimizer", runs_fused(optim_kernel, dev) ? "fused" : "reference"},
                      {"attention", args.get("attention")}, {"sdpa_order", sdpa_order()},
                      {"sdpa_choice", sdpa_choice(B, cfg.num_attention_heads, cfg.num_key_value_heads, T,
                                                  cfg.resolved_head_dim(), dtype, dev)}};
    ForwardOptions fo;
    fo.attention = parse_attention_backend(args.get("attention"));
    fo.checkpoint_every = ckpt_every;
    fo.loss_chunk_tokens = loss_chunk;
    const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);
    at::Tensor ids = at::randint(0, cfg.vocab_size, {B, T}, lopt);
    at::Tensor pos = at::arange(T, lopt).unsqueeze(0).expand({B, T});
#ifdef ROPEX_BENCH_CUDA
    if (dev.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index() < 0 ? 0 : dev.index());
#endif
    if (!dev.is_cuda()) reset_cpu_tensor_peak();
    at::Tensor last_loss;
    auto step = [&](double* f, double* b, double* o) {
      double t = f ? (synchronize(dev), now_s()) : 0;
      LossResult l = lm_loss(model, ids, pos, ids, fo);
      if (f) { synchronize(dev); *f += now_s() - t; t = now_s(); }
      opt->arm();
      l.mean.backward();
      opt->finish();
      if (b) { synchronize(dev); *b += now_s() - t; t = now_s(); }
      opt->clip_grad_norm(1.0);
      opt->step(1e-5);
      opt->zero_grad();
      if (o) { synchronize(dev); *o += now_s() - t; }
      last_loss = l.mean.detach();
    };
    const double t_first = now_s();
    for (int64_t i = 0; i < warmup; ++i) step(nullptr, nullptr, nullptr);
    synchronize(dev);
    res["first_steps_s"] = now_s() - t_first;
    std::vector<double> times;
    for (int64_t i = 0; i < steps; ++i) {  // each step timed to the device's end (one sync per step)
      const double t = now_s();
      step(nullptr, nullptr, nullptr);
      synchronize(dev);
      times.push_back(now_s() - t);
    }
    double f = 0, b = 0, o = 0;
    for (int64_t i = 0; i < bsteps; ++i) step(&f, &b, &o);
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    double total = 0;
    for (double t : times) total += t;
    const double step_s = total / static_cast<double>(steps);
    const double fpt = 6.0 * static_cast<double>(matmul_params(cfg)) +
                       6.0 * static_cast<double>(cfg.num_hidden_layers * T * cfg.num_attention_heads * cfg.resolved_head_dim());
    const double tok_s = static_cast<double>(B * T) / step_s;
    const double peak = peak_override > 0 ? peak_override : peak_tflops(gpu, dtype);
    res["tokens_per_s"] = tok_s;
    res["step_ms"] = 1e3 * step_s;
    res["step_ms_median"] = 1e3 * sorted[sorted.size() / 2];
    res["step_ms_min"] = 1e3 * sorted.front();
    res["step_ms_max"] = 1e3 * sorted.back();
    if (bsteps > 0) {
      res["fwd_ms"] = 1e3 * f / static_cast<double>(bsteps);
      res["bwd_ms"] = 1e3 * b / static_cast<double>(bsteps);
      res["opt_ms"] = 1e3 * o / static_cast<double>(bsteps);
    }
    res["flops_per_token"] = fpt;
    res["tflops"] = tok_s * fpt / 1e12;
    res["peak_tflops"] = peak > 0 ? nlohmann::json(peak) : nlohmann::json(nullptr);
    res["mfu"] = peak > 0 ? nlohmann::json(tok_s * fpt / (peak * 1e12)) : nlohmann::json(nullptr);
    res["loss"] = last_loss.item<double>();
    res["peak_mem_gib"] = nullptr;
    res["tensor_peak_bytes"] = nullptr;
    if (!dev.is_cuda()) res["tensor_peak_bytes"] = cpu_tensor_bytes_peak();
    // What `ropex plan` says of this step (one rank, ZeRO-0), beside the measured peak: without the
    // allowance against the allocator's peak (CUDA), with it against a process's RSS (the CPU).
    const Plan plan = make_plan(cfg, {.seq = T, .micro_batch = B, .checkpoint_every = ckpt_every, .loss_chunk_tokens = loss_chunk,
                                      .cuda = dev.is_cuda(), .dtype_bytes = static_cast<int64_t>(c10::elementSize(dtype))});
    res["plan_gib"] = static_cast<double>(plan.per_rank.total) / (1 << 30);
    res["plan_without_allowance_gib"] = static_cast<double>(plan.per_rank.total - plan.per_rank.allowance) / (1 << 30);
#ifdef ROPEX_BENCH_CUDA
    if (dev.is_cuda()) {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index() < 0 ? 0 : dev.index());
      res["peak_mem_gib"] = static_cast<double>(stats.allocated_bytes[0].peak) / (1 << 30);
      res["tensor_peak_bytes"] = stats.allocated_bytes[0].peak;
    }
#endif
  } catch (const c10::OutOfMemoryError&) {
    res["error"] = "out of memory";
  }
  const std::string line = res.dump();
  if (args.has("out")) std::ofstream(args.get("out"), std::ios::app) << line << "\n";
  if (args.flag_set("json")) {
    std::cout << line << std::endl;
  } else if (res.contains("error")) {
    std::cout << "ropex bench: " << res["error"].get<std::string>() << "\n";
  } else {
    std::cout << "ropex " << res["shape"].get<std::string>() << " seq " << T << " batch " << B << " " << dtype_name(dtype)
              << (ckpt ? " ckpt" : "") << ": " << static_cast<int64_t>(res["tokens_per_s"].get<double>()) << " tok/s, step "
              << res["step_ms"].get<double>() << " ms (fwd " << res.value("fwd_ms", 0.0) << " / bwd " << res.value("bwd_ms", 0.0)
              << " / opt " << res.value("opt_ms", 0.0) << ")"
              << (res["mfu"].is_null() ? "" : ", MFU " + std::to_string(res["mfu"].get<double>()))
              << (res["peak_mem_gib"].is_null() ? "" : ", peak " + std::to_string(res["peak_mem_gib"].get<double>()) + " GiB")
              << "\n";
  }
  return res.contains("error") ? 1 : 0;
}

}  // namespace ropex
