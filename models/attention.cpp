// Reference and SDPA causal attention. See attention.h.
#include "models/attention.h"

#include <limits>
#include <stdexcept>

namespace ropex {

AttentionBackend parse_attention_backend(const std::string& name) {
  if (name == "reference") return AttentionBackend::reference;
  if (name == "sdpa") return AttentionBackend::sdpa;
  throw std::invalid_argument("unknown attention backend '" + name + "' (expected 'sdpa' or 'reference')");
}

const char* attention_backend_name(AttentionBackend b) {
  return b == AttentionBackend::reference ? "reference" : "sdpa";
}

namespace {
// [Tq, Tk] boolean, true where query i may attend key j (bottom-right aligned causal; with a window
// W > 0 also j > i - W, i the query's index among the keys).
at::Tensor causal_mask(int64_t tq, int64_t tk, const at::Device& device, int64_t window = 0) {
  at::Tensor qi = at::arange(tq, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(1) + (tk - tq);
  at::Tensor kj = at::arange(tk, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(0);
  at::Tensor mask = kj <= qi;
  if (window > 0) mask = mask.logical_and(kj > qi - window);
  return mask;
}

at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale, int64_t window) {
  const int64_t groups = q.size(1) / k.size(1);
  at::Tensor kf = k.to(at::kFloat), vf = v.to(at::kFloat);
  if (groups > 1) {  // [B, Hkv, T, D] -> [B, Hq, T, D], head h uses kv head h / groups
    kf = kf.repeat_interleave(groups, 1);
    vf = vf.repeat_interleave(groups, 1);
  }
  at::Tensor scores = at::matmul(q.to(at::kFloat), kf.transpose(-2, -1)) * scale;  // [B, Hq, Tq, Tk]
  scores = scores.masked_fill(causal_mask(q.size(2), k.size(2), q.device(), window).logical_not(),
                              -std::numeric_limits<float>::infinity());
  at::Tensor probs = at::softmax(scores, -1);
  return at::matmul(probs, vf).to(q.scalar_type());
}

at::Tensor sdpa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale, int64_t window) {
  const int64_t tq = q.size(2), tk = k.size(2);
  std::optional<at::Tensor> mask;
  bool is_causal = true;
  if (window > 0 && window < tk) {  // the window cuts keys off: an explicit mask (no flash kernel)
    is_causal = false;
    mask = causal_mask(tq, tk, q.device(), window);
  } else if (tq != tk) {  // SDPA's is_causal is top-left aligned; pass the explicit mask for cached keys
    is_causal = false;
    if (tq > 1) mask = causal_mask(tq, tk, q.device());
  }
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, is_causal, scale,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}
}  // namespace

at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                            AttentionBackend backend, int64_t sliding_window) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects [B, H, T, D] tensors");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads (", q.size(1), ") must be a multiple of kv heads (", k.size(1), ")");
  TORCH_CHECK(sliding_window >= 0, "sliding_window must be >= 0, got ", sliding_window);
  return backend == AttentionBackend::reference ? reference_attention(q, k, v, scale, sliding_window)
                                                : sdpa_attention(q, k, v, scale, sliding_window);
}

}  // namespace ropex
