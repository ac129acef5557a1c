// The causal language-model loss: next-token cross entropy (labels = input_ids, shifted inside:
// the output at position t predicts labels[:, t+1]; labels of -100 are ignored), in float32
// (float64 for a float64 model).
//
// Two paths with one result:
//   causal_lm_loss(logits, labels)   the plain reference: the whole [B, T, V] logits, cast to
//                                    float32, log-softmax kept for backward (about 12·B·T·V bytes
//                                    at the log-softmax backward; bench/MEMORY.md).
//   chunked_lm_loss(hidden, W, ...)  lm_head and loss together, `chunk_tokens` rows at a time: a
//                                    chunk's logits are made, reduced to its loss and, when a
//                                    gradient is wanted, turned at once into that chunk's share of
//                                    the gradients of the hidden states and of W; then they are
//                                    freed. At most one chunk's [chunk, V] logits (and one float32
//                                    copy) exist at a time; what is kept for backward is the
//                                    hidden-state gradient [N, H] and a float32 W-gradient [V, H].
//   lm_loss(model, ...)              runs the model and picks the path (ForwardOptions::loss_chunk_tokens).
//
// The gradients of the chunked path are those of the plain one up to rounding: the same products,
// summed over chunks in float32 (tests/test_lm_loss.cpp, and against transformers in
// tests/test_hf_parity.cpp). Everything stays on the hidden states' device: no host
// synchronisation. What this does not do: label smoothing, z-loss, or a second derivative.
#pragma once
#include "models/llama.h"

namespace ropex {

struct LossResult {
  at::Tensor mean;   // scalar float32 (float64 for a float64 model): sum / max(count, 1)
  at::Tensor sum;    // scalar, the same dtype: summed over the labels that are not -100
  at::Tensor count;  // scalar int64: labels that are not -100
};

// The reference path, from logits [B, T, V] and labels [B, T].
LossResult causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels);

// The chunked path, from the final hidden states [B, T, H] (after the final norm), the lm_head
// weight [V, H] and labels [B, T]. chunk_tokens >= 1 rows of the flattened [B*T, H] per chunk.
LossResult chunked_lm_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                           int64_t chunk_tokens);

// Sum of -log p(targets[i] | hidden[i]) over the rows of hidden [N, H] whose target is not -100,
// chunk_tokens rows at a time: each chunk summed in the loss dtype, the chunks in float64 (a float64
// scalar on hidden's device). No gradient: evaluation.
at::Tensor nll_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets, int64_t chunk_tokens);

// The model's loss on (input_ids, position_ids) against labels: chunked when
// fo.loss_chunk_tokens > 0, else the reference path through the full logits.
LossResult lm_loss(LlamaForCausalLM& model, const at::Tensor& input_ids, const at::Tensor& position_ids,
                   const at::Tensor& labels, const ForwardOptions& fo);

}  // namespace ropex
