// Sharded, verified checkpoints: save, commit, find, resume, prune, export. See checkpoint.h.
#include "trainer/checkpoint.h"

#include "data/tokenizers/tokenizer_config.h"

#include "models/hf_checkpoint.h"
#include "trainer/log.h"
#include "data/input/json.h"

#include <torch/cuda.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <chrono>
#include <thread>

namespace ropex {
namespace fs = std::filesystem;

namespace {

fs::path ckpt_root(const std::string& run_dir) { return fs::path(run_dir) / "checkpoints"; }

// The model facts a resume must agree on.
nlohmann::json shape_of(const LlamaConfig& c) {
  nlohmann::json j = config_to_json(c, {.legacy_linear = false, .with_rope_parameters = false});
  nlohmann::json out;
  for (const char* k : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "max_position_embeddings", "rope_theta", "rope_scaling", "tie_word_embeddings"})
    out[k] = j[k];
  return out;
}

// Format 2 folder whose manifest parses and whose files all exist at their recorded sizes (a check
// that reads no data: retention uses it); format 1 folders pass.
bool structurally_sound(const fs::path& dir) {
  if (!fs::exists(dir / kManifestFile)) return fs::exists(dir / "COMPLETE");
  try {
    const Manifest m = manifest_from_json(read_json_file(dir / kManifestFile), (dir / kManifestFile).string());
    for (const auto& f : m.files) {
      std::error_code ec;
      if (fs::file_size(dir / f.name, ec) != f.bytes || ec) return false;
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// ROPEX_FAULT_INJECT=slow-writer:MS (tests: a save visibly in flight while training goes on).
int slow_writer_ms() {
  const char* f = std::getenv("ROPEX_FAULT_INJECT");
  if (!f || std::string(f).rfind("slow-writer:", 0) != 0) return 0;
  return std::atoi(f + 12);
}

// The newest committed checkpoint, for messages; never throws (it runs on error paths).
std::string previous_checkpoint(const std::string& last, const std::string& run_dir) {
  if (!last.empty()) return last;
  try {
    return latest_checkpoint(run_dir).value_or("none");
  } catch (const std::exception&) {
    return "unknown (" + run_dir + "/checkpoints could not be listed)";
  }
}

std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "\n  ") + s;
  return out;
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// Saving

struct CheckpointWriter::InFlight {
  int64_t step = 0;
  fs::path partial, final_dir;
  std::vector<StatePiece> pieces;  // live views (synchronous) or host copies (async)
  std::string rank_state, trainer_state, model_config, run_config;  // the JSON files' text
  std::thread thread;
  std::atomic<bool> done{false};
  std::vector<FileRecord> records;
  std::string error;
  std::map<std::string, std::vector<int64_t>> shapes;  // of the state tensors this rank's pieces belong to
};

CheckpointWriter::CheckpointWriter(Distributed& dist, CheckpointOptions opts) : dist_(dist), opts_(std::move(opts)) {}

CheckpointWriter::~CheckpointWriter() {
  if (flight_ && flight_->thread.joinable()) flight_->thread.join();
}

bool CheckpointWriter::idle() const { return !flight_ || flight_->done.load(); }

void CheckpointWriter::save(const DataParallelOptimizer& opt, const Loader& loader, const TrainerState& state) {
  finish();  // at most one save in flight
  auto f = std::make_unique<InFlight>();
  f->step = state.step;
  const fs::path root = ckpt_root(opts_.run_dir);
  f->partial = root / ("." + checkpoint_name(state.step) + ".partial");
  f->final_dir = root / checkpoint_name(state.step);
  f->pieces = opt.owned_state();
  for (const auto& p : f->pieces) f->shapes[p.key] = p.shape;
  f->rank_state = loader.state().dump(2) + "\n";
  f->trainer_state = trainer_state_to_json(state).dump(2) + "\n";

  // 1. Sizes and free space, agreed; rank 0 prepares the folder meanwhile.
  uint64_t mine = shard_file_bytes(f->pieces) + f->rank_state.size() + 4096;
  if (dist_.is_main()) {
    f->model_config = opts_.model_config.dump(2) + "\n";
    f->run_config = opts_.run_config.dump(2) + "\n";
    mine += f->trainer_state.size() + f->model_config.size() + f->run_config.size();
    std::error_code ec;
    if (!opts_.tokenizer_file.empty() && fs::is_regular_file(opts_.tokenizer_file, ec))
      for (const fs::path& file : tokenizer_files(opts_.tokenizer_file)) mine += fs::file_size(file, ec);
  }
  uint64_t total = 0;
  for (const auto& s : dist_.allgather_string(std::to_string(mine))) total += std::stoull(s);
  set_fault_context(state.step);
  std::string problem;
  try {
    if (dist_.is_main()) {
      fs::create_directories(root);
      fs::remove_all(f->partial);  // left by an interrupted save of the same step
      fs::create_directories(f->partial);
    }
    require_free_space(opts_.run_dir, total, "checkpoint " + (root / checkpoint_name(state.step)).string());
    if (opts_.async) snapshot(*f);  // before the agreement: a rank that cannot allocate it says so there
  } catch (const std::exception& e) {
    problem = e.what();
  }
  std::string first;
  const auto problems = dist_.allgather_string(problem);  // also orders the folder before the writes
  for (size_t r = 0; r < problems.size() && first.empty(); ++r)
    if (!problems[r].empty()) first = problems[r] + (problems.size() > 1 ? " (rank " + std::to_string(r) + ")" : "");
  if (!first.empty()) {
    if (dist_.is_main()) {
      std::error_code ec;
      fs::remove_all(f->partial, ec);
    }
    throw StorageError("checkpoint at step " + std::to_string(state.step) + " not saved: " + first +
                       "; the previous checkpoint is intact: " + previous_checkpoint(last_, opts_.run_dir));
  }

  // 2. Write: now from the live state, or from the snapshot in the background. The pieces are let
  // go in commit(), on this thread (pinned host memory is best freed where CUDA is current).
  auto write = [this, fp = f.get()] {
    try {
      if (const int ms = slow_writer_ms(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      const int rank = dist_.rank();
      fp->records.push_back(write_shard((fp->partial / shard_file_name(rank, dist_.world())).string(),
                                        shard_file_name(rank, dist_.world()), fp->pieces));
      fp->records.push_back(write_checked((fp->partial / rank_state_file(rank)).string(), rank_state_file(rank), fp->rank_state));
      if (dist_.is_main()) {
        fp->records.push_back(write_checked((fp->partial / "config.json").string(), "config.json", fp->model_config));
        fp->records.push_back(write_checked((fp->partial / "trainer_state.json").string(), "trainer_state.json", fp->trainer_state));
        fp->records.push_back(write_checked((fp->partial / "run_config.json").string(), "run_config.json", fp->run_config));
        if (!opts_.tokenizer_file.empty() && fs::is_regular_file(opts_.tokenizer_file))
          for (const fs::path& file : tokenizer_files(opts_.tokenizer_file)) {
            const std::string name = file.filename().string();
            fp->records.push_back(copy_checked(file.string(), (fp->partial / name).string(), name));
          }
      }
    } catch (const std::exception& e) {
      fp->error = e.what();
    }
    fp->done = true;
  };
  flight_ = std::move(f);
  if (!opts_.async) {
    write();
    commit();
    return;
  }
  flight_->thread = std::thread(write);
}

// This rank's pieces copied to the host: pinned memory for a CUDA device, each device synchronised
// once at the end (the copies run on the pieces' devices, not necessarily the current one); the
// step waits for this copy only.
void CheckpointWriter::snapshot(InFlight& f) {
  std::set<int> devices;
  for (auto& p : f.pieces) {
    at::Tensor host = at::empty({p.data.numel()}, at::TensorOptions().dtype(at::kFloat).pinned_memory(p.data.is_cuda()));
    host.copy_(p.data, /*non_blocking=*/p.data.is_cuda());
    if (p.data.is_cuda()) devices.insert(p.data.device().index());
    p.data = host;
  }
  for (int d : devices) torch::cuda::synchronize(d);
}

void CheckpointWriter::commit_if_all_written(bool all_idle) {
  if (flight_ && all_idle) commit();
}

void CheckpointWriter::finish() {
  if (flight_) commit();
}

void CheckpointWriter::commit() {
  std::unique_ptr<InFlight> f = std::move(flight_);
  if (f->thread.joinable()) f->thread.join();
  f->pieces.clear();  // the snapshot's memory goes back
  // 3. Every rank's records (or error) to every rank.
  nlohmann::json mine = {{"error", f->error}, {"files", nlohmann::json::array()}, {"tensors", nlohmann::json::object()}};
  for (const auto& r : f->records) mine["files"].push_back({{"name", r.name}, {"bytes", r.bytes}, {"xxh3", r.xxh3}});
  for (const auto& p : f->shapes) mine["tensors"][p.first] = p.second;
  const auto all = dist_.allgather_string(mine.dump());
  Manifest m;
  m.step = f->step;
  m.world = dist_.world();
  std::string first;
  for (size_t r = 0; r < all.size(); ++r) {
    const nlohmann::json j = nlohmann::json::parse(all[r]);
    const std::string e = j["error"].get<std::string>();
    if (!e.empty() && first.empty()) first = e + (all.size() > 1 ? " (rank " + std::to_string(r) + ")" : "");
    for (const auto& rec : j["files"]) m.files.push_back({rec["name"], rec["bytes"], rec["xxh3"]});
    for (const auto& [k, v] : j["tensors"].items()) m.tensors[k] = v.get<std::vector<int64_t>>();
  }
  auto fail = [&](const std::string& why) {
    if (dist_.is_main()) {
      std::error_code ec;
      fs::remove_all(f->partial, ec);
    }
    throw StorageError("checkpoint at step " + std::to_string(f->step) + " not saved: " + why +
                       "; the previous checkpoint is intact: " + previous_checkpoint(last_, opts_.run_dir));
  };
  if (!first.empty()) fail(first);
  try {
    dist_.run_on_main([&] {
      if (const char* fi = std::getenv("ROPEX_FAULT_INJECT"); fi && std::string(fi) == "kill-in-checkpoint:" + std::to_string(f->step))
        std::raise(SIGKILL);
      write_checked((f->partial / kManifestFile).string(), kManifestFile, manifest_to_json(m).dump(1) + "\n");
      fsync_path(f->partial.string());
      const fs::path root = f->final_dir.parent_path();
      // The same step saved again (a resumed run): the old copy moves aside first, so that at every
      // moment one complete copy exists (clean_interrupted_saves puts it back after a crash).
      const fs::path old = root / ("." + f->final_dir.filename().string() + ".old");
      if (fs::exists(f->final_dir)) {
        fs::remove_all(old);
        fs::rename(f->final_dir, old);
      }
      fs::rename(f->partial, f->final_dir);
      fsync_path(root.string());  // committed: what follows is housekeeping, whose failure is a warning
      try {
        fs::remove_all(old);
        prune(f->step);
      } catch (const std::exception& e) {
        log::warn("checkpoint " + f->final_dir.string() + " committed, but removing older ones failed: " + e.what());
      }
    }, std::chrono::hours(4));
  } catch (const std::exception& e) {
    fail(e.what());
  }
  last_ = f->final_dir.string();
  log::info("checkpoint " + last_);
  if (injected_short_writes() > 0) log::info(cat("short writes completed so far: ", injected_short_writes()));
}

// Retention, after a commit: this one and the newest keep_last - 1 older sound ones. Newer ones
// (left by a run resumed from an earlier step) and unsound ones are never deleted here. A folder
// is renamed .step_X.deleting before it is removed, so a crash in the middle of the removal
// never leaves a step_X folder with part of its files (clean_interrupted_saves finishes it).
void CheckpointWriter::prune(int64_t committed_step) {
  std::vector<std::string> older;
  for (const auto& [step, path] : complete_checkpoints(opts_.run_dir))
    if (step < committed_step && structurally_sound(path)) older.push_back(path);
  const size_t keep = static_cast<size_t>(std::max<int64_t>(opts_.keep_last - 1, 0));
  for (size_t i = 0; i + keep < older.size(); ++i) {
    const fs::path dir(older[i]);
    const fs::path doomed = dir.parent_path() / ("." + dir.filename().string() + ".deleting");
    fs::remove_all(doomed);
    fs::rename(dir, doomed);
    fsync_path(dir.parent_path().string());
    fs::remove_all(doomed);
  }
}

// ---------------------------------------------------------------------------------------------
// Finding and resuming

void clean_interrupted_saves(const std::string& run_dir) {
  const fs::path root = ckpt_root(run_dir);
  if (!fs::is_directory(root)) return;
  static const std::regex leftover(R"(\.(step_[0-9]{8,})\.(partial|old|deleting))");
  for (const auto& e : fs::directory_iterator(root)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, leftover)) continue;
    const fs::path final_dir = root / m[1].str();
    if (m[2] == "old" && !fs::exists(final_dir)) {
      fs::rename(e.path(), final_dir);  // the crash came between moving it aside and the new one in
      log::warn("put back " + final_dir.string() + " (a save of the same step was interrupted)");
    } else {
      fs::remove_all(e.path());
      log::info("removed " + e.path().string() + " (left by an interrupted save or removal)");
    }
  }
}

std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  const fs::path root = ckpt_root(run_dir);
  if (!fs::is_directory(root)) return out;
  static const std::regex pattern("step_([0-9]{8,})");
  for (const auto& e : fs::directory_iterator(root)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || !std::regex_match(name, m, pattern)) continue;
    const std::optional<int64_t> step = step_of_checkpoint_name(name);
    if (!step) {
      static std::set<std::string> warned;  // complete_checkpoints runs several times per start
      if (warned.insert(e.path().string()).second)
        log::warn(e.path().string() + ": ignored: its step number is not one ropex writes (at most " +
                  std::to_string(kMaxCheckpointStep) + ", 8 to 19 digits)");
      continue;
    }
    if (is_complete_checkpoint(e.path().string())) out.emplace_back(*step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

namespace {
// Collective: every rank checks its share of the files. The problems found by all ranks, and
// whether any is a system error (a file that could not be read: says nothing of the checkpoint).
struct Verdict {
  std::vector<std::string> problems;
  bool unreadable = false;
};
// This rank's share of a verification: its files' checksums, then (when they pass) whether the
// pieces cover the state. Never throws.
std::vector<std::string> problems_of(const std::string& dir, int rank, int world, bool* unreadable) {
  try {
    std::vector<std::string> problems = verify_files(dir, rank, world, unreadable);
    if (problems.empty()) CheckpointFiles{dir};
    return problems;
  } catch (const std::exception& e) {
    return {e.what()};
  }
}

Verdict verify_collectively(Distributed& dist, const std::string& dir) {
  bool io = false;
  std::string local;
  for (const auto& p : problems_of(dir, dist.rank(), dist.world(), &io)) local += p + "\n";
  Verdict v;
  std::set<std::string> seen;
  for (const auto& text : dist.allgather_string((io ? "E" : "C") + local)) {
    v.unreadable = v.unreadable || text[0] == 'E';
    std::istringstream in(text.substr(1));
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && seen.insert(line).second) v.problems.push_back(line);
  }
  return v;
}

// Folders set aside by an earlier fallback (step_X.corrupt, step_X.corrupt-2, ...).
std::vector<std::string> set_aside(const std::string& run_dir) {
  std::vector<std::string> out;
  const fs::path root = ckpt_root(run_dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  static const std::regex pattern(R"(step_[0-9]{8,}\.corrupt(-[0-9]+)?)");
  for (const auto& e : fs::directory_iterator(root, ec))
    if (std::regex_match(e.path().filename().string(), pattern)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> verify_checkpoint(const std::string& dir) { return problems_of(dir, 0, 1, nullptr); }

std::string choose_resume(Distributed& dist, const std::string& run_dir, const std::string& resume) {
  if (resume == "never") return "";
  if (resume != "auto") {
    const Verdict v = verify_collectively(dist, resume);
    if (!v.problems.empty())
      throw std::runtime_error("checkpoint.resume = " + resume + " failed verification:\n  " + join_lines(v.problems) +
                               "\nresume from another checkpoint (or checkpoint.resume=auto to take the newest sound one)");
    return resume;
  }
  std::string listing;
  for (const auto& [step, path] : complete_checkpoints(run_dir)) listing += path + "\n";
  for (const auto& other : dist.allgather_string(listing))  // every rank must see the same checkpoints
    if (other != listing)
      throw std::runtime_error("ranks see different checkpoints under " + ckpt_root(run_dir).string() +
                               ": run.output_dir must be on a filesystem all ranks share");
  const auto candidates = complete_checkpoints(run_dir);
  std::vector<std::string> refused;
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    const Verdict v = verify_collectively(dist, it->second);
    if (v.problems.empty()) {
      if (!refused.empty()) log::warn("resuming from " + it->second + ", the newest checkpoint that passed verification");
      return it->second;
    }
    // A file that could not be read (a flaky mount, permissions) says nothing of the checkpoint:
    // stop, set nothing aside.
    if (v.unreadable)
      throw std::runtime_error("checkpoint " + it->second + " could not be read:\n  " + join_lines(v.problems) +
                               "\nnothing was changed; fix the filesystem and run again");
    // Rank 0 sets it aside under a name no other folder has; every rank learns how that went.
    std::string aside = it->second + ".corrupt";
    for (int n = 2; fs::exists(aside); ++n) aside = it->second + ".corrupt-" + std::to_string(n);
    log::warn("checkpoint " + it->second + " failed verification, falling back to the previous one:\n  " + join_lines(v.problems) +
              "\n  (renamed " + aside + "; it is kept, never loaded or counted)");
    dist.run_on_main([&] { fs::rename(it->second, aside); }, std::chrono::minutes(10));
    refused.push_back(it->second);
  }
  if (!refused.empty())
    throw std::runtime_error("every checkpoint under " + ckpt_root(run_dir).string() +
                             " failed verification (see above); set checkpoint.resume=never to start over");
  // None to resume: refuse to start over silently while a corrupt one is kept aside.
  if (const auto aside = set_aside(run_dir); !aside.empty())
    throw std::runtime_error("no sound checkpoint under " + ckpt_root(run_dir).string() + ", but " +
                             std::to_string(aside.size()) + " set aside as corrupt (" + aside.back() +
                             "); set checkpoint.resume=never to start over, or move them away");
  return "";
}

TrainerState load_checkpoint(const std::string& dir, Distributed& dist, LlamaForCausalLM& model, DataParallelOptimizer& opt,
                             Loader& loader, int64_t global_batch) {
  const CheckpointFiles files(dir);
  const std::string ts_path = (fs::path(dir) / "trainer_state.json").string();
  const TrainerState& state = files.state();

  const LlamaConfig saved = load_config((fs::path(dir) / "config.json").string());
  const nlohmann::json a = shape_of(saved), b = shape_of(model->config());
  for (const auto& [k, v] : b.items())
    if (a[k] != v)
      throw std::runtime_error(dir + ": checkpoint has " + k + " = " + input::json_excerpt(a[k]) + " but this run's model has " + input::json_excerpt(v) +
                               "; refusing to resume a different model");
  // The data order is a function of the step and the global batch (data/loader.h).
  const nlohmann::json rc = read_json_file(fs::path(dir) / "run_config.json");
  if (const auto run = rc.find("run"); run != rc.end() && run->is_object() && run->contains("seed") &&
                                        (*run)["seed"] != nlohmann::json(state.seed))
    throw std::runtime_error(ts_path + ": key 'seed' is " + std::to_string(state.seed) + " but the checkpoint's run_config.json says run.seed = " +
                             input::json_excerpt((*run)["seed"]) + "; the checkpoint is damaged or was edited");
  const nlohmann::json batch = rc.value("batch", nlohmann::json::object());
  const int64_t saved_batch = batch.value("micro_batch_size", int64_t{0}) * batch.value("grad_accum", int64_t{0}) * state.world;
  if (saved_batch != global_batch)
    throw std::runtime_error(dir + ": written with a global batch of " + std::to_string(saved_batch) + " examples (" +
                             std::to_string(state.world) + " ranks), this run has " + std::to_string(global_batch) +
                             "; set batch.micro_batch_size and batch.grad_accum so that micro x accum x ranks = " +
                             std::to_string(saved_batch) + " to resume the same data order");
  const SamplerOptions& so = loader.sampler_options();
  if (state.world != dist.world() && so.name == "cream" && so.cream_mode == "per_block")
    throw std::runtime_error(dir + ": written by " + std::to_string(state.world) + " ranks, this run has " +
                             std::to_string(dist.world()) + "; CREAM's per_block mode keeps a block state per rank, "
                             "so it resumes only on the same number of ranks");
  opt.load_state(files.reader(), state.optimizer_steps);
  // Sampler state per rank: counters only unless CREAM per_block (same world, checked above).
  const int from = dist.rank() % state.world;
  loader.load_state(read_json_file(fs::path(dir) / rank_state_file(from)));
  return state;
}

// ---------------------------------------------------------------------------------------------
// Export

namespace {
void require_sound(const std::string& dir) {
  const auto problems = verify_files(dir, 0, 1);
  if (!problems.empty())
    throw std::runtime_error(dir + " failed verification:\n  " + join_lines(problems) + "\npick another checkpoint");
}
}  // namespace

LlamaForCausalLM load_model_or_checkpoint(const std::string& dir, const LoadOptions& opts) {
  if (!fs::is_regular_file(fs::path(dir) / kManifestFile)) return load_pretrained(dir, opts);
  require_sound(dir);
  const CheckpointFiles files(dir);
  LlamaForCausalLM model(load_config((fs::path(dir) / "config.json").string()),
                         at::TensorOptions().device(opts.device).dtype(opts.dtype));
  model->eval();
  torch::NoGradGuard ng;
  for (auto& p : model->named_parameters()) p.value().copy_(files.read_whole("master." + p.key()));
  return model;
}

void export_checkpoint(const std::string& checkpoint_dir, const std::string& out_dir, uint64_t max_shard_bytes,
                       at::ScalarType dtype) {
  if (fs::is_directory(ckpt_root(checkpoint_dir))) {  // a run folder, not one of its checkpoints
    const auto newest = latest_checkpoint(checkpoint_dir);
    throw std::runtime_error(checkpoint_dir + " is a run folder, not a checkpoint: " +
                             (newest ? "its newest complete checkpoint is " + *newest + " (ropex export --checkpoint " +
                                           *newest + " --output ...)"
                                     : "it holds no complete checkpoint under " + ckpt_root(checkpoint_dir).string()));
  }
  require_sound(checkpoint_dir);
  const CheckpointFiles files(checkpoint_dir);
  LlamaConfig hf = hf_loadable(load_config((fs::path(checkpoint_dir) / "config.json").string()));
  std::vector<st::TensorView> views;
  std::vector<std::string> keys;
  for (const auto& [key, shape] : files.manifest().tensors) {
    if (key.rfind("master.", 0) != 0) continue;
    keys.push_back(key);
    views.push_back({key.substr(7), to_st_dtype(dtype), shape, nullptr});
  }
  if (views.empty()) throw std::runtime_error(checkpoint_dir + ": holds no weights (no master.* tensors)");
  fs::create_directories(out_dir);
  at::Tensor current;  // the one tensor in memory
  st::write_checkpoint_streamed(out_dir, views, max_shard_bytes, [&](size_t i) {
    current = files.read_whole(keys[i]).to(dtype).contiguous();
    return current.data_ptr();
  });
  hf.torch_dtype = dtype_name(dtype);
  st::write_text_file((fs::path(out_dir) / "config.json").string(), config_to_json(hf, {}).dump(2) + "\n");
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path tok = fs::path(checkpoint_dir) / name;
    if (fs::exists(tok)) fs::copy_file(tok, fs::path(out_dir) / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace ropex
