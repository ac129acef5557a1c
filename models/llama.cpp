// Llama blocks and the causal LM. See llama.h.
#include "models/llama.h"

#include <torch/autograd.h>

#include <stdexcept>

namespace ropex {
namespace nn = torch::nn;

LlamaRMSNormImpl::LlamaRMSNormImpl(int64_t dim, double eps_, const at::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", at::empty({dim}, options));
}

at::Tensor LlamaRMSNormImpl::forward(const at::Tensor& x) { return rms_norm(x, weight, eps, kernel); }

LlamaMLPImpl::LlamaMLPImpl(const LlamaConfig& c, const at::TensorOptions& options) {
  auto lin = [&](int64_t in, int64_t out) { return Linear(in, out, c.mlp_bias, options); };
  gate_proj = register_module("gate_proj", lin(c.hidden_size, c.intermediate_size));
  up_proj = register_module("up_proj", lin(c.hidden_size, c.intermediate_size));
  down_proj = register_module("down_proj", lin(c.intermediate_size, c.hidden_size));
}

at::Tensor LlamaMLPImpl::forward(const at::Tensor& x) {
  return down_proj(at::silu(gate_proj(x)) * up_proj(x));
}

LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& c, const at::TensorOptions& options)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.resolved_head_dim()),
      sliding_window(c.sliding_window.value_or(0)) {
  scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  // Llama: attention_bias on all four projections; Qwen2: on q/k/v only (qkv_bias).
  const bool in_bias = c.attention_bias || c.qkv_bias;
  auto lin = [&](int64_t in, int64_t out, bool bias) { return Linear(in, out, bias, options); };
  q_proj = register_module("q_proj", lin(c.hidden_size, num_heads * head_dim, in_bias));
  k_proj = register_module("k_proj", lin(c.hidden_size, num_kv_heads * head_dim, in_bias));
  v_proj = register_module("v_proj", lin(c.hidden_size, num_kv_heads * head_dim, in_bias));
  o_proj = register_module("o_proj", lin(num_heads * head_dim, c.hidden_size, c.attention_bias));
}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                       AttentionBackend backend, LayerKVCache* cache) {
  const int64_t B = x.size(0), T = x.size(1);
  at::Tensor q = q_proj(x).view({B, T, num_heads, head_dim}).transpose(1, 2);     // [B, Hq, T, D]
  at::Tensor k = k_proj(x).view({B, T, num_kv_heads, head_dim}).transpose(1, 2);  // [B, Hkv, T, D]
  at::Tensor v = v_proj(x).view({B, T, num_kv_heads, head_dim}).transpose(1, 2);  // [B, Hkv, T, D]
  if (cache) {  // keys are cached unrotated; all of them are rotated with this call's cos/sin
    cache->k = cache->k.defined() ? at::cat({cache->k, k}, 2) : k;
    cache->v = cache->v.defined() ? at::cat({cache->v, v}, 2) : v;
    k = cache->k;
    v = cache->v;
  }
  const int64_t total = k.size(2);
  q = apply_rope(q, cos.narrow(1, total - T, T), sin.narrow(1, total - T, T));
  k = apply_rope(k, cos, sin);
  at::Tensor out = causal_attention(q, k, v, scale, backend, sliding_window);  // [B, Hq, T, D]
  return o_proj(out.transpose(1, 2).reshape({B, T, num_heads * head_dim}));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaConfig& c, const at::TensorOptions& options) {
  self_attn = register_module("self_attn", LlamaAttention(c, options));
  mlp = register_module("mlp", LlamaMLP(c, options));
  input_layernorm = register_module("input_layernorm", LlamaRMSNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm = register_module("post_attention_layernorm", LlamaRMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                          AttentionBackend backend, LayerKVCache* cache) {
  at::Tensor h = x + self_attn->forward(input_layernorm(x), cos, sin, backend, cache);
  return h + mlp(post_attention_layernorm(h));
}

namespace {
// Activation checkpointing of one decoder layer: forward runs without recording the graph (autograd
// functions run their forward in no-grad mode), backward re-runs the layer with grad enabled and
// back-propagates through it, which accumulates into the layer's parameters' .grad as usual.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, int64_t layer, int64_t backend) {
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["backend"] = backend;
    ctx->save_for_backward({x, cos, sin});
    auto* l = reinterpret_cast<LlamaDecoderLayerImpl*>(layer);
    return l->forward(x, cos, sin, static_cast<AttentionBackend>(backend), nullptr);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto* l = reinterpret_cast<LlamaDecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    const auto backend = static_cast<AttentionBackend>(ctx->saved_data["backend"].toInt());
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = l->forward(x, saved[1], saved[2], backend, nullptr);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& c, const at::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, options));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(c, options));
  norm = register_module("norm", LlamaRMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(LlamaConfig c, const at::TensorOptions& options) : cfg_(std::move(c)) {
  cfg_.validate("model config");
  model = register_module("model", LlamaModel(cfg_, options));
  if (!cfg_.tie_word_embeddings) lm_head = register_module("lm_head", Linear(cfg_.hidden_size, cfg_.vocab_size, false, options));
  rope_ = compute_rope_params(cfg_);
}

void LlamaForCausalLMImpl::set_norm_kernel(NormKernel k) {
  for (auto& m : modules(/*include_self=*/false))
    if (auto* norm = m->as<LlamaRMSNorm>()) norm->kernel = k;
}

void LlamaForCausalLMImpl::set_rope(const RopeScaling& rope, int64_t max_position_embeddings) {
  validate_rope_scaling(rope, "rope scaling");
  cfg_.rope = rope;
  cfg_.max_position_embeddings = max_position_embeddings;
  rope_ = compute_rope_params(cfg_);
}

RopeParams LlamaForCausalLMImpl::rope_for(const at::Tensor& position_ids) const {
  if (!rope_is_dynamic(cfg_.rope)) return rope_;
  // Dynamic types follow the current length: max(position_ids) + 1 (one host read per forward).
  const int64_t seq_len = position_ids.max().item<int64_t>() + 1;
  return compute_rope_params(cfg_, seq_len);
}

at::Tensor LlamaForCausalLMImpl::lm_head_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

at::Tensor LlamaForCausalLMImpl::hidden_states(const at::Tensor& input_ids, const at::Tensor& position_ids,
                                               const ForwardOptions& opts) {
  TORCH_CHECK(input_ids.dim() == 2 && position_ids.sizes() == input_ids.sizes(),
              "input_ids and position_ids must both be [batch, seq]; got ", input_ids.sizes(), " and ", position_ids.sizes());
  KVCache* cache = opts.cache;
  if (cache && cache->layers.empty()) cache->layers.resize(model->layers->size());
  at::Tensor all_pos = position_ids;
  if (cache) {
    LayerKVCache& first = cache->layers[0];
    all_pos = first.position_ids.defined() ? at::cat({first.position_ids, position_ids}, 1) : position_ids;
  }
  at::Tensor h = model->embed_tokens(input_ids);  // [B, T, H]
  auto [cos, sin] = rope_cos_sin(rope_for(all_pos), all_pos, h.scalar_type());  // [B, T_total, D]
  for (size_t i = 0; i < model->layers->size(); ++i) {
    LayerKVCache* layer_cache = cache ? &cache->layers[i] : nullptr;
    auto* layer = model->layers[i]->as<LlamaDecoderLayer>();
    const bool recompute = opts.checkpoint_every > 0 && static_cast<int64_t>(i) % opts.checkpoint_every == 0;
    if (recompute && !cache && at::GradMode::is_enabled() && h.requires_grad())
      h = CheckpointedLayer::apply(h, cos, sin, reinterpret_cast<int64_t>(layer), static_cast<int64_t>(opts.attention));
    else
      h = layer->forward(h, cos, sin, opts.attention, layer_cache);
  }
  if (cache) cache->layers[0].position_ids = all_pos;
  return model->norm(h);
}

at::Tensor LlamaForCausalLMImpl::forward(const at::Tensor& input_ids, const at::Tensor& position_ids,
                                         const ForwardOptions& opts) {
  return at::linear(hidden_states(input_ids, position_ids, opts), lm_head_weight());  // [B, T, V]
}

namespace {
// transformers' rule: norms start at one, biases at zero, everything else ~ N(0, initializer_range^2).
enum class InitRule { ones, zeros, normal };
InitRule init_rule(const std::string& name) {
  if (name.find("norm") != std::string::npos) return InitRule::ones;
  if (name.size() > 5 && name.substr(name.size() - 5) == ".bias") return InitRule::zeros;
  return InitRule::normal;
}
}  // namespace

void LlamaForCausalLMImpl::init_parameter(const std::string& name, at::Tensor& p, double initializer_range,
                                          at::Generator& gen) {
  torch::NoGradGuard no_grad;
  at::Tensor fresh;
  switch (init_rule(name)) {
    case InitRule::ones: fresh = at::ones(p.sizes(), at::kFloat); break;
    case InitRule::zeros: fresh = at::zeros(p.sizes(), at::kFloat); break;
    case InitRule::normal: fresh = at::normal(0.0, initializer_range, p.sizes(), gen, at::kFloat); break;
  }
  p.copy_(fresh);
}

void LlamaForCausalLMImpl::init_weights_in_place() {
  torch::NoGradGuard no_grad;
  for (auto& item : named_parameters()) {
    at::Tensor& p = item.value();
    switch (init_rule(item.key())) {
      case InitRule::ones: p.fill_(1); break;
      case InitRule::zeros: p.zero_(); break;
      case InitRule::normal: p.normal_(0.0, cfg_.initializer_range); break;
    }
  }
}

void LlamaForCausalLMImpl::init_weights(uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : named_parameters()) init_parameter(item.key(), item.value(), cfg_.initializer_range, gen);
}

at::ScalarType parse_dtype_name(const std::string& n) {
  if (n == "float32" || n == "fp32" || n == "float") return at::kFloat;
  if (n == "bfloat16" || n == "bf16") return at::kBFloat16;
  if (n == "float16" || n == "fp16" || n == "half") return at::kHalf;
  if (n == "float64" || n == "fp64" || n == "double") return at::kDouble;
  throw std::invalid_argument("unknown dtype '" + n + "' (expected float32, bfloat16, float16 or float64)");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    default: return c10::toString(t);
  }
}

}  // namespace ropex
