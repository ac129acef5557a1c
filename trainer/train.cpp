// The training loop. See train.h; data flow is one call per arrow of the sequence there.
#include "trainer/train.h"

#include "data/prepare.h"
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "models/sdpa_backends.h"
#include "trainer/checkpoint.h"
#include "trainer/distributed.h"
#include "trainer/log.h"
#include "trainer/metrics_log.h"
#include "trainer/optim.h"
#include "trainer/preemption.h"
#include "trainer/resume_check.h"
#include "trainer/run_folder.h"
#include "trainer/tensorboard/scalar_log.h"
#include "trainer/train_step.h"
#include "trainer/zero.h"

#include <torch/cuda.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>

namespace ropex {
namespace fs = std::filesystem;

RopeScaling run_rope(const RunConfig& cfg, const LlamaConfig& model, int64_t* max_pos, int64_t* target_len) {
  // rope.type keep: the model's own scaling; position ids reach rope.target_len when it is set.
  if (cfg.rope.type == "keep") {
    *target_len = cfg.rope.target_len > 0 ? cfg.rope.target_len : model.max_position_embeddings;
    *max_pos = std::max(model.max_position_embeddings, *target_len);
    return model.rope;
  }
  // The pre-trained length: a scaled model's original_max_position_embeddings (never its extended
  // length, which would move YaRN's and llama3's bands), else max_position_embeddings.
  const int64_t original = model.rope.original_max_position_embeddings > 0 ? model.rope.original_max_position_embeddings
                                                                           : model.max_position_embeddings;
  if (cfg.rope.target_len > 0 && cfg.rope.target_len < original)
    throw ConfigError(cat("key 'rope.target_len': ", cfg.rope.target_len, " is below the model's pre-trained length ",
                          original, " (", cfg.model.path, "): ropex extends context, so the target must be at least ",
                          original, " (scale factor >= 1) for every rope.type"));
  nlohmann::json j = cfg.rope.extra;
  for (const char* own : {"rope_type", "type", "factor"})
    if (j.contains(own))
      throw ConfigError(cat("key 'rope.extra.", own, "': set it with rope.", std::string(own) == "factor" ? "factor" : "type",
                            " (rope.extra holds the other HF rope_scaling keys)"));
  if (cfg.rope.type == "llama3" && (!j.contains("low_freq_factor") || !j.contains("high_freq_factor")))
    throw ConfigError("key 'rope.extra': rope.type 'llama3' needs low_freq_factor and high_freq_factor there, e.g. "
                      "\"rope\": {\"type\": \"llama3\", \"extra\": {\"low_freq_factor\": 1, \"high_freq_factor\": 4}} "
                      "(Llama 3.1's values), or --set rope.extra='{\"low_freq_factor\": 1, \"high_freq_factor\": 4}'");
  j["rope_type"] = cfg.rope.type;
  double factor = cfg.rope.factor;
  if (factor == 0 && cfg.rope.target_len > 0) factor = static_cast<double>(cfg.rope.target_len) / static_cast<double>(original);
  if (cfg.rope.type != "default") j["factor"] = factor;
  if (!j.contains("original_max_position_embeddings") && cfg.rope.type != "default") j["original_max_position_embeddings"] = original;
  RopeScaling r;
  try {
    r = rope_scaling_from_json(j, "the rope_scaling made of rope.type, rope.factor (or target_len) and rope.extra", 0);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(cat("key 'rope.extra' (rope.type '", cfg.rope.type, "'): ", e.what()));
  }
  const int64_t target = cfg.rope.target_len > 0 ? cfg.rope.target_len : static_cast<int64_t>(std::llround(factor * original));
  *target_len = target;
  // transformers reads max_position_embeddings as the original length for dynamic NTK, the target otherwise.
  *max_pos = cfg.rope.type == "dynamic" ? original : (cfg.rope.type == "default" ? std::max(target, original) : target);
  return r;
}

// The model directory's tokenizer as transformers would pick it (tokenizer.json first); "" when it has none.
std::string model_tokenizer(const RunConfig& cfg) { return find_model_tokenizer(cfg.model.path); }

std::string resume_hint(const RunConfig& cfg) {
  return cfg.checkpoint.resume == "never" ? "to resume, run again with --set checkpoint.resume=auto"
                                          : "run the same command again to resume";
}

std::unique_ptr<Loader> make_loader(const RunConfig& cfg, const LlamaConfig& model, int rank, int world) {
  int64_t max_pos = 0, target_len = 0;
  run_rope(cfg, model, &max_pos, &target_len);
  SamplerOptions so = cfg.sampler;
  so.train_len = cfg.data.train_len;
  so.target_len = cfg.sampler.name == "contiguous" ? cfg.data.train_len : target_len;
  if (cfg.sampler.name != "contiguous" && so.target_len <= so.train_len)
    throw ConfigError(cat("rope: sampler '", cfg.sampler.name, "' needs a target length above data.train_len = ", so.train_len,
                          ", got ", so.target_len, " (set rope.target_len)"));
  std::shared_ptr<const TokenStore> store;
  try {
    store = std::make_shared<const TokenStore>(TokenStore::open(cfg.data.store));
  } catch (const std::runtime_error& e) {
    throw ConfigError(cat("key 'data.store': ", e.what(), " (make one with `ropex prepare`)"));
  }
  if (store->vocab_size() > model.vocab_size)
    throw std::runtime_error(cfg.data.store + ": tokenized with a vocabulary of " + std::to_string(store->vocab_size()) +
                             " but the model has vocab_size " + std::to_string(model.vocab_size));
  if (!model_tokenizer(cfg).empty()) check_store_tokenizer(store->meta(), cfg.data.store, model_tokenizer(cfg));
  // Every id below the vocabulary size, checked before the first step rather than met as an
  // embedding's "index out of range" hours into training (a scan at memory speed).
  try {
    store->verify_tokens();
  } catch (const std::runtime_error& e) {
    throw ConfigError(cat("key 'data.store': ", e.what()));
  }
  return std::make_unique<Loader>(
      store, so,
      LoaderOptions{.seed = static_cast<uint64_t>(cfg.run.seed), .rank = rank, .world = world,
                    .micro_batch = cfg.batch.micro_batch_size, .grad_accum = cfg.batch.grad_accum,
                    .holdout_docs = cfg.eval.every > 0 ? cfg.eval.docs : 0});
}

void check_run_inputs(const RunConfig& cfg) { make_loader(cfg, load_config(cfg.model.path), 0, 1); }

namespace {
std::string hms(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  std::ostringstream os;
  os << std::setfill('0') << std::setw(2) << s / 3600 << ":" << std::setw(2) << (s / 60) % 60 << ":" << std::setw(2) << s % 60;
  return os.str();
}

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return os.str();
}

at::Device pick_device(const RunConfig& cfg, const DistEnv& env) {
  const bool cuda = torch::cuda::is_available();
  if (cfg.model.device == "cuda" && !cuda) throw std::runtime_error("model.device = cuda but CUDA is not available on this machine");
  if (cfg.model.device == "cuda" || (cfg.model.device == "auto" && cuda)) return at::Device(at::kCUDA, env.local_rank);
  return at::kCPU;
}

struct Progress {
  bool enabled = false;
  void draw(int64_t step, int64_t total, const std::string& tail) const {
    if (!enabled) return;
    const int width = 30, done = static_cast<int>(width * step / std::max<int64_t>(total, 1));
    std::fprintf(stderr, "\r[%s%s] %lld/%lld %s\033[K", std::string(done, '#').c_str(), std::string(width - done, '.').c_str(),
                 static_cast<long long>(step), static_cast<long long>(total), tail.c_str());
    std::fflush(stderr);
  }
  void clear() const {
    if (enabled) std::fprintf(stderr, "\r\033[K");
  }
};

// model.dtype resolved: auto = bfloat16 on CUDA, float32 on CPU.
at::ScalarType compute_dtype(const RunConfig& cfg, const at::Device& dev) {
  return cfg.model.dtype == "auto" ? (dev.is_cuda() ? at::kBFloat16 : at::kFloat) : parse_dtype_name(cfg.model.dtype);
}

// The run config a checkpoint records: the resolved config and what it resolved to on this
// machine ("runtime": the compute dtype), so a resume can tell when model.dtype auto, or another
// device, would change the arithmetic.
nlohmann::json checkpoint_run_config(const nlohmann::json& resolved, const RunConfig& cfg, const at::Device& dev) {
  nlohmann::json j = resolved;
  j["runtime"] = {{"compute_dtype", dtype_name(compute_dtype(cfg, dev))}};
  return j;
}

// Everything a run sets up before its first step.
struct Job {
  const RunConfig& cfg;
  const nlohmann::json& resolved;
  nlohmann::json checkpoint_config;     // resolved + what it resolved to here (checkpoint_run_config)
  std::unique_ptr<RunFolderLock> lock;  // rank 0's, held until the run ends
  std::unique_ptr<MetricsLog> metrics;  // rank 0's
  DistEnv env;
  at::Device dev = at::kCPU;
  std::unique_ptr<Distributed> dist;
  fs::path run_dir;
  LlamaForCausalLM model{nullptr};
  std::unique_ptr<DataParallelOptimizer> opt;
  std::unique_ptr<Loader> loader;
  ForwardOptions fo;
  TrainerState state;
  std::vector<Batch> eval_set;
};

// Which kernels the step runs (models/rms_norm.h, models/sdpa_backends.h, trainer/adamw_fused.h),
// with the SDPA backend ATen picks for this run's attention shape.
std::string kernel_summary(const RunConfig& cfg, const LlamaConfig& mc, const at::Device& dev, at::ScalarType dtype) {
  std::string attention = "reference attention";
  if (cfg.model.attention == "sdpa") {
    std::string choice;
    try {
      choice = sdpa_choice(cfg.batch.micro_batch_size, mc.num_attention_heads, mc.num_key_value_heads, cfg.data.train_len,
                           mc.resolved_head_dim(), dtype, dev);
    } catch (const c10::Error& e) {
      choice = cat("unknown (", e.what_without_backtrace(), ")");
    }
    attention = cat("SDPA runs ", choice, " for [", cfg.batch.micro_batch_size, ", ", mc.num_attention_heads, ", ",
                    cfg.data.train_len, ", ", mc.resolved_head_dim(), "] (order ", sdpa_order(), ")");
  }
  auto kernel = [&](const std::string& choice, const char* what) {
    return runs_fused(parse_kernel_choice(choice, what), dev) ? "fused" : "reference";
  };
  return cat("kernels: ", attention, "; RMSNorm ", kernel(cfg.model.norm, "model.norm"), "; AdamW ",
             kernel(cfg.optim.kernel, "optim.kernel"));
}

void setup_model_and_optimizer(Job& job) {
  const RunConfig& cfg = job.cfg;
  const at::ScalarType dtype = compute_dtype(cfg, job.dev);
  LlamaConfig mc = load_config(cfg.model.path);
  int64_t max_pos = 0, target_len = 0;
  RopeScaling rope = run_rope(cfg, mc, &max_pos, &target_len);
  // The parameters are made on the device in the compute dtype and filled tensor by tensor from the
  // memory-mapped weights (or the random init): no copy of the model passes through host memory.
  std::optional<WeightReader> weights;
  if (!cfg.model.from_scratch) weights.emplace(cfg.model.path);
  job.model = make_checked_model(mc, at::TensorOptions().device(job.dev).dtype(dtype), weights ? &*weights : nullptr, {},
                                 cfg.model.path);
  if (cfg.model.from_scratch) {
    job.model->init_weights(static_cast<uint64_t>(cfg.run.seed));
  } else {
    load_weights(job.model, *weights);
  }
  job.model->set_rope(rope, max_pos);
  job.model->set_norm_kernel(parse_kernel_choice(cfg.model.norm, "model.norm"));
  set_sdpa_order(cfg.model.sdpa_backends);
  job.model->train();
  std::vector<at::Tensor> params;
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (auto& p : job.model->named_parameters()) {
    params.push_back(p.value());
    named.emplace_back(p.key(), p.value());
  }
  job.dist->broadcast_params(params);
  // Float32 masters (when the model computes in a lower precision) are read from the weights' file,
  // stretch by stretch, only this rank's shard at ZeRO stages 1-2: a master made from the bfloat16
  // parameters would have lost the weights' low bits for good. A random init (model.from_scratch)
  // takes the parameters as initialised, i.e. its float32 draws rounded to the compute dtype (before
  // 2026-11-30 the masters kept the unrounded draws: a bfloat16 run from scratch starts from
  // slightly different masters than with older builds for the same seed).
  StateReader masters;
  if (weights)
    masters = [&](const std::string& key, at::IntArrayRef, int64_t offset, int64_t count) {
      return weights->read(key.substr(std::string("master.").size()), offset, count, at::kFloat);
    };
  const int zero_stage = static_cast<int>(cfg.distributed.zero_stage);
  job.opt = make_data_parallel_optimizer(
      *job.dist, named,
      {.lr = cfg.optim.lr, .beta1 = cfg.optim.beta1, .beta2 = cfg.optim.beta2, .eps = cfg.optim.eps,
       .weight_decay = cfg.optim.weight_decay, .kernel = parse_kernel_choice(cfg.optim.kernel, "optim.kernel")},
      zero_stage, static_cast<int64_t>(cfg.distributed.bucket_mb * (1 << 20)), dtype, weights ? &masters : nullptr);
  job.opt->attach();
  const OptimizerMemory m = job.opt->memory();
  int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();
  // Replicated: both moments, and masters unless the model computes in float32 (then they are its weights).
  const int64_t replicated = numel * 8 + (dtype == at::kFloat ? 0 : numel * 4);
  log::info(cat("optimizer state on this rank: ", human_bytes(m.master + m.moments), " = float32 masters ",
                human_bytes(m.master), " + moments ", human_bytes(m.moments), " (ZeRO-", zero_stage, " over ", job.env.world,
                job.env.world == 1 ? " rank" : " ranks", "; replicated on every rank: ", human_bytes(replicated), ")"));
  log::info(cat("model ", cfg.model.path, ": ", mc.num_hidden_layers, " layers, hidden ", mc.hidden_size, ", rope ",
                describe_rope(rope, mc.rope_theta), ", max_position_embeddings ", max_pos, ", ", dtype_name(dtype), " on ",
                job.dev.str()));
  job.fo.attention = parse_attention_backend(cfg.model.attention);
  job.fo.checkpoint_every = cfg.model.activation_checkpointing.every;
  job.fo.loss_chunk_tokens = cfg.model.loss_chunk_tokens;
  log::info(kernel_summary(cfg, mc, job.dev, dtype));
  (void)target_len;
}

void setup_data(Job& job) {
  const RunConfig& cfg = job.cfg;
  job.loader = make_loader(cfg, load_config(cfg.model.path), job.env.rank, job.env.world);
  const SamplerOptions& so = job.loader->sampler_options();
  log::info(cat("data ", cfg.data.store, ": ", job.loader->train_docs(), " training documents (", job.loader->skipped_docs(),
                " shorter than the sampler's minimum skipped), sampler ", so.name, ", window ", so.train_len,
                ", positions < ", so.target_len, ", global batch ", cfg.global_batch(job.env.world)));
  if (cfg.eval.every > 0) job.eval_set = job.loader->eval_batches(cfg.data.train_len);
}

std::string export_dir(const RunConfig& cfg) {
  return cfg.export_.dir.empty() ? (fs::path(cfg.run.output_dir) / "export").string() : cfg.export_.dir;
}

// The few lines a run starts with; the whole resolved config is in RUN/run_config.json (and the
// debug log).
std::string run_summary(const RunConfig& cfg, int world) {
  const std::string rope = cfg.rope.type == "keep" ? std::string("the model's own")
                                                   : cat(cfg.rope.type, cfg.rope.target_len > 0 ? cat(" to ", cfg.rope.target_len)
                                                                                                 : cat(" x", cfg.rope.factor));
  return cat("run ", cfg.run.name, " -> ", cfg.run.output_dir, " (full config: ",
             (fs::path(cfg.run.output_dir) / "run_config.json").string(), ")\n  model ", cfg.model.path, ", rope ", rope,
             ", sampler ", cfg.sampler.name, ", window ", cfg.data.train_len, ", data ", cfg.data.store, "\n  ",
             cfg.schedule.steps, " steps, lr ", cfg.optim.lr, " (", cfg.schedule.type, ", warmup ", cfg.schedule.warmup_steps,
             "), global batch ", cfg.global_batch(world), " = ", cfg.batch.micro_batch_size, " x ", cfg.batch.grad_accum, " x ",
             world, world == 1 ? " rank" : " ranks", ", checkpoint every ", cfg.checkpoint.every, ", resume ",
             cfg.checkpoint.resume);
}

// Distributed init, run folder, model, optimizer, data, and the state resumed from a checkpoint.
Job setup(const RunConfig& cfg, const nlohmann::json& resolved, const std::vector<std::string>& accepted_changes) {
  Job job{cfg, resolved};
  job.env = read_dist_env();
  job.env.collectives_with_one_rank = cfg.distributed.collectives_with_one_rank;
  if (job.env.world > 1) log::set_rank(job.env.rank);
  log::set_level(log::parse_level(cfg.run.log_level));
  job.dev = pick_device(cfg, job.env);
  const std::string backend = cfg.distributed.backend == "auto" ? (job.dev.is_cuda() ? "nccl" : "gloo") : cfg.distributed.backend;
  job.dist = std::make_unique<Distributed>(job.env, backend, std::chrono::seconds(cfg.distributed.timeout_s));
  Distributed& dist = *job.dist;
  job.run_dir = cfg.run.output_dir;
  job.checkpoint_config = checkpoint_run_config(resolved, cfg, job.dev);
  // All ranks must run the same configuration: checked before rank 0 touches the run folder (under
  // checkpoint.start_over it may move or delete what an earlier run left).
  for (const auto& other : dist.allgather_string(resolved.dump()))
    if (other != resolved.dump())
      throw std::runtime_error(cat("ranks were started with different configurations (or a rank of another launch joined at ",
                                   job.env.master_addr, ":", job.env.master_port, ": give each launch its own MASTER_PORT)"));
  // Rank 0 takes the run folder (its lock; under resume = never, what an earlier run left); every
  // rank learns how that went.
  dist.run_on_main(
      [&] {
        job.lock = std::make_unique<RunFolderLock>(job.run_dir.string());
        clean_interrupted_saves(job.run_dir.string());
        if (cfg.checkpoint.resume == "never")
          if (const std::string done = start_over(job.run_dir.string(), cfg.checkpoint.start_over, export_dir(cfg)); !done.empty())
            log::warn(done);
        std::ofstream(job.run_dir / "run_config.json") << resolved.dump(2) << "\n";
        log::info(run_summary(cfg, job.env.world));
        log::debug("resolved config:\n" + resolved.dump(2));
        if (model_tokenizer(cfg).empty())
          log::warn("model.path " + cfg.model.path + " has no tokenizer.json or tokenizer.model: data.store's tokenizer cannot be checked "
                    "against the model's, and checkpoints and the export will have no tokenizer (transformers and vLLM "
                    "need one: copy the model's tokenizer files into the export)");
      },
      std::chrono::seconds(cfg.distributed.timeout_s));
  setup_model_and_optimizer(job);
  setup_data(job);
  job.state = {.step = 0, .world = job.env.world, .seed = static_cast<uint64_t>(cfg.run.seed)};
  const std::string resume_from = choose_resume(dist, job.run_dir.string(), cfg.checkpoint.resume);
  if (!resume_from.empty()) {
    const fs::path old_config = fs::path(resume_from) / "run_config.json";
    if (fs::exists(old_config))  // (a checkpoint of the first format may lack it)
      check_config_changes(config_changes(read_json_file(old_config), job.checkpoint_config), accepted_changes, resume_from);
    job.state = load_checkpoint(resume_from, dist, job.model, *job.opt, *job.loader, cfg.global_batch(job.env.world));
    job.state.world = job.env.world;
    job.state.seed = static_cast<uint64_t>(cfg.run.seed);  // an accepted run.seed change holds from here on
    log::info(cat("resumed from ", resume_from, " at step ", job.state.step,
                  job.state.skipped_steps ? cat(" (", job.state.skipped_steps, " non-finite steps skipped so far)") : ""));
  }
  // metrics.jsonl, trimmed to the step the run starts at (a failure there stops every rank).
  dist.run_on_main([&] { job.metrics = std::make_unique<MetricsLog>((job.run_dir / "metrics.jsonl").string(), job.state.step); },
                   std::chrono::seconds(cfg.distributed.timeout_s));
  return job;
}

// optim.skip_nonfinite: a skipped step leaves weights, moments and AdamW's count as they were.
void account_nonfinite(Job& job, const StepOutcome& o, const std::string& last_checkpoint) {
  TrainerState& st = job.state;
  if (o.finite) {
    st.consecutive_skips = 0;
    return;
  }
  ++st.skipped_steps;
  ++st.consecutive_skips;
  if (!o.local_finite) log::warn(cat("step ", st.step + 1, ": this rank's loss is not finite"));
  const std::string what = cat("step ", st.step + 1, ": loss ", o.loss, ", gradient norm ", o.grad_norm, " (not finite)");
  if (st.consecutive_skips > job.cfg.optim.skip_nonfinite)
    throw std::runtime_error(what + "; " + std::to_string(st.consecutive_skips) + " such step(s) in a row, optim.skip_nonfinite = " +
                             std::to_string(job.cfg.optim.skip_nonfinite) + ": stopping with the weights of the last good step. "
                             "Last checkpoint: " + (last_checkpoint.empty() ? "none" : last_checkpoint) +
                             ". Lower optim.lr, check the data, or raise optim.skip_nonfinite");
  log::warn(what + ": update skipped (" + std::to_string(st.consecutive_skips) + " in a row, optim.skip_nonfinite = " +
            std::to_string(job.cfg.optim.skip_nonfinite) + ")");
}

// The hooks' console and metrics: rank 0 appends every step to metrics.jsonl and to the segment's
// TensorBoard event file (logging.tensorboard), prints a line every logging.every steps (and at
// evaluations and the end) and draws the progress bar.
class Reporter {
 public:
  explicit Reporter(Job& job)
      : cfg_(job.cfg), main_(job.dist->is_main()), first_step_(job.state.step), metrics_(std::move(job.metrics)) {
    progress_.enabled = main_ && (cfg_.logging.progress == "on" || (cfg_.logging.progress == "auto" && isatty(2)));
    if (main_ && cfg_.logging.tensorboard)
      tensorboard_ = std::make_unique<tensorboard::ScalarLog>(job.run_dir.string(), job.state.step, metrics_->segment());
  }
  // The loss of the step the run starts at, from metrics.jsonl (rank 0; none when unknown).
  std::optional<double> start_loss() const {
    if (!metrics_ || !metrics_->last_kept().is_object() || !metrics_->last_kept().contains("loss") ||
        !metrics_->last_kept()["loss"].is_number())
      return std::nullopt;
    return metrics_->last_kept()["loss"].get<double>();
  }
  // The step's record; evaluation results are added to it before write().
  nlohmann::json record(const TrainerState& st, const StepOutcome& o, double lr, double step_s, int64_t step_tokens) const {
    // elapsed_s counts from the run's first start (metrics_log.h).
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count() +
                           (metrics_ ? metrics_->elapsed_before() : 0.0);
    nlohmann::json rec = {{"step", st.step}, {"loss", o.loss}, {"lr", lr}, {"grad_norm", o.grad_norm},
                          {"tokens_per_s", static_cast<double>(step_tokens) / step_s}, {"tokens_seen", st.tokens_seen},
                          {"elapsed_s", elapsed}, {"step_s", step_s}};
    if (!o.finite) rec["skipped"] = true;
    return rec;
  }
  void write(const nlohmann::json& rec) {
    if (!main_) return;
    metrics_->append(rec);
    if (tensorboard_) tensorboard_->write_record(rec);
    const int64_t step = rec["step"].get<int64_t>(), total = cfg_.schedule.steps;
    if (step % cfg_.logging.every == 0 || step == total || rec.contains("eval_loss")) {
      const double elapsed = rec["elapsed_s"].get<double>();
      const double this_start = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
      const double eta = this_start / static_cast<double>(step - first_step_) * static_cast<double>(total - step);
      progress_.clear();
      std::ostringstream line;
      line << "step " << step << "/" << total << " | loss " << std::fixed << std::setprecision(4) << rec["loss"].get<double>()
           << " | lr " << std::scientific << std::setprecision(2) << rec["lr"].get<double>() << " | grad " << std::fixed
           << std::setprecision(3) << rec["grad_norm"].get<double>() << " | " << std::setprecision(0)
           << rec["tokens_per_s"].get<double>() << " tok/s | elapsed " << hms(elapsed) << " | eta " << hms(eta);
      if (rec.contains("eval_loss")) line << " | eval loss " << std::setprecision(4) << rec["eval_loss"].get<double>();
      if (rec.contains("skipped")) line << " | skipped (not finite)";
      log::info(line.str());
    }
    progress_.draw(step, total, rec["loss"].is_number() ? cat("loss ", rec["loss"].get<double>()) : "loss not finite");
  }
  void clear() const { progress_.clear(); }

 private:
  const RunConfig& cfg_;
  bool main_;
  int64_t first_step_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<tensorboard::ScalarLog> tensorboard_;  // rank 0's, with logging.tensorboard
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  Progress progress_;
};

}  // namespace

TrainSummary train(const RunConfig& cfg, const nlohmann::json& resolved, const std::vector<std::string>& accepted_changes) {
  // Setup. The stop signals are caught from the start: one during a long setup is honoured after
  // the first step.
  const StopSignals signals;
  Job job = setup(cfg, resolved, accepted_changes);
  Distributed& dist = *job.dist;
  TrainerState& state = job.state;
  CheckpointWriter checkpoints(dist, {.run_dir = job.run_dir.string(), .keep_last = cfg.checkpoint.keep_last,
                                      .async = cfg.checkpoint.async,
                                      .model_config = config_to_json(job.model->config(), {.legacy_linear = false,
                                                                                          .with_rope_parameters = false,
                                                                                          .allow_ropex_types = true}),
                                      .run_config = job.checkpoint_config,
                                      .tokenizer_file = model_tokenizer(cfg)});
  const LrSchedule sched{cfg.schedule.type, cfg.optim.lr, cfg.schedule.warmup_steps, cfg.schedule.steps, cfg.schedule.min_lr_ratio};
  Reporter report(job);
  TrainSummary summary;
  const int64_t first_step = state.step;
  // A run resumed at its last step (run again after it completed) has nothing to train.
  if (const auto loss = report.start_loss()) summary.last_loss = *loss;
  summary.already_complete = first_step >= cfg.schedule.steps;
  if (summary.already_complete) {
    log::info(cat("run ", cfg.run.name, " is already complete: its checkpoint is at step ", first_step, " of schedule.steps = ",
                  cfg.schedule.steps, "; nothing to train (to train further, raise schedule.steps and pass "
                  "--accept-change schedule.steps)"));
  }
  const int64_t step_tokens = cfg.global_batch(job.env.world) * cfg.data.train_len;
  // Test hooks (ROPEX_FAULT_INJECT): exit-at-step:S (this rank fails), signal-at-step:S (SIGTERM to
  // this rank before step S), signal-in-eval:S (during the evaluation after step S),
  // resave-after-resume (save the state just loaded, at this world size and stage, and stop).
  const std::string inject = std::getenv("ROPEX_FAULT_INJECT") ? std::getenv("ROPEX_FAULT_INJECT") : "";
  if (inject == "resave-after-resume") {
    checkpoints.save(*job.opt, *job.loader, state);
    return {.steps = state.step, .last_checkpoint = checkpoints.last_committed(), .main_rank = dist.is_main()};
  }

  while (state.step < cfg.schedule.steps) {
    // The step.
    const auto ts = std::chrono::steady_clock::now();
    if (inject == "exit-at-step:" + std::to_string(state.step))
      throw std::runtime_error("fault injected at step " + std::to_string(state.step));
    if (inject == "signal-at-step:" + std::to_string(state.step)) std::raise(SIGTERM);
    const double lr = sched.at(state.step);
    const StepOutcome o = train_step(job.model, *job.opt, *job.loader, dist, job.dev, job.fo,
                                     {.step = state.step, .grad_accum = cfg.batch.grad_accum, .lr = lr,
                                      .grad_clip = cfg.optim.grad_clip, .stop_requested = signals.requested(),
                                      .writer_idle = checkpoints.idle()});
    if (state.step == first_step && job.env.world > 1) log::info(job.opt->reduction_summary());
    checkpoints.commit_if_all_written(o.writers_idle);  // an async save finished on every rank
    try {
      account_nonfinite(job, o, checkpoints.last_committed());
    } catch (...) {  // agreed on every rank: an async save still being written is committed first
      checkpoints.finish();
      throw;
    }
    ++state.step;
    state.optimizer_steps = job.opt->steps();
    state.tokens_seen += step_tokens;
    if (o.finite) summary.last_loss = o.loss;

    // Hooks: evaluation, metrics, checkpoint, stop.
    nlohmann::json rec = report.record(state, o, lr, std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count(),
                                       step_tokens);
    bool stop = o.stop_requested;
    if (!stop && cfg.eval.every > 0 && state.step % cfg.eval.every == 0 && !job.eval_set.empty()) {
      const bool raise_in_eval = inject == "signal-in-eval:" + std::to_string(state.step);
      const std::optional<double> e = evaluate(job.model, job.eval_set, job.dev, dist, job.fo, [&] {
        if (raise_in_eval) std::raise(SIGTERM);
        return signals.requested();
      });
      if (e) {
        rec["eval_loss"] = *e;
        rec["eval_ppl"] = std::exp(*e);
      }
      stop = !e;  // asked to stop during the evaluation: the step itself is complete
    }
    report.write(rec);
    const bool stop_after = cfg.run.stop_after > 0 && state.step >= cfg.run.stop_after;
    const bool last = stop || stop_after || state.step == cfg.schedule.steps;
    if (last || (cfg.checkpoint.every > 0 && state.step % cfg.checkpoint.every == 0)) {
      report.clear();
      checkpoints.save(*job.opt, *job.loader, state);
      if (last) checkpoints.finish();
    }
    if ((stop || stop_after) && state.step < cfg.schedule.steps) {
      if (stop)
        log::warn(cat("stop requested (signal ", signals.signal() ? std::to_string(signals.signal()) : "on another rank",
                      "): stopped at step ", state.step, " with a checkpoint; ", resume_hint(cfg)));
      else log::info(cat("stopping at step ", state.step, " (run.stop_after); ", resume_hint(cfg)));
      dist.barrier();
      return {.steps = state.step, .last_loss = summary.last_loss, .last_checkpoint = checkpoints.last_committed(),
              .preempted = stop, .main_rank = dist.is_main()};
    }
  }

  // The end: the last save committed, the export.
  checkpoints.finish();
  report.clear();
  summary.steps = state.step;
  summary.main_rank = dist.is_main();
  summary.last_checkpoint = checkpoints.last_committed().empty() ? latest_checkpoint(job.run_dir.string()).value_or("")
                                                                 : checkpoints.last_committed();
  dist.barrier();  // the last collective: the export below is rank 0's alone, nobody waits on it
  if (cfg.export_.at_end && dist.is_main() && !summary.last_checkpoint.empty()) {
    summary.export_dir = export_dir(cfg);
    // A complete run run again keeps the export it made (config.json is written after the weights).
    if (summary.already_complete && fs::exists(fs::path(summary.export_dir) / "config.json")) {
      log::info("export " + summary.export_dir + " was written when the run completed; left as it is");
    } else {
      export_checkpoint(summary.last_checkpoint, summary.export_dir, st::parse_size(cfg.export_.max_shard_size),
                        parse_dtype_name(cfg.export_.dtype));
      log::info("exported " + summary.export_dir);
    }
  }
  return summary;
}

}  // namespace ropex
