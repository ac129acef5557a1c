// The memory and FLOP arithmetic of a training run. See plan.h; bench/MEMORY.md writes out each term.
#include "trainer/plan.h"

#include "models/llama.h"
#include "models/safetensors.h"
#include "trainer/shard_layout.h"
#include "trainer/device.h"

#include <torch/cuda.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace ropex {
namespace {
constexpr int64_t kGiB = int64_t{1} << 30;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string gib(int64_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << static_cast<double>(bytes) / static_cast<double>(kGiB) << " GiB";
  return os.str();
}

// The shape's sizes, named as in bench/MEMORY.md.
struct Shape {
  int64_t B, T, BT, h, I, V, L, nq, dh, dq, dkv, s;
  explicit Shape(const LlamaConfig& c, const PlanInputs& in)
      : B(in.micro_batch), T(in.seq), BT(in.micro_batch * in.seq), h(c.hidden_size), I(c.intermediate_size),
        V(c.vocab_size), L(c.num_hidden_layers), nq(c.num_attention_heads), dh(c.resolved_head_dim()),
        dq(c.num_attention_heads * c.resolved_head_dim()), dkv(c.num_key_value_heads * c.resolved_head_dim()),
        s(in.dtype_bytes) {}
  // One RMSNorm's saved set: its input in float32 (4), the normalised value and the output in the
  // compute dtype (2s; one tensor when that is float32 too: then 4 + 4 + 4), the rsqrt per token.
  int64_t rms() const { return (4 + 2 * s) * BT * h + 4 * BT; }
  // One decoder layer's saved set: two RMSNorms; q and k after RoPE and v; the attention output
  // (saved by SDPA and o_proj: one storage); SDPA's float32 logsumexp; the MLP's gate, silu(gate),
  // up and their product.
  int64_t layer_saved() const { return 2 * rms() + s * BT * (2 * dq + 2 * dkv) + 4 * B * nq * T + 4 * s * BT * I; }
  // On top of the saved sets during a layer's backward: the MLP's gradients (2 x s BTI net), the
  // incoming and outgoing gradient and a recomputed output (3 x s BTh), RMSNorm's float32
  // temporaries (2 x 4 BTh).
  int64_t backward_transient() const { return 2 * s * BT * I + (3 * s + 8) * BT * h; }
  int64_t rope() const { return 2 * s * BT * dh; }  // cos and sin, shared by all layers
  // The micro-batch's token ids, labels and positions, and the loss's shifted targets: int64 each.
  int64_t inputs() const { return 4 * 8 * BT; }
};

// The loss at its largest: the chunked path keeps the hidden-state gradient (s BTh) and a float32
// weight gradient (4 Vh) and makes one chunk at a time (float32 logits, 4 CV; in a lower precision
// also the logits themselves and their gradient, 2 CV more, and the chunk's weight-gradient product,
// s Vh); the plain path holds float32 log-probabilities, their gradient and the logits' gradient
// (12 BTV) at the log-softmax backward.
int64_t loss_bytes(const Shape& x, int64_t chunk) {
  if (chunk <= 0) return 12 * x.BT * x.V;
  const int64_t C = std::min(chunk, x.BT);
  const int64_t transient = x.s >= 4 ? 4 * C * x.V : 6 * C * x.V + x.s * x.V * x.h;
  return x.s * x.BT * x.h + 4 * x.V * x.h + transient;
}

struct Activations {
  int64_t loss_moment = 0, layer_moment = 0;
  int64_t peak() const { return std::max(loss_moment, layer_moment); }
};

// Activation bytes at the loss and at the worst layer backward, with every k-th layer recomputed.
Activations activations(const Shape& x, int64_t every, int64_t chunk) {
  auto checkpointed = [&](int64_t i) { return every > 0 && i % every == 0; };
  int64_t stored = 0;  // what the forward leaves for backward, all layers
  for (int64_t i = 0; i < x.L; ++i) stored += checkpointed(i) ? x.s * x.BT * x.h : x.layer_saved();
  Activations a;
  a.loss_moment = stored + x.inputs() + x.rope() + x.rms() + loss_bytes(x, chunk);
  // Backward from the last layer: a checkpointed layer recomputes its saved set on top of what is
  // still alive; each layer's share is freed once its backward has run.
  int64_t alive = stored;
  for (int64_t i = x.L - 1; i >= 0; --i) {
    const int64_t moment = alive + x.inputs() + x.rope() + x.backward_transient() + (checkpointed(i) ? x.layer_saved() : 0);
    a.layer_moment = std::max(a.layer_moment, moment);
    alive -= checkpointed(i) ? x.s * x.BT * x.h : x.layer_saved();
  }
  return a;
}

int64_t matmul_params(const LlamaConfig& c) {
  const int64_t h = c.hidden_size, dq = c.num_attention_heads * c.resolved_head_dim(),
                dkv = c.num_key_value_heads * c.resolved_head_dim();
  return c.num_hidden_layers * (2 * h * dq + 2 * h * dkv + 3 * h * c.intermediate_size) + c.vocab_size * h;
}
}  // namespace

int64_t count_params(const LlamaConfig& c) {
  const int64_t h = c.hidden_size, I = c.intermediate_size, dq = c.num_attention_heads * c.resolved_head_dim(),
                dkv = c.num_key_value_heads * c.resolved_head_dim();
  int64_t layer = 2 * h * dq + 2 * h * dkv + 3 * h * I + 2 * h;
  if (c.attention_bias) layer += dq + 2 * dkv + h;
  if (c.mlp_bias) layer += 2 * I + h;
  return c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * layer + h;
}

Plan make_plan(const LlamaConfig& c, const PlanInputs& in) {
  const Shape x(c, in);
  Plan p;
  p.params = count_params(c);
  // The buckets and the rank's shard as trainer/shard_layout.h lays them out, from the parameter
  // sizes of the model built on the meta device (no memory): a bucket closes once it holds
  // bucket_bytes, so one tensor can overrun it, and each bucket's chunk is padded to the world size.
  const int64_t P = p.params, W = std::max<int64_t>(in.world, 1);
  std::vector<int64_t> numels;
  for (const auto& t : LlamaForCausalLM(c, at::TensorOptions().device(at::kMeta))->parameters()) numels.push_back(t.numel());
  p.largest_tensor = *std::max_element(numels.begin(), numels.end());
  const ShardLayout layout = ShardLayout::plan(numels, x.s, in.bucket_bytes, static_cast<int>(W), 0);
  const int64_t shard = layout.shard_numel;
  int64_t bucket = 0;
  for (const auto& b : layout.buckets) bucket = std::max(bucket, x.s * b.numel);
  PlanMemory& m = p.per_rank;
  m.weights = x.s * P;
  // Gradients (trainer/zero.h): stage 0 keeps them whole, and with W > 1 a persistent flat copy per
  // bucket; stage 1's gradients are views into its persistent buckets, plus the reduced chunk;
  // stage 2 keeps the reduced chunk, at most two packed buckets in flight and the gradients of the
  // bucket being filled (whole gradients too while earlier micro-batches accumulate, grad_accum > 1).
  if (in.zero_stage == 0) m.gradients = x.s * P * (W > 1 ? 2 : 1);
  else if (in.zero_stage == 1) m.gradients = x.s * P + x.s * shard;
  else m.gradients = x.s * shard + 3 * bucket + (in.grad_accum > 1 ? x.s * P : 0);
  // Optimizer: float32 moments, and float32 masters unless the parameters are their own (stage 0
  // with a float32 model); sharded from stage 1.
  if (in.zero_stage == 0) m.optimizer = 8 * P + (x.s == 4 ? 0 : 4 * P);
  else m.optimizer = 12 * shard;
  // The update, one tensor (or stretch) at a time: sqrt(v) and the denominator, and the gradient
  // cast to float32 when it is not; at stages 1-2 two buckets of updated weights are gathered.
  const int64_t piece = in.zero_stage == 0 ? p.largest_tensor : std::min(p.largest_tensor, shard);
  m.optimizer_transient = (x.s == 4 ? 8 : 12) * piece + (in.zero_stage > 0 ? 2 * bucket : 0);
  const Activations act = activations(x, in.checkpoint_every, in.loss_chunk_tokens);
  m.activations = act.peak();
  m.loss = loss_bytes(x, in.loss_chunk_tokens);
  m.activations_no_ckpt = activations(x, 0, in.loss_chunk_tokens).peak();
  m.activations_all_ckpt = activations(x, 1, in.loss_chunk_tokens).peak();
  const int64_t states = m.weights + m.gradients + m.optimizer;
  int64_t peak = states + act.loss_moment;
  m.peak_phase = "loss";
  if (states + act.layer_moment > peak) peak = states + act.layer_moment, m.peak_phase = "layer backward";
  if (states + m.optimizer_transient > peak) peak = states + m.optimizer_transient, m.peak_phase = "optimizer step";
  // The allowance, stated rather than derived. CUDA: the context and cuBLAS/NCCL workspaces (1 GiB)
  // and the caching allocator's rounding and fragmentation (5% of the peak). CPU: the process itself
  // (libtorch's and CUDA's code and heap, thread stacks: a tiny `ropex bench` peaks at 0.45 GiB on one
  // machine and 0.63 GiB on another, so 1 GiB) and glibc's heap and BLAS scratch (5%).
  m.allowance = kGiB + peak / 20;
  m.total = peak + m.allowance;
  p.tokens_per_step = in.micro_batch * in.seq * in.grad_accum * W;
  const double attention_per_token = 6.0 * static_cast<double>(c.num_hidden_layers * in.seq * x.dq);
  const double per_token = 6.0 * static_cast<double>(matmul_params(c)) + attention_per_token;
  p.flops_per_step = per_token * static_cast<double>(p.tokens_per_step);
  const int64_t recomputed = in.checkpoint_every > 0 ? ceil_div(c.num_hidden_layers, in.checkpoint_every) : 0;
  const double layer_forward = 2.0 * static_cast<double>((matmul_params(c) - c.vocab_size * c.hidden_size) / c.num_hidden_layers) +
                               2.0 * static_cast<double>(in.seq * x.dq);
  p.flops_per_step_hardware = p.flops_per_step + layer_forward * static_cast<double>(recomputed * p.tokens_per_step);
  return p;
}

PlanTarget plan_target(const RunConfig& cfg, const std::string& gpu_memory_flag) {
  PlanTarget t;
  if (!gpu_memory_flag.empty()) {
    try {
      t.gpu_memory = static_cast<int64_t>(st::parse_size(gpu_memory_flag));
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("--gpu-memory: ") + e.what());
    }
    if (cfg.model.device == "cpu")
      throw std::invalid_argument("--gpu-memory " + gpu_memory_flag + ": the run config has model.device = cpu (set it to "
                                  "auto or cuda to plan a GPU run)");
  }
  t.cuda = cfg.model.device == "cuda" || (cfg.model.device == "auto" && (t.gpu_memory || torch::cuda::is_available()));
  if (t.cuda && !t.gpu_memory) t.gpu_memory = visible_gpu_memory();
  return t;
}

int64_t launcher_world() {
  const char* w = std::getenv("WORLD_SIZE");
  if (!w || !*w) return 1;
  char* end = nullptr;
  const long long v = std::strtoll(w, &end, 10);
  if (*end != '\0' || v < 1) throw std::runtime_error(std::string("WORLD_SIZE='") + w + "': expected a positive integer");
  return v;
}

PlanInputs plan_inputs(const RunConfig& cfg, int64_t world, bool cuda) {
  PlanInputs in;
  in.seq = cfg.data.train_len;
  in.micro_batch = cfg.batch.micro_batch_size;
  in.grad_accum = cfg.batch.grad_accum;
  in.world = world;
  in.zero_stage = cfg.distributed.zero_stage;
  in.checkpoint_every = cfg.model.activation_checkpointing.every;
  in.loss_chunk_tokens = cfg.model.loss_chunk_tokens;
  in.bucket_bytes = static_cast<int64_t>(cfg.distributed.bucket_mb * (1 << 20));
  in.cuda = cuda;
  // The compute dtype as train() picks it: auto = bfloat16 on CUDA, float32 on the CPU.
  const std::string& d = cfg.model.dtype;
  in.dtype_bytes = d == "float32" || (d == "auto" && !cuda) ? 4 : 2;
  return in;
}

nlohmann::json plan_json(const Plan& p, const PlanInputs& in, std::optional<int64_t> gpu_memory) {
  const PlanMemory& m = p.per_rank;
  nlohmann::json j = {
      {"params", p.params},
      {"largest_tensor", p.largest_tensor},
      {"world", in.world},
      {"zero_stage", in.zero_stage},
      {"device", in.cuda ? "cuda" : "cpu"},
      {"dtype", in.dtype_bytes == 4 ? "float32" : "bfloat16"},
      {"seq", in.seq},
      {"micro_batch", in.micro_batch},
      {"grad_accum", in.grad_accum},
      {"activation_checkpointing", in.checkpoint_every},
      {"loss_chunk_tokens", in.loss_chunk_tokens},
      {"per_rank",
       {{"weights_bytes", m.weights},
        {"gradients_bytes", m.gradients},
        {"optimizer_bytes", m.optimizer},
        {"activations_bytes", m.activations},
        {"activations_no_checkpointing_bytes", m.activations_no_ckpt},
        {"activations_all_checkpointed_bytes", m.activations_all_ckpt},
        {"loss_bytes", m.loss},
        {"optimizer_transient_bytes", m.optimizer_transient},
        {"allowance_bytes", m.allowance},
        {"total_bytes", m.total},
        {"peak_phase", m.peak_phase}}},
      {"tokens_per_step", p.tokens_per_step},
      {"flops_per_step", p.flops_per_step},
      {"flops_per_step_with_recompute", p.flops_per_step_hardware},
  };
  j["gpu_memory_bytes"] = gpu_memory ? nlohmann::json(*gpu_memory) : nlohmann::json(nullptr);
  j["fits"] = gpu_memory ? nlohmann::json(m.total <= *gpu_memory) : nlohmann::json(nullptr);
  return j;
}

std::string plan_text(const Plan& p, const PlanInputs& in, std::optional<int64_t> gpu_memory, const std::string& model) {
  const PlanMemory& m = p.per_rank;
  std::ostringstream os;
  const std::string ckpt = in.checkpoint_every == 0   ? "none"
                           : in.checkpoint_every == 1 ? "every layer"
                                                      : "layers 0, " + std::to_string(in.checkpoint_every) + ", " +
                                                            std::to_string(2 * in.checkpoint_every) + ", ...";
  os << "model        " << model << ": " << std::fixed << std::setprecision(3) << static_cast<double>(p.params) / 1e9
     << "B parameters\n"
     << "run          " << in.world << (in.world == 1 ? " rank" : " ranks") << ", ZeRO-" << in.zero_stage << ", "
     << (in.dtype_bytes == 4 ? "float32" : "bfloat16") << " on " << (in.cuda ? "CUDA" : "CPU") << ", seq " << in.seq
     << " x micro-batch " << in.micro_batch << " x grad_accum " << in.grad_accum << ", checkpointing " << ckpt
     << ", loss chunk " << (in.loss_chunk_tokens > 0 ? std::to_string(in.loss_chunk_tokens) : "off (full logits)") << "\n"
     << "per rank\n"
     << "  weights          " << gib(m.weights) << "\n"
     << "  gradients        " << gib(m.gradients) << "\n"
     << "  optimizer        " << gib(m.optimizer) << "  (float32 masters + moments)\n"
     << "  activations      " << gib(m.activations) << "  (none recomputed " << gib(m.activations_no_ckpt)
     << ", all recomputed " << gib(m.activations_all_ckpt) << "; loss " << gib(m.loss) << ")\n"
     << "  optimizer step   " << gib(m.optimizer_transient) << "  (temporaries)\n"
     << "  allowance        " << gib(m.allowance) << "  (" << (in.cuda ? "CUDA context, workspaces" : "the process")
     << " + 5% for the allocator)\n"
     << "  total            " << gib(m.total) << "  (peak at the " << m.peak_phase << ")\n"
     << "per step     " << p.tokens_per_step << " tokens, " << std::setprecision(3) << p.flops_per_step / 1e15
     << " PFLOP (" << p.flops_per_step_hardware / 1e15 << " with recomputation)\n";
  if (gpu_memory)
    os << "fits         " << (m.total <= *gpu_memory ? "yes" : "NO") << ": " << gib(m.total) << " of " << gib(*gpu_memory)
       << " per GPU\n";
  else
    os << "fits         unknown: no GPU visible; give --gpu-memory (e.g. 80GiB)\n";
  return os.str();
}

}  // namespace ropex
