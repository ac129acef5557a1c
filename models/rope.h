// Rotary position embeddings: frequency scaling (config -> inv_freq, attention factor) and its
// application (position ids -> cos/sin -> rotate q and k in the rotate_half layout).
//
// Frequencies are a pure function of the config (and, for the dynamic types, of the current
// sequence length = max(position_ids) + 1). The float32 arithmetic mirrors transformers'
// ROPE_INIT_FUNCTIONS op for op so inv_freq agrees to the last ulps. Angles are computed from the
// explicit position ids each call: there is no cached table that caps the target length.
// Does not know about samplers (data/positions.h) or attention.
#pragma once
#include "models/llama_config.h"

#include <ATen/ATen.h>

namespace ropex {

struct RopeParams {
  at::Tensor inv_freq;            // [head_dim/2] float32, CPU
  double attention_factor = 1.0;  // multiplies cos and sin (so attention logits scale by its square)
};

// seq_len is the runtime length for the dynamic types (ignored by the static ones); 0 = at init
// (transformers' seq_len=None: max_position_embeddings for dynamic, base frequencies for dynamic-yarn,
// the short factors for longrope).
RopeParams compute_rope_params(const LlamaConfig& cfg, int64_t seq_len = 0);

// True for the types whose frequencies depend on the runtime length (longrope switches from its
// short to its long factors once the length exceeds original_max_position_embeddings).
inline bool rope_is_dynamic(const RopeScaling& r) {
  return r.type == "dynamic" || r.type == "dynamic-yarn" || r.type == "longrope";
}

// cos/sin for position ids [B, T] (int64): each [B, T, head_dim] in `dtype`, angles in float32
// (the outer product position x inv_freq is done in float32 as transformers does, then cast).
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const RopeParams& params, const at::Tensor& position_ids,
                                               at::ScalarType dtype);

// x: [B, heads, T, head_dim]; cos/sin: [B, T, head_dim]. Returns x*cos + rotate_half(x)*sin.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// rotate_half([x1, x2]) = [-x2, x1] over the last dimension's halves.
at::Tensor rotate_half(const at::Tensor& x);

}  // namespace ropex
