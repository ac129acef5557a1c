// Where the tests' numeric limits come from: a rounding model of the arithmetic being compared,
// evaluated for the shape under test. No limit in the tests is a value measured on one machine.
//
// Does: unit roundoffs; the error of one reduction and of a chain of dependent ones; the forward
// and backward error of a Llama of a given shape; the limit for comparing two runs of the same
// training step computed in different orders (ranks, micro-batches, ZeRO shards).
// Does not: choose what a test compares or how it normalises; each check says that beside it.
//
// The model. A floating-point operation rounds with relative error at most u (float32 2^-24,
// bfloat16 2^-8, float64 2^-53). A reduction of n terms (a dot product, a sum, a softmax
// denominator), in whatever order, blocking or thread split a kernel picks, commits errors
// sum_k delta_k * S_k over its partial sums S_k. For terms of random sign |S_k| ~ a*sqrt(k), so
// the error's standard deviation is about u * a * n / sqrt(6) against a result of size a*sqrt(n):
// a relative error of u * sqrt(n / 6) <= u * sqrt(n) (pairwise and blocked orders, which kernels
// use, do better). Errors of a chain of dependent reductions add (first order, each stage is
// well conditioned: RMSNorm and softmax do not amplify relative errors of their inputs). Two
// implementations compared against each other each commit such an error.
//
// The limit is kSafety times that one-sigma estimate. kSafety = 10 covers (a) the largest of up to
// 10^6 compared elements, sqrt(2 ln 10^6) = 5.3 standard deviations for normal errors, and (b) the
// two independent implementations, a factor sqrt(2): 5.3 * 1.41 = 7.5 < 10. Because the estimate
// does not depend on the order of operations, it holds for any CPU kernel (ATEN_CPU_CAPABILITY),
// thread count or GPU.
#pragma once
#include "models/llama_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace ropex::test::tol {

constexpr double kFloat32 = 0x1p-24;   // unit roundoff of float32 (24-bit significand)
constexpr double kBFloat16 = 0x1p-8;   // of bfloat16 (8-bit significand)
constexpr double kFloat64 = 0x1p-53;   // of float64
constexpr double kSafety = 10;         // see the header's last paragraph

// One-sigma relative error of a reduction of n terms: u * sqrt(n).
inline double reduction(int64_t n, double u) { return u * std::sqrt(static_cast<double>(n)); }

// Sum of sqrt(n_k) over the reductions a value passes through, in the shape of a Llama forward pass
// for one token's logits at sequence length T: per layer RMSNorm (over H), q/k/v projections (H),
// attention scores (head_dim), the softmax denominator (T), probabilities times values (T), the output
// projection (heads * head_dim), RMSNorm (H), gate/up projections (H), the down projection (I), and
// about ten rounded elementwise operations (RoPE's two products and sum, the scale, exp, SiLU, the
// gate product, two residual adds, the norm's scaling) counted as reductions of length 1; then the
// final RMSNorm (H) and the lm_head (H).
inline double llama_forward_depth(const LlamaConfig& c, int64_t T) {
  const double H = std::sqrt(static_cast<double>(c.hidden_size)), D = std::sqrt(static_cast<double>(c.resolved_head_dim()));
  const double per_layer = H + H + D + 2 * std::sqrt(static_cast<double>(T)) +
                           std::sqrt(static_cast<double>(c.num_attention_heads * c.resolved_head_dim())) + H + H +
                           std::sqrt(static_cast<double>(c.intermediate_size)) + 10;
  return static_cast<double>(c.num_hidden_layers) * per_layer + 2 * H;
}

// Forward logits (or a loss computed from them), relative to the reference's largest |value|.
inline double llama_forward(const LlamaConfig& c, int64_t T, double u = kFloat32) {
  return kSafety * u * llama_forward_depth(c, T);
}

// Parameter gradients, relative to the tensor's largest |value|: the backward pass runs the forward's
// reductions transposed (the same lengths) after recomputing or reusing the forward, and each weight's
// gradient then sums over the `tokens` of the batch (one more reduction).
inline double llama_backward(const LlamaConfig& c, int64_t T, int64_t tokens, double u = kFloat32) {
  return kSafety * u * (2 * llama_forward_depth(c, T) + std::sqrt(static_cast<double>(tokens)));
}

// Absolute error, in nats, of a mean cross-entropy (a loss, a log-perplexity) over `tokens` tokens at
// sequence length T, from logits no larger than max_logit: CE = logsumexp(z) - z_target moves by at most
// twice the largest logit error; the logsumexp over the vocabulary and the mean over the tokens are one
// reduction each, relative to the mean's size `nll`.
inline double mean_nll(const LlamaConfig& c, int64_t T, int64_t tokens, double max_logit, double nll, double u = kFloat32) {
  return 2 * llama_forward(c, T, u) * max_logit + kSafety * (reduction(c.vocab_size, u) + reduction(tokens, u)) * nll;
}

// The largest logit of a randomly initialised model (init_weights: weights ~ N(0, initializer_range^2),
// norms 1): a logit is a sum of H products of an RMS-normed state (root mean square 1) and a weight, so
// it has standard deviation initializer_range * sqrt(H); 8 standard deviations bound it for any
// practical number of logits (P(|z| > 8 sigma) = 1.2e-15 each).
inline double random_init_max_logit(const LlamaConfig& c) {
  return 8 * c.initializer_range * std::sqrt(static_cast<double>(c.hidden_size));
}

// How far the mean cross-entropy of a randomly initialised model can be from ln(V): its logits are
// z ~ N(0, s^2), s = initializer_range * sqrt(H) (above); logsumexp(z) - ln(V) = ln(mean(exp(z))), which
// concentrates at s^2 / 2 (fluctuations below 8 s / sqrt(V)); the mean of the targets' logits is within
// 8 s even if every target were the same token. Not a rounding bound: a statistical one, at 8 sigma.
inline double random_init_loss_band(const LlamaConfig& c) {
  const double s = c.initializer_range * std::sqrt(static_cast<double>(c.hidden_size));
  return s * s / 2 + 8 * s / std::sqrt(static_cast<double>(c.vocab_size)) + 8 * s;
}

// Worst-case relative error allowed for one element of inv_freq. ropex and transformers compute it in
// float32 with the same operations: 1 / (base ^ (i / dim)), then the type's divisions and blends. +, -,
// *, / are correctly rounded IEEE operations, identical on every CPU; only pow comes from a kernel that
// differs between CPUs and ATEN_CPU_CAPABILITY (SLEEF vectorised or libm scalar), each within 1 ulp (2u)
// of the true value. So:
//   against transformers: the two pow results differ by at most 2 * 2u = 4u, the rest is shared;
//   against a float64 formula: ropex's own rounding, the exponent i / dim rounded (u, amplified by
//     |d ln(pow) / d exponent| = ln(base)), the base rounded to float32 (u), pow (2u) and the
//     reciprocal (u): u * (ln(base) + 4); YaRN's ramp weight is rounded (3 operations: 3u absolute) and
//     blends frequencies a factor s apart, which amplifies it by up to s - 1;
//   llama3's smoothing weight is original / wavelength, so the frequency's error enters it with a factor
//     high / (high - low), and its blend of frequencies a factor f apart amplifies that by f - 1.
// Then u for the type's own division or product, and a factor 2 for the first-order analysis. ln(base)
// is bounded from the smallest expected frequency, base^(-(dim - 2) / dim) or smaller.
inline double inv_freq(const LlamaConfig& cfg, int64_t seq_len, double smallest_expected, bool against_formula) {
  const double u = kFloat32, dim = static_cast<double>(cfg.resolved_head_dim());
  const double ln_base = -std::log(smallest_expected) * dim / (dim - 2);
  const RopeScaling& r = cfg.rope;
  const double pow_err = against_formula ? u * (ln_base + 4) : 4 * u;
  double err = pow_err + u;
  if (r.type == "llama3") {
    const double low = r.low_freq_factor.value_or(1.0), high = r.high_freq_factor.value_or(4.0);
    err += pow_err * (r.factor - 1) * high / (high - low);
  }
  if (against_formula && (r.type == "yarn" || r.type == "dynamic-yarn")) {
    const double s = std::max(r.factor, static_cast<double>(seq_len) / static_cast<double>(r.original_max_position_embeddings));
    err += 3 * u * std::max(s - 1, 0.0);
  }
  return 2 * err;
}

// The attention factor is float64 on both sides (0.1 ln s + 1, or a ratio of two such): at most 8
// operations within 1 ulp (2u) each, times 4 for the libm log's own error: 64u relative.
constexpr double kAttentionFactor = 64 * kFloat64;

// Two runs of the same training steps whose only legitimate difference is the order of operations
// (ranks, micro-batch split, ZeRO shards, bucket boundaries) are compared against
//   max(kSpreadFactor * spread, a-priori floor),
// where `spread` is the same distance between two single-rank runs of the same examples summed in two
// orders (micro-batch 2 x accumulation 2 against micro-batch 1 x accumulation 4): the reordering noise
// of this very computation, AdamW's amplification of it included. The distance compared is a norm
// over every parameter, so a reordering of the same kind gives a value of the same size; 10 covers a
// ratio of two such samples. The floor is the gradient's own a-priori error (llama_backward), which
// bounds the update's relative error where AdamW's m / sqrt(v) is well conditioned; it keeps the
// limit from collapsing when the two reference orders happen to agree bit for bit. The spread itself
// must stay within kSpreadFactor floors, so a reference broken by its own order cannot widen the limit
// past 100 floors.
constexpr double kSpreadFactor = 10;
inline double spread_limit(double spread, double floor) { return std::max(kSpreadFactor * spread, floor); }

}  // namespace ropex::test::tol
