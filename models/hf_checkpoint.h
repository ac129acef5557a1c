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

// A Hugging Face directory's weights, memory-mapped, read one tensor (or one stretch of one) at a
// time; the pages a read touched are released after it, so reading costs no more host memory than
// the one tensor being converted.
class WeightReader {
 public:
  explicit WeightReader(const std::string& dir);
  // Copies tensor `name` into `dst` (any device and floating dtype, same shape): from the mapping
  // when it is aligned for its dtype, else through one host buffer of its size.
  void copy_into(const std::string& name, at::Tensor& dst) const;
  // Elements [offset, offset + count) of tensor `name` flattened, as a 1-D CPU tensor of `dtype`.
  at::Tensor read(const std::string& name, int64_t offset, int64_t count, at::ScalarType dtype) const;
  const st::CheckpointReader& files() const { return files_; }
  std::string where(const std::string& name) const;  // "DIR/FILE: tensor 'NAME'"

 private:
  st::CheckpointReader files_;
};

// A model for `cfg` with `options`, made only after its shapes were checked against `weights` (when
// given; on the meta device, so nothing is allocated) and its parameters were found to fit in the
// host's available memory (models/model_memory.h). `source` names the config in errors.
LlamaForCausalLM make_checked_model(const LlamaConfig& cfg, const at::TensorOptions& options, const WeightReader* weights,
                                    const LoadOptions& opts, const std::string& source);
// Loads DIR/config.json and DIR's weights, tensor by tensor, straight into parameters made on
// opts.device in opts.dtype: host memory holds no copy of the model. Errors name the directory,
// file and tensor.
LlamaForCausalLM load_pretrained(const std::string& dir, const LoadOptions& opts = {});
// Loads weights into an existing model (its config must match the checkpoint's shapes), tensor by
// tensor into the parameters as they are (device, dtype). Non-strict: tensors the directory lacks
// are initialised as init_weights would (seed 0) and reported.
void load_weights(LlamaForCausalLM& model, const std::string& dir, const LoadOptions& opts = {});
void load_weights(LlamaForCausalLM& model, const WeightReader& weights, const LoadOptions& opts = {});
// The checks of load_weights without the copy (the model may live on the meta device): throws on a
// shape, dtype or (when strict) name mismatch; returns the parameters the directory lacks.
std::vector<std::string> check_weights(LlamaForCausalLM& model, const WeightReader& weights, const LoadOptions& opts = {});

struct SaveOptions {
  uint64_t max_shard_bytes = 0;       // 0 = one file
  at::ScalarType dtype = at::kFloat;  // dtype of the written tensors (config's torch_dtype follows)
  ConfigWriteOptions config;
  std::string tokenizer_model;        // non-empty: copied in (a .model as tokenizer.model, tokenizer.json with its companions)
};
void save_pretrained(LlamaForCausalLM& model, const std::string& dir, const SaveOptions& opts = {});

// at::ScalarType <-> safetensors dtype.
st::DType to_st_dtype(at::ScalarType t);
at::ScalarType from_st_dtype(st::DType d, const std::string& context);
// A CPU tensor holding a copy of a safetensors tensor (aligned, owned).
at::Tensor tensor_from_st(const st::TensorInfo& info, const void* data, const std::string& context);

}  // namespace ropex
