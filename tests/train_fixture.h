// The tiny training setup the end-to-end tests share (test_train.cpp, test_checkpoint.cpp): a
// model (hidden 32, 2 layers, window 32), its tokenizer and token store and a run config, built in a
// temp dir; launching 1..3 Gloo ranks of `ropex train`; reading metrics and checkpoints back.
#pragma once
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "tests/test_util.h"
#include "trainer/checkpoint_format.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ropex::test {
namespace fs = std::filesystem;

// Model (hidden 32, 2 layers, window 32), tokenizer and token store in a temp dir.
struct TinySetup {
  TempDir dir{"train"};
  TinySetup() {
    std::ofstream corpus(dir.path / "corpus.txt");
    for (int d = 0; d < 40; ++d) {
      for (int s = 0; s < 12; ++s)
        corpus << "Document " << d << " sentence " << s << ": the " << (s % 3 ? "quick" : "slow") << " fox number "
               << (d * 31 + s * 7) % 97 << " jumps over " << (s % 2 ? "lazy" : "busy") << " dogs. ";
      corpus << "\n\n";
    }
    corpus.close();
    TokenizerTrainOptions to;
    to.vocab_size = 320;
    Tokenizer::train({(dir.path / "corpus.txt").string()}, (dir.path / "tok").string(), to);
    int rc = run("new-model --output " + model() + " --tokenizer " + (dir.path / "tok.model").string() +
                 " --set hidden_size=32 --set intermediate_size=64 --set num_hidden_layers=2 --set num_attention_heads=4"
                 " --set num_key_value_heads=2 --set max_position_embeddings=32");
    if (rc != 0) throw std::runtime_error("new-model failed");
    rc = run("prepare --tokenizer " + (dir.path / "tok.model").string() + " --input " + (dir.path / "corpus.txt").string() +
             " --output " + store() + " --txt-split blank_line");
    if (rc != 0) throw std::runtime_error("prepare failed");
    // The run config the end-to-end tests share: lr and weight decay are what the tiny model trains
    // with (a loss that visibly falls in 8 steps), not tolerances; limits come from tests/tolerance.h.
    std::ofstream cfg(config());
    cfg << R"({"model": {"path": ")" << model() << R"(", "device": "cpu", "dtype": "float32"},
      "data": {"store": ")" << store() << R"(", "train_len": 32},
      "rope": {"type": "linear", "target_len": 128},
      "sampler": {"name": "cream", "cream_mode": "relativity"},
      "optim": {"lr": 3e-3, "weight_decay": 0.01},
      "schedule": {"type": "cosine", "warmup_steps": 2, "steps": 8},
      "batch": {"micro_batch_size": 2, "grad_accum": 2},
      "checkpoint": {"every": 2, "keep_last": 10},
      "export": {"dtype": "float32", "max_shard_size": "20KB"},
      "logging": {"progress": "off", "picture": false}})";
  }
  std::string model() const { return (dir.path / "model").string(); }
  std::string store() const { return (dir.path / "store").string(); }
  std::string config() const { return (dir.path / "run.json").string(); }
  std::string out_text;
  int run(const std::string& args, const std::string& env = "") {
    return run_command(env + " '" + ropex_binary() + "' " + args, &out_text);
  }
  int train(const std::string& run_dir, const std::string& sets, const std::string& env = "") {
    return run("train " + config() + " --set run.output_dir=" + run_dir + " " + sets, env);
  }
};

inline std::vector<nlohmann::json> metrics(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// An HF directory's weights (model.safetensors), or a training checkpoint's float32 master weights
// under their HF names.
inline std::map<std::string, at::Tensor> weights(const std::string& dir) {
  std::map<std::string, at::Tensor> out;
  if (!fs::exists(dir + "/manifest.json")) {
    st::SafetensorsFile f(dir + "/model.safetensors");
    for (const auto& i : f.tensors()) out[i.name] = tensor_from_st(i, f.data(i), dir);
    return out;
  }
  const CheckpointFiles f(dir);
  for (const auto& [key, shape] : f.manifest().tensors)
    if (key.rfind("master.", 0) == 0) out[key.substr(7)] = f.read_whole(key);
  return out;
}

// A checkpoint's AdamW moments, under their keys (exp_avg.<name>, exp_avg_sq.<name>).
inline std::map<std::string, at::Tensor> moments(const std::string& dir) {
  std::map<std::string, at::Tensor> out;
  const CheckpointFiles f(dir);
  for (const auto& [key, shape] : f.manifest().tensors)
    if (key.rfind("master.", 0) != 0) out[key] = f.read_whole(key);
  return out;
}

// Launches `world` ranks of one training run and waits for all; 0 when every rank finished its run.
// `rank1_env` is given to rank 1 only, `env` to every rank.
inline int train_ranks(TinySetup& s, int world, const std::string& run_dir, const std::string& sets,
                       const std::string& rank1_env = "", const std::string& env = "") {
  const int port = 21000 + static_cast<int>(::getpid() % 20000);
  std::string cmd;
  for (int r = 0; r < world; ++r)
    cmd += env + " " + std::string(r == 1 ? rank1_env + " " : "") + "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(world) +
           " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " '" + ropex_binary() + "' train " + s.config() +
           " --set run.output_dir=" + run_dir + " " + sets + " > " + run_dir + ".rank" + std::to_string(r) + ".log 2>&1 & ";
  cmd += "wait";
  fs::create_directories(fs::path(run_dir).parent_path());
  std::string out;
  int rc = run_command("bash -c '" + cmd + "; for f in " + run_dir + ".rank*.log; do grep -q \"done:\" $f || exit 1; done'", &out);
  return rc;
}

// Launches `world` ranks of one run (rank 1 gets rank1_env in its environment, rank 0 rank0_env), runs the bash
// snippet `during` while they run (it may use ${pids[@]}, the ranks' pids, and $RUN, the run folder),
// waits for every rank and returns their exit statuses. Logs: RUN.rankN.log.
inline std::vector<int> ranks_status(TinySetup& s, int world, const std::string& run_dir, const std::string& sets,
                                     const std::string& rank1_env = "", const std::string& during = "",
                                     const std::string& rank0_env = "") {
  const int port = 21000 + static_cast<int>(::getpid() % 20000);
  fs::create_directories(fs::path(run_dir).parent_path());
  std::ofstream script(run_dir + ".sh");
  script << "RUN='" << run_dir << "'\npids=()\n";
  for (int r = 0; r < world; ++r)
    script << (r == 1 ? rank1_env + " " : "") << (r == 0 ? rank0_env + " " : "") << "RANK=" << r << " LOCAL_RANK=" << r << " WORLD_SIZE=" << world
           << " MASTER_ADDR=127.0.0.1 MASTER_PORT=" << port << " '" << ropex_binary() << "' train " << s.config()
           << " --set run.output_dir=" << run_dir << " " << sets << " > " << run_dir << ".rank" << r << ".log 2>&1 &\npids+=($!)\n";
  script << during << "\n";
  for (int r = 0; r < world; ++r) script << "wait ${pids[" << r << "]}; echo $? > " << run_dir << ".rank" << r << ".rc\n";
  script.close();
  std::string out;
  run_command("bash " + run_dir + ".sh", &out);
  std::vector<int> rc;
  for (int r = 0; r < world; ++r) {
    std::ifstream in(run_dir + ".rank" + std::to_string(r) + ".rc");
    int v = -1;
    in >> v;
    rc.push_back(v);
  }
  return rc;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whether every tensor of two checkpoints (weights and optimizer moments) is bit-identical.
inline bool identical_checkpoints(const std::string& a, const std::string& b) {
  bool identical = true;
  for (auto read : {weights, moments}) {
    auto ta = read(a), tb = read(b);
    EXPECT_EQ(ta.size(), tb.size()) << a << " vs " << b;
    for (auto& [k, v] : ta) {
      if (!tb.count(k)) {
        ADD_FAILURE() << b << " lacks " << k;
        continue;
      }
      identical = identical && at::equal(tb.at(k), v);
    }
  }
  return identical;
}

// Writes the format-2 checkpoint `v2` again as format 1 (model.safetensors + optimizer.safetensors,
// no manifest) in `v1`, with its JSON files; trainer_state.json and COMPLETE are the caller's.
inline void write_as_format1(const std::string& v2, const std::string& v1) {
  std::vector<at::Tensor> keep;
  auto views = [&](const std::map<std::string, at::Tensor>& m) {
    std::vector<st::TensorView> out;
    for (const auto& [k, t] : m) {
      keep.push_back(t.contiguous());
      out.push_back({k, st::DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), keep.back().data_ptr()});
    }
    return out;
  };
  fs::create_directories(v1);
  st::write_file(v1 + "/model.safetensors", views(weights(v2)));
  st::write_file(v1 + "/optimizer.safetensors", views(moments(v2)));
  for (const char* f : {"config.json", "run_config.json", "rank_0.json", "tokenizer.model"}) fs::copy_file(v2 + "/" + f, v1 + "/" + f);
}

}  // namespace ropex::test
