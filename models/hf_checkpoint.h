// The one adapter between Hugging Face Llama directories and ropex's model: load_pretrained reads
// config.json + safetensors (single or sharded) with a strict key check; save_pretrained writes the
// same layout (config.json, safetensors shards + index, tokenizer.model if given) so transformers
// loads it. Tensor names are the module names (llama.h), so loading and export are copies.
#pragma once
#include "models/llama.h"
#include "models/safetensors.h"

#include <string>
#include <vector>

namespace ropex {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  bool strict = true;  // missing or unexpected tensors are errors (else warnings)
};

// Loads DIR/config.json and DIR's weights. Errors name the directory, file and tensor.
LlamaForCausalLM load_pretrained(const std::string& dir, const LoadOptions& opts = {});
// Loads weights into an existing model (its config must match the checkpoint's shapes).
void load_weights(LlamaForCausalLM& model, const std::string& dir, const LoadOptions& opts = {});

struct SaveOptions {
  uint64_t max_shard_bytes = 0;       // 0 = one file
  at::ScalarType dtype = at::kFloat;  // dtype of the written tensors (config's torch_dtype follows)
  ConfigWriteOptions config;
  std::string tokenizer_model;        // copied to DIR/tokenizer.model when non-empty
};
void save_pretrained(LlamaForCausalLM& model, const std::string& dir, const SaveOptions& opts = {});

// at::ScalarType <-> safetensors dtype.
st::DType to_st_dtype(at::ScalarType t);
at::ScalarType from_st_dtype(st::DType d, const std::string& context);
// A CPU tensor holding a copy of a safetensors tensor (aligned, owned).
at::Tensor tensor_from_st(const st::TensorInfo& info, const void* data, const std::string& context);

}  // namespace ropex
