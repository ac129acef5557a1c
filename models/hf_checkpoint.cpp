// HF directory <-> LlamaForCausalLM. See hf_checkpoint.h.
#include "models/hf_checkpoint.h"

#include "data/tokenizers/tokenizer_config.h"
#include "models/model_memory.h"

#include "trainer/log.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

namespace ropex {
namespace fs = std::filesystem;

st::DType to_st_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return st::DType::F32;
    case at::kBFloat16: return st::DType::BF16;
    case at::kHalf: return st::DType::F16;
    case at::kDouble: return st::DType::F64;
    case at::kLong: return st::DType::I64;
    case at::kInt: return st::DType::I32;
    case at::kShort: return st::DType::I16;
    case at::kChar: return st::DType::I8;
    case at::kByte: return st::DType::U8;
    case at::kBool: return st::DType::BOOL;
    default: throw std::invalid_argument(std::string("no safetensors dtype for ") + c10::toString(t));
  }
}

at::ScalarType from_st_dtype(st::DType d, const std::string& context) {
  switch (d) {
    case st::DType::F32: return at::kFloat;
    case st::DType::BF16: return at::kBFloat16;
    case st::DType::F16: return at::kHalf;
    case st::DType::F64: return at::kDouble;
    case st::DType::I64: return at::kLong;
    case st::DType::I32: return at::kInt;
    case st::DType::I16: return at::kShort;
    case st::DType::I8: return at::kChar;
    case st::DType::U8: return at::kByte;
    case st::DType::BOOL: return at::kBool;
    default: throw std::invalid_argument(context + ": dtype " + st::dtype_name(d) + " is not supported by ropex");
  }
}

at::Tensor tensor_from_st(const st::TensorInfo& info, const void* data, const std::string& context) {
  const at::ScalarType type = from_st_dtype(info.dtype, context);
  at::Tensor out = at::empty(info.shape, at::TensorOptions().dtype(type));
  const size_t bytes = static_cast<size_t>(info.end - info.begin);
  if (bytes) std::memcpy(out.data_ptr(), data, bytes);  // copy: the mapping may be unaligned
  return out;
}

namespace {
bool ignorable(const std::string& name) {
  // Old conversions carry rotary buffers; ropex recomputes frequencies from the config.
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}
}  // namespace

WeightReader::WeightReader(const std::string& dir) : files_(dir) {}

std::string WeightReader::where(const std::string& name) const {
  return files_.dir() + "/" + files_.file_of(name) + ": tensor '" + name + "'";
}

namespace {
// Elements [offset, offset + count) of a mapped tensor as a CPU tensor of its own dtype: a view of
// the mapping when the address suits the dtype, else a copy (safetensors does not align data).
at::Tensor mapped_stretch(const st::CheckpointReader& files, const std::string& name, const std::string& where,
                          int64_t offset, int64_t count, at::Tensor* buffer) {
  const st::TensorInfo& info = files.info(name);
  const at::ScalarType type = from_st_dtype(info.dtype, where);
  const size_t elem = c10::elementSize(type);
  const char* p = static_cast<const char*>(files.data(name)) + static_cast<size_t>(offset) * elem;
  if (reinterpret_cast<uintptr_t>(p) % elem == 0)
    return at::from_blob(const_cast<char*>(p), {count}, at::TensorOptions().dtype(type));
  *buffer = at::empty({count}, at::TensorOptions().dtype(type));
  if (count) std::memcpy(buffer->data_ptr(), p, static_cast<size_t>(count) * elem);
  return *buffer;
}
}  // namespace

void WeightReader::copy_into(const std::string& name, at::Tensor& dst) const {
  const st::TensorInfo& info = files_.info(name);
  at::Tensor buffer;
  const at::Tensor src = mapped_stretch(files_, name, where(name), 0, info.numel(), &buffer);
  torch::NoGradGuard no_grad;
  dst.copy_(src.view(dst.sizes()));
  files_.drop_pages(name);
}

at::Tensor WeightReader::read(const std::string& name, int64_t offset, int64_t count, at::ScalarType dtype) const {
  const st::TensorInfo& info = files_.info(name);
  if (offset < 0 || count < 0 || offset + count > info.numel())
    throw std::runtime_error(where(name) + ": elements [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                             ") asked of a tensor of " + std::to_string(info.numel()));
  at::Tensor buffer;
  at::Tensor out = at::empty({count}, at::TensorOptions().dtype(dtype));
  out.copy_(mapped_stretch(files_, name, where(name), offset, count, &buffer));
  files_.drop_pages(name);
  return out;
}

void load_weights(LlamaForCausalLM& model, const std::string& dir, const LoadOptions& opts) {
  load_weights(model, WeightReader(dir), opts);
}

std::vector<std::string> check_weights(LlamaForCausalLM& model, const WeightReader& weights, const LoadOptions& opts) {
  const st::CheckpointReader& reader = weights.files();
  const std::string& dir = reader.dir();
  std::set<std::string> remaining;
  for (const auto& n : reader.names())
    if (!ignorable(n)) remaining.insert(n);
  std::vector<std::string> missing, mismatched;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    if (!reader.contains(name)) { missing.push_back(name); continue; }
    remaining.erase(name);
    const st::TensorInfo& info = reader.info(name);
    const std::string where = weights.where(name);
    if (std::vector<int64_t>(param.sizes().begin(), param.sizes().end()) != info.shape) {
      mismatched.push_back(where + " has shape " + c10::str(c10::IntArrayRef(info.shape)) +
                           ", the config expects " + c10::str(param.sizes()));
      continue;
    }
    const at::ScalarType type = from_st_dtype(info.dtype, where);
    if (!at::isFloatingType(type))
      throw std::runtime_error(where + " has dtype " + st::dtype_name(info.dtype) + ", expected a floating-point weight");
  }
  // A tied model's checkpoint may still carry lm_head.weight (transformers keeps it in memory).
  if (model->config().tie_word_embeddings) remaining.erase("lm_head.weight");
  std::string problems;
  for (const auto& m : mismatched) problems += "\n  " + m;
  if (!missing.empty()) {
    problems += "\n  missing tensors (" + std::to_string(missing.size()) + "):";
    for (const auto& m : missing) problems += " " + m;
  }
  if (!remaining.empty()) {
    problems += "\n  unexpected tensors (" + std::to_string(remaining.size()) + "):";
    for (const auto& m : remaining) problems += " " + m;
  }
  if (!problems.empty()) {
    if (opts.strict || !mismatched.empty())
      throw std::runtime_error(dir + ": checkpoint does not match config.json:" + problems);
    log::warn(dir + ": non-strict load (missing tensors initialised as init_weights does):" + problems);
  }
  return missing;
}

void load_weights(LlamaForCausalLM& model, const WeightReader& weights, const LoadOptions& opts) {
  // Everything is checked before the first byte is copied.
  const std::vector<std::string> missing = check_weights(model, weights, opts);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(0);
  for (auto& item : model->named_parameters()) {
    if (std::find(missing.begin(), missing.end(), item.key()) == missing.end()) weights.copy_into(item.key(), item.value());
    else LlamaForCausalLMImpl::init_parameter(item.key(), item.value(), model->config().initializer_range, gen);
  }
}

LlamaForCausalLM make_checked_model(const LlamaConfig& cfg, const at::TensorOptions& options, const WeightReader* weights,
                                    const LoadOptions& opts, const std::string& source) {
  if (weights != nullptr) {
    LlamaForCausalLM shapes(cfg, at::TensorOptions(options).device(at::kMeta));
    check_weights(shapes, *weights, opts);
  }
  require_memory_for_parameters(cfg, options, source);
  return LlamaForCausalLM(cfg, options);
}

LlamaForCausalLM load_pretrained(const std::string& dir, const LoadOptions& opts) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": not a directory (expected a Hugging Face model directory)");
  LlamaConfig cfg = load_config((fs::path(dir) / "config.json").string());
  const WeightReader weights(dir);
  LlamaForCausalLM model = make_checked_model(cfg, at::TensorOptions().device(opts.device).dtype(opts.dtype), &weights, opts,
                                              (fs::path(dir) / "config.json").string());
  load_weights(model, weights, opts);
  model->eval();
  return model;
}

void save_pretrained(LlamaForCausalLM& model, const std::string& dir, const SaveOptions& opts) {
  fs::create_directories(dir);
  // Gather CPU copies in the target dtype; keep them alive while the writer reads them.
  std::vector<at::Tensor> owned;
  std::vector<st::TensorView> views;
  for (auto& item : model->named_parameters()) {
    at::Tensor t = item.value().detach().to(at::kCPU, opts.dtype).contiguous();
    owned.push_back(t);
    views.push_back({item.key(), to_st_dtype(t.scalar_type()),
                     std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), t.data_ptr()});
  }
  st::write_checkpoint(dir, views, opts.max_shard_bytes);
  LlamaConfig cfg = model->config();
  cfg.torch_dtype = dtype_name(opts.dtype);
  nlohmann::json j = config_to_json(cfg, opts.config);
  const fs::path cfg_path = fs::path(dir) / "config.json";
  const fs::path tmp = cfg_path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out) throw std::runtime_error(tmp.string() + ": write failed");
  }
  fs::rename(tmp, cfg_path);
  if (!opts.tokenizer_model.empty()) {
    if (!fs::is_regular_file(opts.tokenizer_model))
      throw std::runtime_error(opts.tokenizer_model + ": tokenizer not found");
    // tokenizer.json keeps its name (with tokenizer_config.json beside it); any other file is the
    // SentencePiece model, which transformers looks for as tokenizer.model.
    const bool hf = fs::path(opts.tokenizer_model).extension() == ".json";
    for (const fs::path& file : tokenizer_files(opts.tokenizer_model))
      fs::copy_file(file, fs::path(dir) / (file == fs::path(opts.tokenizer_model) && !hf ? fs::path("tokenizer.model") : file.filename()),
                    fs::copy_options::overwrite_existing);
  }
}

}  // namespace ropex
