// Atomic checkpoints, resume and export. See checkpoint.h.
#include "trainer/checkpoint.h"

#include "models/hf_checkpoint.h"
#include "trainer/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

namespace ropex {
namespace fs = std::filesystem;

namespace {
const char* kComplete = "COMPLETE";

void write_json_file(const fs::path& path, const nlohmann::json& j) {
  {
    std::ofstream out(path);
    out << j.dump(2) << "\n";
    if (!out) throw std::runtime_error(path.string() + ": write failed (disk full?)");
  }
  fsync_path(path.string());
}

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
}

void write_tensors(const fs::path& path, const std::map<std::string, at::Tensor>& tensors) {
  std::vector<st::TensorView> views;
  for (const auto& [name, t] : tensors)
    views.push_back({name, to_st_dtype(t.scalar_type()), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), t.data_ptr()});
  st::write_file(path.string(), views);
}

// `count` elements of tensor `name` from element `offset` of its flattened form, as float32, copied
// out of the mapping (only those bytes are touched).
at::Tensor read_slice(const st::SafetensorsFile& f, const std::string& name, at::IntArrayRef shape, int64_t offset,
                      int64_t count) {
  const st::TensorInfo* info = f.find(name);
  if (!info) throw std::runtime_error(f.path() + ": lacks '" + name + "' (optimizer state)");
  if (at::IntArrayRef(info->shape) != shape)
    throw std::runtime_error(f.path() + ": '" + name + "' has shape " + c10::str(at::IntArrayRef(info->shape)) +
                             ", the model expects " + c10::str(shape));
  if (offset < 0 || count < 0 || offset + count > info->numel())
    throw std::logic_error("read_slice: stretch outside '" + name + "'");
  if (info->dtype != st::DType::F32)  // not written by ropex; convert the whole tensor
    return tensor_from_st(*info, f.data(*info), f.path()).reshape({-1}).narrow(0, offset, count).to(at::kFloat).clone();
  at::Tensor out = at::empty({count}, at::TensorOptions().dtype(at::kFloat));
  if (count) std::memcpy(out.data_ptr(), static_cast<const char*>(f.data(*info)) + offset * 4, static_cast<size_t>(count) * 4);
  return out;
}

fs::path ckpt_root(const std::string& run_dir) { return fs::path(run_dir) / "checkpoints"; }

std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path root = ckpt_root(run_dir);
  if (!fs::is_directory(root)) return out;
  static const std::regex pattern("step_([0-9]{8,})");
  for (const auto& e : fs::directory_iterator(root)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, pattern) && fs::exists(e.path() / kComplete))
      out.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The model facts a resume must agree on.
nlohmann::json shape_of(const LlamaConfig& c) {
  nlohmann::json j = config_to_json(c, {.legacy_linear = false, .with_rope_parameters = false});
  nlohmann::json out;
  for (const char* k : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "max_position_embeddings", "rope_theta", "rope_scaling", "tie_word_embeddings"})
    out[k] = j[k];
  return out;
}
}  // namespace

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(path + ": cannot open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path + ": fsync failed");
}

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

LlamaConfig hf_loadable(LlamaConfig c) {
  const int64_t D = c.resolved_head_dim();
  if (c.rope.type == "ntk") {  // exactly the default rope with a stretched base
    c.rope_theta *= std::pow(c.rope.factor, static_cast<double>(D) / static_cast<double>(D - 2));
    c.rope = RopeScaling{};
  } else if (c.rope.type == "dynamic-yarn") {  // static yarn at the trained scale
    const double target = static_cast<double>(c.max_position_embeddings) / c.rope.original_max_position_embeddings;
    c.rope.type = "yarn";
    c.rope.factor = std::max(c.rope.factor, target);
  }
  return c;
}

std::string save_checkpoint(Distributed& dist, const std::string& run_dir, LlamaForCausalLM& model, DataParallelOptimizer& opt,
                            const Loader& loader, const TrainerState& state, const nlohmann::json& run_config,
                            const std::string& tokenizer_model, int64_t keep_last) {
  const fs::path root = ckpt_root(run_dir);
  const fs::path final_dir = root / checkpoint_name(state.step);
  const fs::path partial = root / ("." + checkpoint_name(state.step) + ".partial");
  if (dist.is_main()) {
    fs::create_directories(root);
    fs::remove_all(partial);  // a leftover of an interrupted save of the same step
    fs::create_directories(partial);
  }
  dist.barrier();
  // Every rank's loader state (CREAM's coin counter is per rank).
  write_json_file(partial / ("rank_" + std::to_string(dist.rank()) + ".json"), loader.state());
  dist.barrier();
  // Collective: sharded state is gathered to rank 0 (empty on the other ranks).
  std::map<std::string, at::Tensor> all = opt.gather_state();
  dist.run_on_main([&] {
    std::map<std::string, at::Tensor> weights, moments;
    for (auto& [k, t] : all) {
      if (k.rfind("master.", 0) == 0) weights[k.substr(7)] = t;
      else moments[k] = t;
    }
    write_tensors(partial / "model.safetensors", weights);
    write_tensors(partial / "optimizer.safetensors", moments);
    // Fault injection for the crash-safety test: ROPEX_FAULT_INJECT=kill-in-checkpoint:STEP.
    if (const char* f = std::getenv("ROPEX_FAULT_INJECT"); f && std::string(f) == "kill-in-checkpoint:" + std::to_string(state.step))
      std::raise(SIGKILL);
    write_json_file(partial / "config.json", config_to_json(model->config(), {.legacy_linear = false, .with_rope_parameters = false,
                                                                              .allow_ropex_types = true}));
    write_json_file(partial / "trainer_state.json",
                    {{"step", state.step}, {"tokens_seen", state.tokens_seen}, {"world_size", state.world},
                     {"seed", state.seed}, {"format", "ropex-checkpoint"}, {"version", 1}});
    write_json_file(partial / "run_config.json", run_config);
    if (!tokenizer_model.empty() && fs::is_regular_file(tokenizer_model)) {
      fs::copy_file(tokenizer_model, partial / "tokenizer.model");
      fsync_path((partial / "tokenizer.model").string());
    }
    { std::ofstream(partial / kComplete) << state.step << "\n"; }
    fsync_path((partial / kComplete).string());
    fsync_path(partial.string());
    // The same step saved again (a resumed run): move the old one aside first, so that at every
    // moment one complete copy exists.
    const fs::path old = root / ("." + checkpoint_name(state.step) + ".old");
    if (fs::exists(final_dir)) {
      fs::remove_all(old);
      fs::rename(final_dir, old);
    }
    fs::rename(partial, final_dir);
    fsync_path(root.string());
    fs::remove_all(old);
    // Keep keep_last checkpoints: this one and the newest older ones. Newer ones (left by a run
    // that was resumed from an earlier step) are never deleted here.
    std::vector<fs::path> older;
    for (const auto& [step, path] : complete_checkpoints(run_dir))
      if (step < state.step) older.push_back(path);
    for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(keep_last - 1, 0)) < older.size(); ++i) fs::remove_all(older[i]);
  }, std::chrono::hours(4));
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

TrainerState load_checkpoint(const std::string& dir, Distributed& dist, LlamaForCausalLM& model, DataParallelOptimizer& opt,
                             Loader& loader) {
  const fs::path d(dir);
  if (!fs::exists(d / kComplete))
    throw std::runtime_error(dir + ": not a complete checkpoint (no COMPLETE marker); refusing to resume from it");
  nlohmann::json ts = read_json_file(d / "trainer_state.json");
  TrainerState state;
  state.step = ts.at("step").get<int64_t>();
  state.tokens_seen = ts.at("tokens_seen").get<int64_t>();
  state.world = ts.at("world_size").get<int>();
  state.seed = ts.at("seed").get<uint64_t>();
  if (state.world != dist.world())
    throw std::runtime_error(dir + ": written by " + std::to_string(state.world) + " ranks, this run has " +
                             std::to_string(dist.world()) + "; resuming on another world size is not supported "
                             "(the data order and per-rank sampler state depend on it)");
  const LlamaConfig saved = load_config((d / "config.json").string());
  const nlohmann::json a = shape_of(saved), b = shape_of(model->config());
  for (const auto& [k, v] : b.items())
    if (a[k] != v)
      throw std::runtime_error(dir + ": checkpoint has " + k + " = " + a[k].dump() + " but this run's model has " + v.dump() +
                               "; refusing to resume a different model");
  const st::SafetensorsFile masters((d / "model.safetensors").string()), moments((d / "optimizer.safetensors").string());
  opt.load_state(
      [&](const std::string& key, at::IntArrayRef shape, int64_t offset, int64_t count) {
        const bool master = key.rfind("master.", 0) == 0;
        return read_slice(master ? masters : moments, master ? key.substr(7) : key, shape, offset, count);
      },
      state.step);
  const fs::path rank_file = d / ("rank_" + std::to_string(dist.rank()) + ".json");
  loader.load_state(read_json_file(rank_file));
  return state;
}

void export_checkpoint(const std::string& checkpoint_dir, const std::string& out_dir, uint64_t max_shard_bytes,
                       at::ScalarType dtype) {
  if (!fs::exists(fs::path(checkpoint_dir) / kComplete))
    throw std::runtime_error(checkpoint_dir + ": not a complete ropex checkpoint (no COMPLETE marker)");
  LlamaForCausalLM model = load_pretrained(checkpoint_dir);
  LlamaConfig hf = hf_loadable(model->config());
  LlamaForCausalLM out(hf);
  {
    torch::NoGradGuard ng;
    auto src = model->named_parameters();
    for (auto& p : out->named_parameters()) p.value().copy_(src[p.key()]);
  }
  SaveOptions so;
  so.max_shard_bytes = max_shard_bytes;
  so.dtype = dtype;
  const fs::path tok = fs::path(checkpoint_dir) / "tokenizer.model";
  if (fs::exists(tok)) so.tokenizer_model = tok.string();
  save_pretrained(out, out_dir, so);
}

}  // namespace ropex
