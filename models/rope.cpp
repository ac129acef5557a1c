// Frequency scaling and rotary application. See rope.h; the formulas are in
// ../shared/spec/position_methods.md section 2.
#include "models/rope.h"

#include <cmath>
#include <stdexcept>

namespace ropex {
namespace {
constexpr double kPi = 3.14159265358979323846;

// base^(-2i/D) for i in [0, D/2), in float32: 1 / base^(arange(0, D, 2) / D).
at::Tensor base_inv_freq(double base, int64_t dim) {
  at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  return at::pow(base, exponent).reciprocal();
}

double yarn_mscale(double scale, double mscale = 1.0) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// The pair index at which a frequency completes `rotations` turns over `length` positions.
double yarn_correction_dim(double rotations, int64_t dim, double base, double length) {
  return (dim * std::log(length / (rotations * 2.0 * kPi))) / (2.0 * std::log(base));
}

// YaRN's NTK-by-parts blend for scale `factor` (inv_freq) and its attention factor.
RopeParams yarn_params(const RopeScaling& r, double base, int64_t dim, double factor) {
  const double original = static_cast<double>(r.original_max_position_embeddings);
  double attention = 0;
  if (r.attention_factor) {
    attention = *r.attention_factor;
  } else if (r.mscale.value_or(0) != 0 && r.mscale_all_dim.value_or(0) != 0) {
    attention = yarn_mscale(factor, *r.mscale) / yarn_mscale(factor, *r.mscale_all_dim);
  } else {
    attention = yarn_mscale(factor);
  }
  // transformers reads beta_* with `or`: a 0 means the default.
  const double beta_fast = r.beta_fast.value_or(0) != 0 ? *r.beta_fast : 32.0;
  const double beta_slow = r.beta_slow.value_or(0) != 0 ? *r.beta_slow : 1.0;
  double lo = yarn_correction_dim(beta_fast, dim, base, original);
  double hi = yarn_correction_dim(beta_slow, dim, base, original);
  if (r.truncate.value_or(true)) {
    lo = std::floor(lo);
    hi = std::ceil(hi);
  }
  lo = std::max(lo, 0.0);
  hi = std::min(hi, static_cast<double>(dim - 1));
  if (lo == hi) hi += 0.001;  // avoid a zero-width ramp

  at::Tensor pos_freqs = at::pow(base, at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim));
  at::Tensor extrapolation = pos_freqs.reciprocal();               // unscaled
  at::Tensor interpolation = (pos_freqs * factor).reciprocal();   // divided by the factor
  at::Tensor ramp = at::clamp((at::arange(dim / 2, at::kFloat) - lo) / (hi - lo), 0, 1);
  at::Tensor keep = 1 - ramp;  // weight of the unscaled frequency
  return {interpolation * (1 - keep) + extrapolation * keep, attention};
}

at::Tensor llama3_inv_freq(const RopeScaling& r, double base, int64_t dim) {
  at::Tensor inv = base_inv_freq(base, dim);
  const double factor = r.factor;
  const double low = r.low_freq_factor.value_or(1.0), high = r.high_freq_factor.value_or(4.0);
  const double original = static_cast<double>(r.original_max_position_embeddings);
  const double low_wavelen = original / low, high_wavelen = original / high;
  at::Tensor wavelen = inv.reciprocal() * (2 * kPi);
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv / factor, inv);
  at::Tensor smooth = (original / wavelen - low) / (high - low);
  at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
  at::Tensor medium = at::logical_not(wavelen < high_wavelen).logical_and(at::logical_not(wavelen > low_wavelen));
  return at::where(medium, smoothed, scaled);
}

// LongRoPE (transformers' _compute_longrope_parameters): inv_freq[i] = 1 / (ext[i] * base^(2i/D)) with
// ext = long_factor once the runtime length exceeds the original length, short_factor up to it (and
// at init, seq_len 0). The attention factor does not depend on the length:
// sqrt(1 + ln(factor) / ln(original)) (1 when factor <= 1) unless attention_factor is given, where
// a missing factor is max_position_embeddings / original.
RopeParams longrope_params(const RopeScaling& r, double base, int64_t dim, int64_t max_position_embeddings, int64_t seq_len) {
  const int64_t original = r.original_max_position_embeddings;
  const std::vector<double>& ext = seq_len > original ? r.long_factor : r.short_factor;
  if (static_cast<int64_t>(ext.size()) != dim / 2)
    throw std::invalid_argument("longrope " + std::string(seq_len > original ? "long_factor" : "short_factor") + " has " +
                                std::to_string(ext.size()) + " entries; head_dim " + std::to_string(dim) + " needs " +
                                std::to_string(dim / 2));
  const double factor = r.factor_from_lengths
                            ? static_cast<double>(max_position_embeddings) / static_cast<double>(original)
                            : r.factor;
  double attention = 1.0;
  if (r.attention_factor) attention = *r.attention_factor;
  else if (factor > 1.0) attention = std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(original)));
  // float32 as transformers: the list becomes a float32 tensor, base^(exponent) is float32 pow.
  at::Tensor ext_t = at::tensor(ext, at::kDouble).to(at::kFloat);
  at::Tensor pow = at::pow(base, at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim));
  return {(ext_t * pow).reciprocal(), attention};
}
}  // namespace

namespace {
RopeParams compute_unchecked(const LlamaConfig& cfg, int64_t seq_len) {
  const RopeScaling& r = cfg.rope;
  const int64_t dim = cfg.resolved_head_dim();
  const double base = cfg.rope_theta;
  if (r.type == "default") return {base_inv_freq(base, dim), 1.0};
  if (r.type == "linear") return {base_inv_freq(base, dim) / r.factor, 1.0};
  if (r.type == "ntk") {
    // Static NTK-aware: stretch the base so the lowest frequency is divided by ~factor.
    const double ntk_base = base * std::pow(r.factor, static_cast<double>(dim) / static_cast<double>(dim - 2));
    return {base_inv_freq(ntk_base, dim), 1.0};
  }
  if (r.type == "dynamic") {
    // transformers: seq_len = max(seq_len, max_position_embeddings) (the latter is the original length).
    const double max_pos = static_cast<double>(cfg.max_position_embeddings);
    const double l = std::max(static_cast<double>(seq_len), max_pos);
    const double dyn_base = base * std::pow(r.factor * l / max_pos - (r.factor - 1),
                                            static_cast<double>(dim) / static_cast<double>(dim - 2));
    return {base_inv_freq(dyn_base, dim), 1.0};
  }
  if (r.type == "yarn") return yarn_params(r, base, dim, r.factor);
  if (r.type == "dynamic-yarn") {
    // YaRN repo's dynamic variant: scale s = max(factor, l / original); factor 1 is the repo's
    // not-fine-tuned model (base frequencies up to the original length), factor f its fine-tuned one.
    const double original = static_cast<double>(r.original_max_position_embeddings);
    const double s = std::max(r.factor, static_cast<double>(seq_len) / original);
    if (s <= 1.0) return {base_inv_freq(base, dim), 1.0};
    return yarn_params(r, base, dim, s);
  }
  if (r.type == "llama3") return {llama3_inv_freq(r, base, dim), 1.0};
  if (r.type == "longrope") return longrope_params(r, base, dim, cfg.max_position_embeddings, seq_len);
  throw std::invalid_argument("unknown rope type '" + r.type + "'");
}
}  // namespace

RopeParams compute_rope_params(const LlamaConfig& cfg, int64_t seq_len) {
  RopeParams p = compute_unchecked(cfg, seq_len);
  // The config checks keep each parameter in range, but their combination (a tiny head_dim with
  // ntk's dim / (dim - 2), a base beyond float range) can still give frequencies no model can use.
  const bool finite_freqs = at::isfinite(p.inv_freq).all().item<bool>() && (p.inv_freq > 0).all().item<bool>();
  if (!finite_freqs || !std::isfinite(p.attention_factor) || !(p.attention_factor > 0))
    throw std::invalid_argument("rope " + describe_rope(cfg.rope, cfg.rope_theta) + " with head_dim " + std::to_string(cfg.resolved_head_dim()) +
                                " gives " + (finite_freqs ? "a non-finite attention factor" : "non-finite or zero frequencies") +
                                "; check rope_theta and the rope_scaling parameters");
  return p;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const RopeParams& params, const at::Tensor& position_ids,
                                               at::ScalarType dtype) {
  TORCH_CHECK(position_ids.dim() == 2, "position_ids must be [batch, seq], got ", position_ids.sizes());
  at::Tensor inv = params.inv_freq.to(position_ids.device(), at::kFloat);
  // [B, T, 1] * [D/2] -> [B, T, D/2]: one float32 product per angle, as transformers' matmul.
  at::Tensor freqs = position_ids.to(at::kFloat).unsqueeze(-1) * inv;
  at::Tensor emb = at::cat({freqs, freqs}, -1);  // [B, T, D]
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (params.attention_factor != 1.0) {
    cos = cos * params.attention_factor;
    sin = sin * params.attention_factor;
  }
  return {cos.to(dtype), sin.to(dtype)};
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [B, 1, T, D] broadcast over heads
  return x * c + rotate_half(x) * s;
}

}  // namespace ropex
