// Causal self-attention kernels behind one interface: a plain reference path (float32 scores,
// explicit mask, softmax in float32, repeated KV heads for GQA) and at::scaled_dot_product_attention
// (flash / memory-efficient / math backends chosen by ATen, GQA native). This is the only file that
// calls SDPA, so a LibTorch upgrade touches it alone.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace ropex {

enum class AttentionBackend { reference, sdpa };
AttentionBackend parse_attention_backend(const std::string& name);  // "reference" | "sdpa"
const char* attention_backend_name(AttentionBackend b);

// q: [B, Hq, Tq, D]; k, v: [B, Hkv, Tk, D] with Hq % Hkv == 0. Causal with the queries aligned to
// the END of the keys (query i sees keys 0 .. Tk - Tq + i), which is plain causal when Tq == Tk and
// the right rule when earlier keys come from a cache. sliding_window W > 0 also limits query i to
// the W keys ending at its own (key index > query index - W, transformers' sliding-window rule for
// Mistral); 0 = none. Returns [B, Hq, Tq, D] in q's dtype.
at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                            AttentionBackend backend, int64_t sliding_window = 0);

}  // namespace ropex
