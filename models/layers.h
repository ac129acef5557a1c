// The two parameterised building blocks of the Llama model, Linear (y = x W^T + b) and Embedding
// (a row lookup), with Hugging Face's parameter names (weight, bias) and torch::nn's call syntax.
// Unlike torch::nn's modules they are built directly where and in what dtype the model will compute
// (any at::TensorOptions) and are NOT initialised: a 7B model costs no host memory and no random
// init before its weights are streamed in (hf_checkpoint.h) or init_weights() fills them.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace ropex {

struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in_features, int64_t out_features, bool with_bias, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);  // [..., in] -> [..., out]
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out], undefined without bias
};
TORCH_MODULE(Linear);

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t num_embeddings, int64_t dim, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& ids);  // [...] int64 -> [..., dim]
  at::Tensor weight;  // [num_embeddings, dim]
};
TORCH_MODULE(Embedding);

}  // namespace ropex
