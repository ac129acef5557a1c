// LlamaForCausalLM in LibTorch with Hugging Face's module names (also Mistral's and Qwen2's, which share
// the layout: LlamaConfig::model_type selects their biases and Mistral's sliding window), so named_parameters() are the
// checkpoint keys (model.layers.N.self_attn.q_proj.weight, ...). RMSNorm in HF's order (normalise
// in float32, cast back, multiply by the weight) or fused (models/rms_norm.h), SwiGLU MLP, GQA, explicit or derived head_dim,
// tied or untied embeddings, optional attention/MLP biases.
//
// The model is single-device and knows nothing of data, distribution or checkpoints:
// forward(input_ids [B,T], position_ids [B,T]) -> logits [B,T,V]. Rope frequencies come from
// models/rope.h; for the dynamic types they are recomputed per call from max(position_ids) + 1.
#pragma once
#include "models/attention.h"
#include "models/layers.h"
#include "models/llama_config.h"
#include "models/rms_norm.h"
#include "models/rope.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

namespace ropex {

struct LlamaRMSNormImpl : torch::nn::Module {
  LlamaRMSNormImpl(int64_t dim, double eps, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;  // [dim]
  double eps;
  NormKernel kernel = NormKernel::automatic;  // fused on CUDA, HF's order elsewhere
};
TORCH_MODULE(LlamaRMSNorm);

struct LlamaMLPImpl : torch::nn::Module {
  LlamaMLPImpl(const LlamaConfig& cfg, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);  // down(silu(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

// Keys and values of one layer for incremental decoding, stored BEFORE rotation so that a change of
// frequencies (dynamic scaling as the sequence grows) re-rotates every cached key correctly.
struct LayerKVCache {
  at::Tensor k, v;          // [B, Hkv, T_cached, D]
  at::Tensor position_ids;  // [B, T_cached]
};
struct KVCache {
  std::vector<LayerKVCache> layers;
  int64_t length() const { return layers.empty() || !layers[0].k.defined() ? 0 : layers[0].k.size(2); }
};

struct LlamaAttentionImpl : torch::nn::Module {
  LlamaAttentionImpl(const LlamaConfig& cfg, const at::TensorOptions& options);
  // x: [B, T, H]; cos/sin: [B, T_total, D] for all positions attended (cached + new).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     AttentionBackend backend, LayerKVCache* cache);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t num_heads, num_kv_heads, head_dim;
  int64_t sliding_window;  // 0 = full causal attention (LlamaConfig::sliding_window)
  double scale;
};
TORCH_MODULE(LlamaAttention);

struct LlamaDecoderLayerImpl : torch::nn::Module {
  LlamaDecoderLayerImpl(const LlamaConfig& cfg, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     AttentionBackend backend, LayerKVCache* cache);
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  LlamaRMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

struct LlamaModelImpl : torch::nn::Module {
  LlamaModelImpl(const LlamaConfig& cfg, const at::TensorOptions& options);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  LlamaRMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// The default loss chunk: 1024 rows of float32 logits are 128 MiB at a 32K vocabulary, 0.5 GiB at
// Llama-3's 128K, while a [1024, H] x [H, V] product is still large enough to keep a GPU busy.
constexpr int64_t kDefaultLossChunkTokens = 1024;

struct ForwardOptions {
  AttentionBackend attention = AttentionBackend::sdpa;
  // Activation checkpointing: every k-th decoder layer (layers 0, k, 2k, ...) is recomputed during
  // backward instead of keeping its activations; 0 = none, 1 = every layer. Training only (ignored
  // under no-grad and with a KV cache). Gradients are those of the plain path.
  int64_t checkpoint_every = 0;
  // Rows of logits made at a time by lm_loss (models/lm_loss.h); 0 = the full logits at once.
  // forward() and hidden_states() do not read it.
  int64_t loss_chunk_tokens = kDefaultLossChunkTokens;
  KVCache* cache = nullptr;  // when set: append this call's keys/values, attend to all cached ones
};

struct LlamaForCausalLMImpl : torch::nn::Module {
  // Parameters are allocated with `options` (device and dtype; default CPU float32) and left
  // uninitialised: load_weights (hf_checkpoint.h) or init_weights fills them.
  explicit LlamaForCausalLMImpl(LlamaConfig cfg, const at::TensorOptions& options = {});
  // input_ids, position_ids: [B, T] int64. Returns the final hidden states [B, T, H].
  at::Tensor hidden_states(const at::Tensor& input_ids, const at::Tensor& position_ids, const ForwardOptions& opts = {});
  // Logits [B, T, V] in the model's dtype.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& position_ids, const ForwardOptions& opts = {});
  at::Tensor lm_head_weight() const;  // the embedding matrix when tied
  // Normal(0, initializer_range) for linears and embeddings, ones for norms, zeros for biases (as
  // transformers), drawn in float32 on the CPU one tensor at a time and copied into the parameters.
  void init_weights(uint64_t seed);
  // The same rule for one parameter (the draws of init_weights only when called in parameter order
  // with one generator).
  static void init_parameter(const std::string& name, at::Tensor& param, double initializer_range, at::Generator& gen);
  // The same distributions drawn where the parameters live, with that device's default generator:
  // fast on a GPU (a 7B model's 6.7e9 float32 draws take about half a minute on one CPU thread), but
  // not init_weights' values. For benchmarks, which need the distribution only.
  void init_weights_in_place();
  const LlamaConfig& config() const { return cfg_; }
  // The RMSNorm kernel of every norm (models/rms_norm.h; default auto).
  void set_norm_kernel(NormKernel k);
  // Replace the rope scaling (e.g. for a run that extends the context); recomputes frequencies.
  void set_rope(const RopeScaling& rope, int64_t max_position_embeddings);

  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  RopeParams rope_for(const at::Tensor& position_ids) const;
  LlamaConfig cfg_;
  RopeParams rope_;  // static frequencies (or the init-time ones of a dynamic type)
};
TORCH_MODULE(LlamaForCausalLM);

at::ScalarType parse_dtype_name(const std::string& name);  // float32|bfloat16|float16 (and fp32, bf16, fp16)
std::string dtype_name(at::ScalarType t);

}  // namespace ropex
