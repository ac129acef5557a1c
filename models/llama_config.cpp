// config.json <-> LlamaConfig. See llama_config.h.
#include "models/llama_config.h"

#include "data/input/json.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ropex {
namespace {
using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw std::invalid_argument(source + ": key '" + key + "': " + what);
}

std::string type_name(const json& v) {
  return v.is_null() ? "null" : v.is_boolean() ? "boolean" : v.is_number_integer() ? "integer"
       : v.is_number() ? "number" : v.is_string() ? "string" : v.is_array() ? "array" : "object";
}

int64_t as_int(const json& v, const std::string& source, const std::string& key) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  fail(source, key, "expected an integer, got " + type_name(v) + " " + input::json_excerpt(v));
}

double as_double(const json& v, const std::string& source, const std::string& key) {
  if (v.is_number()) return v.get<double>();
  fail(source, key, "expected a number, got " + type_name(v) + " " + input::json_excerpt(v));
}

bool as_bool(const json& v, const std::string& source, const std::string& key) {
  if (v.is_boolean()) return v.get<bool>();
  fail(source, key, "expected true or false, got " + type_name(v) + " " + input::json_excerpt(v));
}

std::string as_string(const json& v, const std::string& source, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  fail(source, key, "expected a string, got " + type_name(v) + " " + input::json_excerpt(v));
}

// A token id may be an integer, a list (Llama-3 eos), or null.
std::optional<int64_t> as_token_id(const json& v, const std::string& source, const std::string& key) {
  if (v.is_null()) return std::nullopt;
  if (v.is_array()) return v.empty() ? std::nullopt : std::optional<int64_t>(as_int(v.front(), source, key));
  return as_int(v, source, key);
}

template <typename T, typename F>
void read_opt(const json& j, const char* key, T& out, F conv, const std::string& source) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = conv(*it, source, key);
}

const std::set<std::string>& known_rope_keys() {
  static const std::set<std::string> keys = {
      "type", "rope_type", "factor", "original_max_position_embeddings", "attention_factor",
      "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate", "low_freq_factor",
      "high_freq_factor", "rope_theta", "partial_rotary_factor", "short_factor", "long_factor"};
  return keys;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// The optional numeric rope keys, in one place for reading, writing and describing.
struct OptionalRopeKey {
  const char* key;
  std::optional<double> RopeScaling::*field;
};
const OptionalRopeKey kOptionalRopeKeys[] = {
    {"attention_factor", &RopeScaling::attention_factor}, {"beta_fast", &RopeScaling::beta_fast},
    {"beta_slow", &RopeScaling::beta_slow},               {"mscale", &RopeScaling::mscale},
    {"mscale_all_dim", &RopeScaling::mscale_all_dim},     {"low_freq_factor", &RopeScaling::low_freq_factor},
    {"high_freq_factor", &RopeScaling::high_freq_factor},
};

bool needs_original_length(const std::string& type) {
  return type == "yarn" || type == "dynamic-yarn" || type == "llama3" || type == "longrope";
}

// The types whose original length transformers takes from a top-level original_max_position_embeddings
// when config.json has one (PreTrainedConfig.standardize_rope_params, re-run when the rotary
// embedding is built: the top-level key wins over the rope dict's).
bool original_length_from_top_level(const std::string& type) {
  return type == "yarn" || type == "llama3" || type == "longrope";
}

// A longrope factor list: numbers, each finite and > 0 (each divides a frequency).
std::vector<double> factor_list(const json& v, const std::string& source, const std::string& key) {
  if (!v.is_array() || v.empty())
    fail(source, key, "expected a non-empty list of numbers (one per frequency pair, head_dim / 2), got " + type_name(v) + " " +
                          input::json_excerpt(v));
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string k = key + "[" + std::to_string(i) + "]";
    const double x = as_double(v[i], source, k);
    if (!std::isfinite(x) || x <= 0) fail(source, k, "must be a finite number > 0, got " + json(x).dump());
    out.push_back(x);
  }
  return out;
}
}  // namespace

const std::vector<std::string>& rope_types() {
  static const std::vector<std::string> types = {"default", "linear", "ntk", "dynamic", "yarn", "dynamic-yarn", "llama3", "longrope"};
  return types;
}

bool transformers_has_rope_type(const std::string& type) {
  return type == "default" || type == "linear" || type == "dynamic" || type == "yarn" || type == "llama3" || type == "longrope";
}

const std::vector<std::string>& model_types() {
  static const std::vector<std::string> types = {"llama", "mistral", "qwen2"};
  return types;
}

std::string architecture_name(const std::string& model_type) {
  if (model_type == "llama") return "LlamaForCausalLM";
  if (model_type == "mistral") return "MistralForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  throw std::invalid_argument("unknown model_type '" + model_type + "' (ropex loads: " + join(model_types()) + ")");
}

void validate_rope_scaling(const RopeScaling& r, const std::string& source) {
  const auto& types = rope_types();
  if (std::find(types.begin(), types.end(), r.type) == types.end())
    fail(source, "rope_type", "unknown rope type '" + r.type + "' (allowed: " + join(types) + ")");
  if (r.type == "default") return;
  if (r.type == "longrope") {
    if (r.short_factor.empty()) fail(source, "short_factor", "longrope needs short_factor (a list of head_dim / 2 numbers)");
    if (r.long_factor.empty()) fail(source, "long_factor", "longrope needs long_factor (a list of head_dim / 2 numbers)");
    if (r.short_factor.size() != r.long_factor.size())
      fail(source, "long_factor", "must have as many entries as short_factor (" + std::to_string(r.short_factor.size()) +
                                      "), got " + std::to_string(r.long_factor.size()));
    for (const auto* list : {&r.short_factor, &r.long_factor})
      for (double x : *list)
        if (!std::isfinite(x) || x <= 0)
          fail(source, list == &r.short_factor ? "short_factor" : "long_factor", "entries must be finite numbers > 0");
  } else if (!r.short_factor.empty() || !r.long_factor.empty()) {
    fail(source, r.short_factor.empty() ? "long_factor" : "short_factor", "belongs to rope type 'longrope' only, not '" + r.type + "'");
  }
  if (!std::isfinite(r.factor) || r.factor <= 0)
    fail(source, "factor", "must be a positive number, got " + std::to_string(r.factor));
  // A factor <= 1 is meaningless for the interpolating types (it would shrink or keep the window).
  if ((r.type == "linear" || r.type == "ntk" || r.type == "llama3") && r.factor <= 1.0)
    fail(source, "factor", "rope type '" + r.type + "' needs factor > 1, got " + std::to_string(r.factor));
  if (needs_original_length(r.type) && r.original_max_position_embeddings <= 0)
    fail(source, "original_max_position_embeddings",
         "rope type '" + r.type + "' needs the pre-trained length (a positive integer)");
  if (r.type == "llama3") {
    double lo = r.low_freq_factor.value_or(1.0), hi = r.high_freq_factor.value_or(4.0);
    if (!(hi > lo) || lo <= 0)
      fail(source, "high_freq_factor", "llama3 needs 0 < low_freq_factor < high_freq_factor");
  }
  if (r.beta_fast && r.beta_slow && *r.beta_fast < *r.beta_slow)
    fail(source, "beta_fast", "must be >= beta_slow");
  // Every optional parameter enters a logarithm, a ratio or a power of the frequencies: a zero,
  // negative or non-finite one gives NaN or infinite frequencies, so it is refused here.
  for (const auto& k : kOptionalRopeKeys) {
    if (!(r.*k.field)) continue;
    const double v = *(r.*k.field);
    const bool may_be_zero = std::string(k.key) == "mscale" || std::string(k.key) == "mscale_all_dim";
    if (!std::isfinite(v) || v < 0 || (v == 0 && !may_be_zero))
      fail(source, k.key, std::string("must be a finite number ") + (may_be_zero ? ">= 0" : "> 0") + ", got " + json(v).dump());
  }
  if (r.factor > kMaxRopeFactor)
    fail(source, "factor", "must be <= " + std::to_string(int(kMaxRopeFactor)) + ", got " + json(r.factor).dump());
  if (r.original_max_position_embeddings > kMaxPositions)
    fail(source, "original_max_position_embeddings",
         "must be <= " + std::to_string(kMaxPositions) + ", got " + std::to_string(r.original_max_position_embeddings));
}

RopeScaling rope_scaling_from_json(const json& d, const std::string& source, int64_t max_pos) {
  if (!d.is_object()) fail(source, "rope_scaling", "expected an object, got " + type_name(d));
  for (const auto& [key, value] : d.items()) {
    if (!known_rope_keys().count(key))
      fail(source, "rope_scaling." + key, "unknown rope scaling key (known: type, rope_type, factor, "
           "original_max_position_embeddings, attention_factor, beta_fast, beta_slow, mscale, mscale_all_dim, "
           "truncate, low_freq_factor, high_freq_factor, rope_theta)");
  }
  RopeScaling r;
  // transformers 5.x: rope_type wins over the legacy "type".
  if (d.contains("rope_type")) r.type = as_string(d["rope_type"], source, "rope_type");
  else if (d.contains("type")) r.type = as_string(d["type"], source, "type");
  if (r.type == "dynamic_yarn") r.type = "dynamic-yarn";
  read_opt(d, "factor", r.factor, as_double, source);
  read_opt(d, "original_max_position_embeddings", r.original_max_position_embeddings, as_int, source);
  for (const auto& k : kOptionalRopeKeys)
    if (d.contains(k.key) && !d[k.key].is_null()) r.*k.field = as_double(d[k.key], source, k.key);
  if (d.contains("truncate") && !d["truncate"].is_null()) r.truncate = as_bool(d["truncate"], source, "truncate");
  if (d.contains("short_factor") && !d["short_factor"].is_null()) r.short_factor = factor_list(d["short_factor"], source, "short_factor");
  if (d.contains("long_factor") && !d["long_factor"].is_null()) r.long_factor = factor_list(d["long_factor"], source, "long_factor");
  // transformers' longrope: without a factor, max_position_embeddings / original (resolved in rope.cpp).
  if (r.type == "longrope" && (!d.contains("factor") || d["factor"].is_null())) r.factor_from_lengths = true;
  if (d.contains("partial_rotary_factor") && as_double(d["partial_rotary_factor"], source, "partial_rotary_factor") != 1.0)
    fail(source, "partial_rotary_factor", "only 1.0 (full rotary) is supported by ropex's Llama");
  if (needs_original_length(r.type) && r.original_max_position_embeddings <= 0 && max_pos > 0)
    r.original_max_position_embeddings = max_pos;  // transformers 5.x fills it the same way
  if (r.type == "llama3") {
    if (!r.low_freq_factor) fail(source, "low_freq_factor", "llama3 needs low_freq_factor");
    if (!r.high_freq_factor) fail(source, "high_freq_factor", "llama3 needs high_freq_factor");
  }
  validate_rope_scaling(r, source);
  return r;
}

json rope_scaling_to_json(const RopeScaling& r, bool legacy_linear) {
  if (legacy_linear) {
    if (r.type != "linear" && r.type != "dynamic")
      throw std::invalid_argument("legacy rope_scaling ({\"type\", \"factor\"}) exists only for linear and dynamic, not '" + r.type + "'");
    return json{{"type", r.type}, {"factor", r.factor}};
  }
  json j = {{"type", r.type}, {"rope_type", r.type}};
  if (!r.factor_from_lengths) j["factor"] = r.factor;
  if (r.type == "longrope") {
    j["short_factor"] = r.short_factor;
    j["long_factor"] = r.long_factor;
  }
  // Only the types that use it: transformers 5.x warns about the key on linear and dynamic.
  if (r.original_max_position_embeddings > 0 && needs_original_length(r.type))
    j["original_max_position_embeddings"] = r.original_max_position_embeddings;
  for (const auto& k : kOptionalRopeKeys)
    if (r.*k.field) j[k.key] = *(r.*k.field);
  if (r.truncate) j["truncate"] = *r.truncate;
  return j;
}

void LlamaConfig::validate(const std::string& source) const {
  // Each size must be positive and within a bound far above any published model (the largest have
  // vocabularies of ~262k, hidden sizes of 16k-25k, MLPs of ~53k-100k, 126 layers, 128 heads,
  // head_dim 256, 10M positions), so that no product of them overflows int64 and a typo such as
  // 2^40 is refused here, naming the key, rather than by the allocator.
  auto sized = [&](const char* key, int64_t v, int64_t max) {
    if (v <= 0) fail(source, key, "must be a positive integer, got " + std::to_string(v));
    if (v > max) fail(source, key, "must be <= " + std::to_string(max) + " (far above any published model), got " + std::to_string(v));
  };
  sized("vocab_size", vocab_size, int64_t{1} << 24);
  sized("hidden_size", hidden_size, int64_t{1} << 17);
  sized("intermediate_size", intermediate_size, int64_t{1} << 20);
  sized("num_hidden_layers", num_hidden_layers, int64_t{1} << 12);
  sized("num_attention_heads", num_attention_heads, int64_t{1} << 12);
  sized("num_key_value_heads", num_key_value_heads, int64_t{1} << 12);
  sized("max_position_embeddings", max_position_embeddings, kMaxPositions);
  if (head_dim_explicit) sized("head_dim", head_dim, int64_t{1} << 12);
  if (num_attention_heads % num_key_value_heads != 0)
    fail(source, "num_key_value_heads", "must divide num_attention_heads (" + std::to_string(num_attention_heads) +
         "), got " + std::to_string(num_key_value_heads));
  if (!head_dim_explicit && hidden_size % num_attention_heads != 0)
    fail(source, "hidden_size", "must be a multiple of num_attention_heads unless head_dim is given");
  if (resolved_head_dim() % 2 != 0) fail(source, "head_dim", "must be even for rotary embeddings");
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) fail(source, "rms_norm_eps", "must be a finite number > 0");
  if (!(rope_theta > 1) || !std::isfinite(rope_theta))
    fail(source, "rope_theta", "must be a finite number > 1, got " + json(rope_theta).dump());
  if (!std::isfinite(initializer_range) || initializer_range < 0)
    fail(source, "initializer_range", "must be a finite number >= 0, got " + json(initializer_range).dump());
  // Sizes of the largest matrices, each checked again by parameter_count's checked arithmetic.
  if (resolved_head_dim() * num_attention_heads > (int64_t{1} << 20))
    fail(source, "head_dim", "head_dim x num_attention_heads must be <= 2^20, got " +
                                 std::to_string(resolved_head_dim()) + " x " + std::to_string(num_attention_heads));
  parameter_count(*this);  // throws if the count overflows
  if (hidden_act != "silu" && hidden_act != "swish")
    fail(source, "hidden_act", "ropex's Llama supports 'silu' only, got '" + hidden_act + "'");
  validate_rope_scaling(rope, source);
  if (rope.type == "longrope" && static_cast<int64_t>(rope.short_factor.size()) != resolved_head_dim() / 2)
    fail(source, "short_factor", "longrope needs one entry per frequency pair: head_dim / 2 = " +
                                     std::to_string(resolved_head_dim() / 2) + " entries, got " + std::to_string(rope.short_factor.size()));
  if (std::find(model_types().begin(), model_types().end(), model_type) == model_types().end())
    fail(source, "model_type", "ropex loads " + join(model_types()) + ", got '" + model_type + "'");
  if (sliding_window && *sliding_window <= 0)
    fail(source, "sliding_window", "must be a positive integer or null, got " + std::to_string(*sliding_window));
}

int64_t parameter_count(const LlamaConfig& c) {
  // Checked: the bounds in validate() keep this far from overflow, but the function is also called
  // on configs built in code.
  const auto mul = [](int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) throw std::invalid_argument("parameter count overflows 64 bits");
    return r;
  };
  const auto add = [](int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) throw std::invalid_argument("parameter count overflows 64 bits");
    return r;
  };
  const int64_t hd = c.resolved_head_dim();
  const int64_t q = mul(c.num_attention_heads, hd), kv = mul(c.num_key_value_heads, hd);
  int64_t attn = add(add(mul(c.hidden_size, q), mul(mul(c.hidden_size, kv), 2)), mul(q, c.hidden_size));
  if (c.attention_bias) attn = add(attn, add(add(q, mul(kv, 2)), c.hidden_size));
  else if (c.qkv_bias) attn = add(attn, add(q, mul(kv, 2)));
  int64_t mlp = mul(mul(c.hidden_size, c.intermediate_size), 3);
  if (c.mlp_bias) mlp = add(mlp, add(mul(c.intermediate_size, 2), c.hidden_size));
  const int64_t layer = add(add(attn, mlp), mul(c.hidden_size, 2));  // + two RMSNorm weights
  const int64_t embed = mul(c.vocab_size, c.hidden_size);
  return add(add(add(mul(layer, c.num_hidden_layers), embed), c.tie_word_embeddings ? 0 : embed), c.hidden_size);
}

LlamaConfig config_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(source + ": expected a JSON object, got " + type_name(j));
  LlamaConfig c;
  if (j.contains("model_type") && !j["model_type"].is_null()) {
    c.model_type = as_string(j["model_type"], source, "model_type");
    if (std::find(model_types().begin(), model_types().end(), c.model_type) == model_types().end())
      fail(source, "model_type", "ropex loads the Llama-layout families " + join(model_types()) + ", got '" + c.model_type + "'");
  }
  const bool mistral = c.model_type == "mistral", qwen2 = c.model_type == "qwen2";
  // Each family's transformers defaults for keys a config.json may leave out.
  if (mistral) c.max_position_embeddings = 4096 * 32;
  if (qwen2) {
    c.max_position_embeddings = 32768;
    c.bos_token_id.reset();
    c.eos_token_id.reset();
  }
  auto required_int = [&](const char* key, int64_t& out) {
    if (!j.contains(key) || j[key].is_null()) fail(source, key, "missing (required for a Llama config)");
    out = as_int(j[key], source, key);
  };
  required_int("vocab_size", c.vocab_size);
  required_int("hidden_size", c.hidden_size);
  required_int("intermediate_size", c.intermediate_size);
  required_int("num_hidden_layers", c.num_hidden_layers);
  required_int("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;
  read_opt(j, "num_key_value_heads", c.num_key_value_heads, as_int, source);
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = as_int(j["head_dim"], source, "head_dim");
    c.head_dim_explicit = true;
  }
  read_opt(j, "max_position_embeddings", c.max_position_embeddings, as_int, source);
  read_opt(j, "rms_norm_eps", c.rms_norm_eps, as_double, source);
  read_opt(j, "tie_word_embeddings", c.tie_word_embeddings, as_bool, source);
  if (!mistral && !qwen2) {  // Mistral and Qwen2 have fixed biases; transformers ignores these keys there
    read_opt(j, "attention_bias", c.attention_bias, as_bool, source);
    read_opt(j, "mlp_bias", c.mlp_bias, as_bool, source);
  }
  c.qkv_bias = qwen2;
  if (mistral) {
    // MistralConfig's default window is 4096: a config.json without the key gets it, null means none.
    c.sliding_window = 4096;
    if (j.contains("sliding_window"))
      c.sliding_window = j["sliding_window"].is_null() ? std::nullopt : std::optional<int64_t>(as_int(j["sliding_window"], source, "sliding_window"));
  }
  if (qwen2) {
    // Qwen2Config keeps sliding_window only with use_sliding_window, and then only for the layers from
    // max_window_layers on (layer_types): that per-layer window is not implemented, so it is refused.
    bool use_sliding = false;
    read_opt(j, "use_sliding_window", use_sliding, as_bool, source);
    if (use_sliding)
      fail(source, "use_sliding_window", "ropex does not implement Qwen2's per-layer sliding window; expected false (full attention)");
    read_opt(j, "max_window_layers", c.max_window_layers, as_int, source);
    if (j.contains("layer_types") && !j["layer_types"].is_null()) {
      const json& lt = j["layer_types"];
      if (!lt.is_array()) fail(source, "layer_types", "expected a list of strings, got " + type_name(lt));
      for (size_t i = 0; i < lt.size(); ++i)
        if (as_string(lt[i], source, "layer_types[" + std::to_string(i) + "]") != "full_attention")
          fail(source, "layer_types[" + std::to_string(i) + "]",
               "ropex implements \"full_attention\" layers only, got \"" + lt[i].get<std::string>() + "\"");
    }
  }
  read_opt(j, "hidden_act", c.hidden_act, as_string, source);
  read_opt(j, "initializer_range", c.initializer_range, as_double, source);
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
  if (j.contains("dtype") && j["dtype"].is_string()) c.torch_dtype = j["dtype"].get<std::string>();
  if (j.contains("bos_token_id")) c.bos_token_id = as_token_id(j["bos_token_id"], source, "bos_token_id");
  if (j.contains("eos_token_id")) c.eos_token_id = as_token_id(j["eos_token_id"], source, "eos_token_id");
  if (j.contains("eos_token_id") && j["eos_token_id"].is_array() && j["eos_token_id"].size() > 1)
    for (size_t i = 0; i < j["eos_token_id"].size(); ++i)
      c.eos_token_ids.push_back(as_int(j["eos_token_id"][i], source, "eos_token_id[" + std::to_string(i) + "]"));
  if (j.contains("pad_token_id")) c.pad_token_id = as_token_id(j["pad_token_id"], source, "pad_token_id");
  if (c.pad_token_id && *c.pad_token_id < 0) c.pad_token_id.reset();  // early LLaMA conversions wrote -1 for "none"
  // bos and eos, where config.json gives them, index the embedding (eval's prompts, generation).
  for (const auto& [key, id] : {std::pair{"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_id}})
    if (j.contains(key) && id && (*id < 0 || (c.vocab_size > 0 && *id >= c.vocab_size)))
      fail(source, key, "must be a token id in [0, vocab_size=" + std::to_string(c.vocab_size) + "), got " + std::to_string(*id));
  if (j.contains("pretraining_tp") && !j["pretraining_tp"].is_null() && as_int(j["pretraining_tp"], source, "pretraining_tp") != 1)
    fail(source, "pretraining_tp", "only 1 is supported (transformers treats >1 as a slicing detail of the original training)");

  // rope_theta: top level (4.x) or inside rope_parameters (5.x). rope_scaling wins over rope_parameters.
  read_opt(j, "rope_theta", c.rope_theta, as_double, source);
  const json* rope_dict = nullptr;
  std::string rope_key;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) { rope_dict = &j["rope_parameters"]; rope_key = "rope_parameters"; }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) { rope_dict = &j["rope_scaling"]; rope_key = "rope_scaling"; }
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object() && j["rope_parameters"].contains("rope_theta"))
    c.rope_theta = as_double(j["rope_parameters"]["rope_theta"], source, "rope_parameters.rope_theta");
  if (rope_dict) {
    if (rope_dict->is_object() && rope_dict->contains("rope_theta"))
      c.rope_theta = as_double((*rope_dict)["rope_theta"], source, rope_key + ".rope_theta");
    c.rope = rope_scaling_from_json(*rope_dict, source + " (" + rope_key + ")", c.max_position_embeddings);
  }
  // Phi-3 style: a top-level original_max_position_embeddings wins over the rope dict's for the types
  // that use it (what transformers' rotary embedding ends up using).
  if (j.contains("original_max_position_embeddings") && !j["original_max_position_embeddings"].is_null() &&
      original_length_from_top_level(c.rope.type)) {
    c.rope.original_max_position_embeddings = as_int(j["original_max_position_embeddings"], source, "original_max_position_embeddings");
    validate_rope_scaling(c.rope, source);
  }
  c.validate(source);
  return c;
}

LlamaConfig load_config(const std::string& path_in) {
  namespace fs = std::filesystem;
  fs::path path = path_in;
  if (fs::is_directory(path)) path /= "config.json";
  json j;
  try {
    // config.json is a few KB; 16 MiB keeps a wrong path (a weights file) from being read whole.
    j = input::read_json_file(path, "a Hugging Face config.json", size_t{16} << 20);
  } catch (const input::JsonInputError& e) {
    throw std::runtime_error(std::string(e.what()) + " (not valid JSON)");
  }
  return config_from_json(j, path.string());
}

json config_to_json(const LlamaConfig& c, const ConfigWriteOptions& opts) {
  json j = {
      {"architectures", {architecture_name(c.model_type)}},
      {"model_type", c.model_type},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"attention_dropout", 0.0},
      {"hidden_act", c.hidden_act},
      {"initializer_range", c.initializer_range},
      {"use_cache", true},
      {"torch_dtype", c.torch_dtype},
  };
  // Each family's own keys (transformers' config class of that model_type has them).
  if (c.model_type == "llama") {
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = c.mlp_bias;
    j["pretraining_tp"] = 1;
  } else if (c.model_type == "mistral") {
    j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
  } else if (c.model_type == "qwen2") {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
    j["max_window_layers"] = c.max_window_layers;
  }
  // longrope: the original length also at the top level (Phi-3 style), which transformers 4.x reads
  // for longrope and 5.x prefers over the rope dict's.
  if (c.rope.type == "longrope") j["original_max_position_embeddings"] = c.rope.original_max_position_embeddings;
  if (c.head_dim_explicit) j["head_dim"] = c.head_dim;
  j["bos_token_id"] = c.bos_token_id ? json(*c.bos_token_id) : json(nullptr);
  j["eos_token_id"] = c.eos_token_id ? json(*c.eos_token_id) : json(nullptr);
  if (c.eos_token_ids.size() > 1 && c.eos_token_id && c.eos_token_ids.front() == *c.eos_token_id) j["eos_token_id"] = c.eos_token_ids;
  if (c.pad_token_id) j["pad_token_id"] = *c.pad_token_id;
  if (c.rope.is_default()) {
    j["rope_scaling"] = nullptr;
    if (opts.with_rope_parameters) j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", c.rope_theta}};
  } else {
    if (!transformers_has_rope_type(c.rope.type) && !opts.allow_ropex_types)
      throw std::invalid_argument("rope type '" + c.rope.type + "' has no transformers equivalent; convert it before export");
    j["rope_scaling"] = rope_scaling_to_json(c.rope, opts.legacy_linear);
    if (opts.with_rope_parameters && !opts.legacy_linear) {
      json p = rope_scaling_to_json(c.rope, false);
      p.erase("type");
      p["rope_theta"] = c.rope_theta;
      j["rope_parameters"] = p;
    }
  }
  return j;
}

std::string describe_rope(const RopeScaling& r, double theta) {
  std::ostringstream os;
  os << r.type << " (rope_theta=" << theta;
  if (r.factor_from_lengths) os << ", factor=max_position_embeddings/original";
  else if (!r.is_default()) os << ", factor=" << r.factor;
  if (r.original_max_position_embeddings > 0) os << ", original_max_position_embeddings=" << r.original_max_position_embeddings;
  for (const auto& k : kOptionalRopeKeys)
    if (r.*k.field) os << ", " << k.key << "=" << *(r.*k.field);
  if (r.truncate) os << ", truncate=" << (*r.truncate ? "true" : "false");
  for (const auto& [key, list] : {std::pair{"short_factor", &r.short_factor}, {"long_factor", &r.long_factor}}) {
    if (list->empty()) continue;
    os << ", " << key << "=[";
    for (size_t i = 0; i < list->size(); ++i) os << (i ? ", " : "") << (*list)[i];
    os << "]";
  }
  os << ")";
  return os.str();
}

}  // namespace ropex
