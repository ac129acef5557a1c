// The causal LM loss, plain and chunked. See lm_loss.h.
#include "models/lm_loss.h"

#include <torch/autograd.h>

namespace ropex {
namespace {
constexpr int64_t kIgnore = -100;

// The loss is computed in float32, or in float64 for a float64 model.
at::ScalarType loss_dtype(at::ScalarType compute) { return at::promote_types(compute, at::kFloat); }

// Targets of the flattened [B*T] rows: row (b, t) predicts labels[b, t+1]; the last row of each
// sequence predicts nothing (-100). The hidden states then need no copy: [B, T, H] -> [B*T, H].
at::Tensor shifted_targets(const at::Tensor& labels) {
  const int64_t B = labels.size(0), T = labels.size(1);
  at::Tensor t = at::full({B, T}, kIgnore, labels.options().dtype(at::kLong));  // [B, T]
  t.narrow(1, 0, T - 1).copy_(labels.narrow(1, 1, T - 1));
  return t.reshape({B * T});  // [B*T]
}

// One chunk of rows: h [n, H] in the compute dtype, targets t [n]. Returns the chunk's loss, summed
// over rows whose target is not -100, as a float32 scalar (float64 for a float64 model). With grad_h
// ([n, H], written) and/or grad_w ([V, H] in the loss dtype, accumulated), also that chunk's
// gradients of the summed loss.
at::Tensor chunk_loss(const at::Tensor& h, const at::Tensor& w, const at::Tensor& t, at::Tensor* grad_h,
                      at::Tensor* grad_w) {
  const at::ScalarType acc = loss_dtype(h.scalar_type());
  at::Tensor z = at::linear(h, w).to(acc);                              // [n, V] float32 logits
  const at::Tensor valid = t.ne(kIgnore);                               // [n]
  const at::Tensor index = t.masked_fill(valid.logical_not(), 0).unsqueeze(1);  // [n, 1]
  const at::Tensor target_logit = z.gather(1, index).squeeze(1);       // [n] (a copy)
  const at::Tensor max = z.amax(1, /*keepdim=*/true);                   // [n, 1]
  z.sub_(max).exp_();                                                   // [n, V] exp(z - max), in place
  const at::Tensor denom = z.sum(1, /*keepdim=*/true);                  // [n, 1]
  const at::Tensor lse = denom.log().add_(max).squeeze(1);              // [n] logsumexp(z)
  const at::Tensor loss = at::where(valid, lse - target_logit, at::zeros({}, lse.options())).sum();
  if (grad_h || grad_w) {
    // d loss / d z = softmax(z) - onehot(target) on rows that count, 0 on the others.
    const at::Tensor keep = valid.unsqueeze(1).to(acc);                 // [n, 1]
    z.div_(denom).scatter_add_(1, index, keep.neg()).mul_(keep);        // [n, V]
    const at::Tensor g = z.to(h.scalar_type());                         // [n, V] compute dtype
    if (grad_h) at::mm_out(*grad_h, g, w);                              // [n, H]
    if (grad_w) {                                                       // [V, H] += g^T h
      if (h.scalar_type() == acc) grad_w->addmm_(g.t(), h);
      else grad_w->add_(at::mm(g.t(), h));
    }
  }
  return loss;
}

// chunk_loss over rows [0, N) `chunk` at a time: the summed loss in float64 (a scalar on hidden's
// device), and the gradients into grad_h ([N, H], written row chunk by row chunk) and grad_w when given.
at::Tensor chunked_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets, int64_t chunk,
                       at::Tensor* grad_h, at::Tensor* grad_w) {
  at::Tensor total = at::zeros({}, hidden.options().dtype(at::kDouble));
  for (int64_t s = 0; s < hidden.size(0); s += chunk) {
    const int64_t n = std::min(chunk, hidden.size(0) - s);
    at::Tensor rows = grad_h ? grad_h->narrow(0, s, n) : at::Tensor();
    total += chunk_loss(hidden.narrow(0, s, n), weight, targets.narrow(0, s, n), grad_h ? &rows : nullptr, grad_w);
  }
  return total;
}

// The lm_head and the loss over chunks of rows, as one autograd node. The forward pass computes the
// gradients of the summed loss chunk by chunk (so no chunk's logits outlive it, and none is made
// twice); backward scales them by the incoming gradient (a scalar) and hands them over.
struct ChunkedLinearCrossEntropy : torch::autograd::Function<ChunkedLinearCrossEntropy> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk, bool want_h, bool want_w) {
    const at::ScalarType acc = loss_dtype(hidden.scalar_type());
    at::Tensor grad_h = want_h ? at::empty_like(hidden) : at::Tensor();                                  // [N, H]
    at::Tensor grad_w = want_w ? at::zeros(weight.sizes(), weight.options().dtype(acc)) : at::Tensor();  // [V, H]
    const at::Tensor total =
        chunked_sum(hidden, weight, targets, chunk, want_h ? &grad_h : nullptr, want_w ? &grad_w : nullptr);
    if (want_h) ctx->saved_data["grad_h"] = grad_h;
    if (want_w) ctx->saved_data["grad_w"] = grad_w;
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    return total.to(acc);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const at::Tensor g = grad_out[0];  // scalar, in the loss dtype: d(final loss) / d(summed loss)
    TORCH_CHECK(!ctx->saved_data.count("handed_over"),
                "chunked_lm_loss: backward may run once (its gradients were made in the forward pass and handed over); "
                "retain_graph and double backward are not supported");
    ctx->saved_data["handed_over"] = true;
    // Taken out of the context, so they are freed with their last use, not with the graph.
    auto take = [&](const char* key) {
      auto it = ctx->saved_data.find(key);
      if (it == ctx->saved_data.end()) return at::Tensor();
      at::Tensor t = it->second.toTensor();
      ctx->saved_data.erase(it);
      return t;
    };
    at::Tensor grad_h = take("grad_h"), grad_w = take("grad_w");
    // Scaled in float32, then rounded (a bfloat16 hidden-state gradient is so rounded twice, once in
    // the forward's product and once here: one unit of bfloat16 rounding more than the plain path,
    // which scales before its cast); a bfloat16 copy of g instead would scale every element by the
    // same rounding error. Row chunks keep the float32 temporary small.
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    for (int64_t s = 0; grad_h.defined() && s < grad_h.size(0); s += chunk) {
      at::Tensor rows = grad_h.narrow(0, s, std::min(chunk, grad_h.size(0) - s));
      if (rows.scalar_type() == g.scalar_type()) rows.mul_(g);
      else rows.copy_(rows.to(g.scalar_type()).mul_(g));
    }
    if (grad_w.defined()) grad_w = grad_w.mul_(g).to(static_cast<at::ScalarType>(ctx->saved_data["weight_dtype"].toInt()));
    return {grad_h, grad_w, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

LossResult causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels) {
  const int64_t V = logits.size(-1), T = logits.size(1);
  at::Tensor pred = logits.narrow(1, 0, T - 1).reshape({-1, V}).to(loss_dtype(logits.scalar_type()));  // [(B*(T-1)), V]
  at::Tensor target = labels.narrow(1, 1, T - 1).reshape({-1});
  at::Tensor sum = at::cross_entropy_loss(pred, target, {}, at::Reduction::Sum, kIgnore);
  at::Tensor count = target.ne(kIgnore).sum();
  return {sum / count.clamp_min(1), sum, count};
}

LossResult chunked_lm_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                           int64_t chunk_tokens) {
  TORCH_CHECK(chunk_tokens >= 1, "chunked_lm_loss: chunk_tokens must be >= 1, got ", chunk_tokens);
  TORCH_CHECK(hidden.dim() == 3 && labels.dim() == 2 && hidden.size(0) == labels.size(0) && hidden.size(1) == labels.size(1),
              "chunked_lm_loss: hidden [B, T, H] and labels [B, T] expected, got ", hidden.sizes(), " and ", labels.sizes());
  const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2);
  const at::Tensor targets = shifted_targets(labels);  // [B*T]
  // Which gradients are wanted is decided here: inside the node's forward autograd is off.
  const bool grad = at::GradMode::is_enabled();
  at::Tensor sum = ChunkedLinearCrossEntropy::apply(hidden.reshape({B * T, H}), weight, targets, chunk_tokens,
                                                    grad && hidden.requires_grad(), grad && weight.requires_grad());
  at::Tensor count = targets.ne(kIgnore).sum();
  return {sum / count.clamp_min(1), sum, count};
}

at::Tensor nll_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets, int64_t chunk_tokens) {
  TORCH_CHECK(chunk_tokens >= 1, "nll_sum: chunk_tokens must be >= 1, got ", chunk_tokens);
  torch::NoGradGuard no_grad;
  return chunked_sum(hidden, weight, targets, chunk_tokens, nullptr, nullptr);
}

LossResult lm_loss(LlamaForCausalLM& model, const at::Tensor& input_ids, const at::Tensor& position_ids,
                   const at::Tensor& labels, const ForwardOptions& fo) {
  if (fo.loss_chunk_tokens <= 0) return causal_lm_loss(model->forward(input_ids, position_ids, fo), labels);
  return chunked_lm_loss(model->hidden_states(input_ids, position_ids, fo), model->lm_head_weight(), labels,
                         fo.loss_chunk_tokens);
}

}  // namespace ropex
