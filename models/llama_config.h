// LlamaConfig: the model's shape and rope scaling, read from and written to HF config.json, for the
// decoder families that share Llama's layout: model_type "llama" (Llama 1-3.x), "mistral" (no biases,
// an optional sliding window over the keys) and "qwen2" (biases on q/k/v only; its per-layer sliding
// window is refused). Each family's config.json is read and written with its own keys and
// architecture name (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM), other keys a
// transformers 5.x config carries (use_cache, layer_types, max_window_layers, ...) are tolerated as
// transformers tolerates them.
//
// Reads both layouts: transformers 4.x (top-level rope_theta + rope_scaling with "type" or
// "rope_type") and 5.x (rope_parameters holding rope_theta); if both dicts exist rope_scaling wins,
// as in transformers 5.x. Writes the layout that loads in 4.43.2+ and 5.x
// (../shared/spec/hf_checkpoint_format.md). Does not compute frequencies: that is models/rope.h.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ropex {

// Every frequency-scaling parameter ropex knows. Which ones matter depends on `type`.
struct RopeScaling {
  std::string type = "default";  // default | linear | ntk | dynamic | yarn | dynamic-yarn | llama3 | longrope
  double factor = 1.0;
  // longrope: factor absent from config.json, so transformers derives it as
  // max_position_embeddings / original_max_position_embeddings (it only sets the attention factor).
  bool factor_from_lengths = false;
  std::vector<double> short_factor;              // longrope: per-pair divisors up to the original length
  std::vector<double> long_factor;               // longrope: per-pair divisors beyond it
  int64_t original_max_position_embeddings = 0;  // 0 = unset
  std::optional<double> attention_factor;        // yarn: replaces the computed factor
  std::optional<double> beta_fast;               // yarn: default 32
  std::optional<double> beta_slow;               // yarn: default 1
  std::optional<double> mscale;                  // yarn (DeepSeek style)
  std::optional<double> mscale_all_dim;
  std::optional<bool> truncate;                  // yarn: default true
  std::optional<double> low_freq_factor;         // llama3
  std::optional<double> high_freq_factor;        // llama3

  bool is_default() const { return type == "default"; }
};

// Bounds checked by validate(): positions (max_position_embeddings, original_max_position_embeddings,
// 2^30, a hundred times the longest published window) and the rope scaling factor.
constexpr int64_t kMaxPositions = int64_t{1} << 30;
constexpr double kMaxRopeFactor = 4096;

// The rope types ropex implements, and the ones transformers also has.
const std::vector<std::string>& rope_types();
bool transformers_has_rope_type(const std::string& type);

// The config.json families ropex loads (model_type values).
const std::vector<std::string>& model_types();
// "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM".
std::string architecture_name(const std::string& model_type);

struct LlamaConfig {
  std::string model_type = "llama";  // llama | mistral | qwen2 (model_types())
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 0;  // 0 = hidden_size / num_attention_heads
  bool head_dim_explicit = false;
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool qkv_bias = false;  // qwen2: q/k/v projections carry biases, o_proj does not
  // mistral: each query attends to itself and the sliding_window - 1 keys before it (transformers'
  // rule, by sequence index); unset = full causal attention.
  std::optional<int64_t> sliding_window;
  int64_t max_window_layers = 28;  // qwen2: kept for export; no effect while use_sliding_window is false
  std::string hidden_act = "silu";
  std::optional<int64_t> bos_token_id = 1;
  std::optional<int64_t> eos_token_id = 2;
  // Every eos id when config.json lists several (Llama 3.1+: [128001, 128008, 128009]); eos_token_id is
  // the first. Written back as the list.
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype = "float32";
  double initializer_range = 0.02;

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  // Throws std::invalid_argument naming `source` and the key when the shape is inconsistent.
  void validate(const std::string& source) const;
};

// Parses an HF rope dict (rope_scaling or rope_parameters, "type" or "rope_type" form). Unknown keys
// are errors (naming the key and source); rope_theta/partial_rotary_factor inside are handled by the
// caller. `max_position_embeddings` fills original_max_position_embeddings for yarn/llama3/longrope
// when the dict lacks it (what transformers 5.x does); pass 0 to make that an error. A top-level
// original_max_position_embeddings (Phi-3 style) overrides the dict's: config_from_json applies it,
// as transformers' models do when they compute the frequencies.
RopeScaling rope_scaling_from_json(const nlohmann::json& dict, const std::string& source,
                                   int64_t max_position_embeddings);
// The HF dict for `rope` (both "type" and "rope_type", factor as a float, only non-default keys).
// legacy_linear: exactly {"type", "factor"} for transformers 4.31-4.42 (linear/dynamic only).
nlohmann::json rope_scaling_to_json(const RopeScaling& rope, bool legacy_linear = false);
// Checks a rope config: known type, factor > 1 where it scales, original length where needed.
void validate_rope_scaling(const RopeScaling& rope, const std::string& source);

// Parameters of the model `c` describes (embeddings, layers, final norm, head unless tied), in
// checked arithmetic: throws std::invalid_argument if the count overflows int64.
int64_t parameter_count(const LlamaConfig& c);

LlamaConfig config_from_json(const nlohmann::json& j, const std::string& source);
LlamaConfig load_config(const std::string& path);  // path to config.json (or its directory)

struct ConfigWriteOptions {
  bool legacy_linear = false;       // rope_scaling exactly {"type","factor"} (4.31-4.42 loaders)
  bool with_rope_parameters = true; // also write transformers 5.x's rope_parameters
  bool allow_ropex_types = false;   // write ntk / dynamic-yarn as they are (ropex checkpoints only)
};
nlohmann::json config_to_json(const LlamaConfig& cfg, const ConfigWriteOptions& opts = {});

// A one-line description, e.g. "yarn factor=8 original=4096 beta_fast=32 ...".
std::string describe_rope(const RopeScaling& rope, double rope_theta);

}  // namespace ropex
