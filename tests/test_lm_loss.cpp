// The chunked lm_head + cross-entropy (models/lm_loss.h) against the plain path and against a float64
// computation of the same loss; the model-level comparison with transformers is in test_hf_parity.cpp.
#include "models/lm_loss.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace ropex::test {
namespace {

struct Problem {
  at::Tensor hidden;  // [B, T, H]
  at::Tensor weight;  // [V, H]
  at::Tensor labels;  // [B, T], some -100
};

// Logits of a few units (hidden ~ N(0, 1), weights ~ N(0, 1/H)), some labels ignored, including a
// whole chunk's worth in a row, so chunks of only ignored rows occur.
Problem make_problem(int64_t B, int64_t T, int64_t H, int64_t V, at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  Problem p;
  p.hidden = at::normal(0.0, 1.0, {B, T, H}, gen, at::kDouble).to(dtype);
  p.weight = at::normal(0.0, 1.0 / std::sqrt(static_cast<double>(H)), {V, H}, gen, at::kDouble).to(dtype);
  p.labels = at::randint(0, V, {B, T}, gen, at::kLong);
  p.labels.index_put_({0, at::indexing::Slice(2, 9)}, -100);
  p.labels.index_put_({B - 1, T - 1}, -100);
  return p;
}

struct Grads {
  at::Tensor loss, hidden, weight;  // mean loss; gradients of the mean loss
};

Grads run(const Problem& p, at::ScalarType dtype, int64_t chunk) {
  at::Tensor h = p.hidden.to(dtype).detach().requires_grad_(true);
  at::Tensor w = p.weight.to(dtype).detach().requires_grad_(true);
  LossResult l = chunk > 0 ? chunked_lm_loss(h, w, p.labels, chunk)
                           : causal_lm_loss(at::linear(h, w), p.labels);
  l.mean.backward();
  return {l.mean.detach(), h.grad(), w.grad()};
}

// Limits (tests/tolerance.h's model): a logit is a reduction over H; the loss of a row adds the
// logsumexp over V; the mean adds one over the N tokens. The hidden-state gradient is a product over V
// of softmax terms (themselves through the logits and the denominator); the weight gradient sums over
// the N tokens instead.
struct Limits {
  double loss, hidden, weight;
};
Limits limits(const Problem& p, double u) {
  const int64_t H = p.hidden.size(2), V = p.weight.size(0), N = p.labels.numel();
  const double max_logit = at::linear(p.hidden.to(at::kDouble), p.weight.to(at::kDouble)).abs().max().item<double>();
  const double logit = tol::reduction(H, u);
  return {tol::kSafety * (2 * logit * max_logit + tol::reduction(V, u) + tol::reduction(N, u)),
          tol::kSafety * (logit * max_logit + 2 * tol::reduction(V, u)),
          tol::kSafety * (logit * max_logit + tol::reduction(V, u) + tol::reduction(N, u))};
}

TEST(LmLoss, ChunkedEqualsPlainAndFloat64) {
  const Problem p = make_problem(2, 37, 24, 301, at::kFloat);
  const Grads ref = run(p, at::kDouble, 0);  // the float64 plain path: the reference
  const Limits lim = limits(p, tol::kFloat32);
  const Grads plain = run(p, at::kFloat, 0);
  // Chunk sizes: one row, a divisor of nothing, a chunk larger than B*T (one chunk), and the default.
  for (int64_t chunk : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{1000}, kDefaultLossChunkTokens}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    const Grads c = run(p, at::kFloat, chunk);
    EXPECT_EQ(c.loss.scalar_type(), at::kFloat);
    EXPECT_LE(std::abs(c.loss.item<double>() - ref.loss.item<double>()), lim.loss * ref.loss.item<double>());
    EXPECT_LE(rel_err(c.hidden, ref.hidden), lim.hidden);
    EXPECT_LE(rel_err(c.weight, ref.weight), lim.weight);
    // The plain float32 path stays within the same limits (the limits are not loose for it alone).
    EXPECT_LE(rel_err(c.hidden, plain.hidden), 2 * lim.hidden);
    EXPECT_LE(rel_err(c.weight, plain.weight), 2 * lim.weight);
  }
  EXPECT_LE(rel_err(plain.hidden, ref.hidden), lim.hidden);
  EXPECT_LE(rel_err(plain.weight, ref.weight), lim.weight);
  // Ignored rows get no gradient (row (0, t) predicts label (0, t + 1); labels 2..8 are ignored).
  const Grads c = run(p, at::kFloat, 5);
  EXPECT_EQ(c.hidden[0].narrow(0, 1, 7).abs().max().item<double>(), 0.0);
  EXPECT_GT(c.hidden[0][0].abs().max().item<double>(), 0.0);
  EXPECT_EQ(c.hidden[1][36].abs().max().item<double>(), 0.0);  // the last row predicts nothing
}

// In float64 both paths are the same sums to within float64 rounding: a tight check of the algebra
// (shift, masking, scaling by the incoming gradient) that float32 noise could hide.
TEST(LmLoss, ChunkedEqualsPlainInFloat64) {
  const Problem p = make_problem(3, 11, 8, 53, at::kDouble);
  const Grads plain = run(p, at::kDouble, 0);
  const Limits lim = limits(p, tol::kFloat64);
  for (int64_t chunk : {int64_t{1}, int64_t{4}, int64_t{33}}) {
    const Grads c = run(p, at::kDouble, chunk);
    EXPECT_LE(std::abs(c.loss.item<double>() - plain.loss.item<double>()), lim.loss * plain.loss.item<double>())
        << chunk;
    EXPECT_LE(rel_err(c.hidden, plain.hidden), 2 * lim.hidden) << chunk;
    EXPECT_LE(rel_err(c.weight, plain.weight), 2 * lim.weight) << chunk;
  }
}

// bfloat16: the chunked path's error against float64 is that of the plain bfloat16 path's kind (both
// round the logits and the gradient products to bfloat16); 4x the plain path's own error, as the
// bfloat16 parity test allows.
TEST(LmLoss, Bfloat16FollowsThePlainPath) {
  const Problem p = make_problem(2, 40, 32, 257, at::kFloat);
  const Grads ref = run(p, at::kDouble, 0);
  const Grads plain = run(p, at::kBFloat16, 0), c = run(p, at::kBFloat16, 7);
  EXPECT_EQ(c.hidden.scalar_type(), at::kBFloat16);
  EXPECT_EQ(c.weight.scalar_type(), at::kBFloat16);
  EXPECT_LE(rel_err(c.hidden, ref.hidden), 4 * rel_err(plain.hidden, ref.hidden));
  EXPECT_LE(rel_err(c.weight, ref.weight), 4 * rel_err(plain.weight, ref.weight));
  EXPECT_LE(std::abs(c.loss.item<double>() - ref.loss.item<double>()),
            4 * std::abs(plain.loss.item<double>() - ref.loss.item<double>()) + 2 * tol::kBFloat16 * ref.loss.item<double>());
}

// The loss a caller scales (train_step divides by the global token count) gets that scale in its
// gradients; under no-grad nothing is kept and the value is the same; nll_sum agrees.
TEST(LmLoss, ScaledBackwardNoGradAndNllSum) {
  const Problem p = make_problem(1, 29, 16, 97, at::kDouble);
  at::Tensor h = p.hidden.clone().requires_grad_(true), w = p.weight.clone().requires_grad_(true);
  LossResult l = chunked_lm_loss(h, w, p.labels, 6);
  (l.sum * 0.25).backward();
  at::Tensor h2 = p.hidden.clone().requires_grad_(true), w2 = p.weight.clone().requires_grad_(true);
  (causal_lm_loss(at::linear(h2, w2), p.labels).sum * 0.25).backward();
  // Two float64 implementations, each within the rounding limits of the exact values (0.25 is a power
  // of two: scaling by it rounds nothing), so they differ by at most twice those limits; a missing or
  // doubled scale is off by a factor of 4.
  const Limits lim = limits(p, tol::kFloat64);
  EXPECT_LE(rel_err(h.grad(), h2.grad()), 2 * lim.hidden);
  EXPECT_LE(rel_err(w.grad(), w2.grad()), 2 * lim.weight);
  {
    torch::NoGradGuard ng;
    LossResult e = chunked_lm_loss(p.hidden, p.weight, p.labels, 6);
    EXPECT_FALSE(e.sum.requires_grad());
    // The same operations on the same chunks in the same order (the gradients come after the loss in
    // each chunk): bit for bit.
    EXPECT_EQ(e.sum.item<double>(), l.sum.item<double>());
  }
  at::Tensor targets = at::full({29}, -100, at::kLong);
  targets.narrow(0, 0, 28).copy_(p.labels[0].narrow(0, 1, 28));
  // Chunks of 4 rows against chunks of 6: the same sum in another grouping, each within the loss limit.
  const double s = nll_sum(p.hidden[0], p.weight, targets, 4).item<double>();
  EXPECT_NEAR(s, l.sum.item<double>(), 2 * lim.loss * s);
  EXPECT_EQ(l.count.item<int64_t>(), p.labels[0].narrow(0, 1, 28).ne(-100).sum().item<int64_t>());
}

// A non-finite hidden state makes the loss non-finite (the step's guard depends on it); a label out
// of the vocabulary is an error, not a crash.
TEST(LmLoss, NonFiniteAndBadLabels) {
  Problem p = make_problem(1, 9, 8, 31, at::kFloat);
  p.hidden.index_put_({0, 0, 2}, std::nan(""));  // row 0 predicts label 1, which counts
  EXPECT_FALSE(std::isfinite(chunked_lm_loss(p.hidden, p.weight, p.labels, 4).sum.item<double>()));
  Problem q = make_problem(1, 9, 8, 31, at::kFloat);
  q.labels.index_put_({0, 4}, 31);
  EXPECT_THROW(chunked_lm_loss(q.hidden, q.weight, q.labels, 4), c10::Error);
  EXPECT_THROW(chunked_lm_loss(q.hidden, q.weight, q.labels, 0), c10::Error);
  // The gradients are made once, in the forward pass: a second backward is refused, not zero.
  at::Tensor h = p.hidden.clone().requires_grad_(true);
  at::Tensor sum = chunked_lm_loss(h, p.weight, p.labels.masked_fill(p.labels.eq(-100), 0), 4).sum;
  sum.backward({}, /*retain_graph=*/true);
  EXPECT_THROW(sum.backward(), c10::Error);
}

}  // namespace
}  // namespace ropex::test
