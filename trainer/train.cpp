// The training loop. See train.h; data flow is one call per arrow of the sequence there.
#include "trainer/train.h"

#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "trainer/checkpoint.h"
#include "trainer/distributed.h"
#include "trainer/log.h"
#include "trainer/optim.h"
#include "trainer/zero.h"

#include <torch/cuda.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace ropex {
namespace fs = std::filesystem;

RopeScaling run_rope(const RunConfig& cfg, const LlamaConfig& model, int64_t* max_pos, int64_t* target_len) {
  *max_pos = model.max_position_embeddings;
  *target_len = model.max_position_embeddings;
  if (cfg.rope.type == "keep") return model.rope;
  // The pre-trained length: a scaled model's original_max_position_embeddings (never its extended
  // length, which would move YaRN's and llama3's bands), else max_position_embeddings.
  const int64_t original = model.rope.original_max_position_embeddings > 0 ? model.rope.original_max_position_embeddings
                                                                           : model.max_position_embeddings;
  nlohmann::json j = cfg.rope.extra;
  j["rope_type"] = cfg.rope.type;
  double factor = cfg.rope.factor;
  if (factor == 0 && cfg.rope.target_len > 0) factor = static_cast<double>(cfg.rope.target_len) / static_cast<double>(original);
  if (cfg.rope.type != "default") j["factor"] = factor;
  if (!j.contains("original_max_position_embeddings") && cfg.rope.type != "default") j["original_max_position_embeddings"] = original;
  RopeScaling r = rope_scaling_from_json(j, "run config (rope)", 0);
  const int64_t target = cfg.rope.target_len > 0 ? cfg.rope.target_len : static_cast<int64_t>(std::llround(factor * original));
  *target_len = target;
  // transformers reads max_position_embeddings as the original length for dynamic NTK, the target otherwise.
  *max_pos = cfg.rope.type == "dynamic" ? original : (cfg.rope.type == "default" ? std::max(target, original) : target);
  return r;
}

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

double evaluate(LlamaForCausalLM& model, const std::vector<Batch>& batches, const at::Device& dev, Distributed& dist,
                const ForwardOptions& fo) {
  torch::NoGradGuard ng;
  model->eval();
  double sum = 0, count = 0;
  for (size_t i = dist.rank(); i < batches.size(); i += dist.world()) {  // held-out docs sharded over ranks
    const Batch& b = batches[i];
    LossResult l = causal_lm_loss(model->forward(b.input_ids.to(dev), b.position_ids.to(dev), fo), b.labels.to(dev));
    sum += l.sum.item<double>();
    count += static_cast<double>(l.count.item<int64_t>());
  }
  at::Tensor t = at::tensor({sum, count}, at::kDouble);
  if (dev.is_cuda()) t = t.to(dev);
  dist.allreduce_sum(t);
  t = t.cpu();
  model->train();
  return t[0].item<double>() / std::max(1.0, t[1].item<double>());
}
}  // namespace

TrainSummary train(const RunConfig& cfg, const nlohmann::json& resolved) {
  const DistEnv env = read_dist_env();
  if (env.world > 1) log::set_rank(env.rank);
  log::set_level(log::parse_level(cfg.run.log_level));
  const at::Device dev = pick_device(cfg, env);
  const std::string backend = cfg.distributed.backend == "auto" ? (dev.is_cuda() ? "nccl" : "gloo") : cfg.distributed.backend;
  Distributed dist(env, backend, std::chrono::seconds(cfg.distributed.timeout_s));
  const at::ScalarType dtype = cfg.model.dtype == "auto" ? (dev.is_cuda() ? at::kBFloat16 : at::kFloat) : parse_dtype_name(cfg.model.dtype);
  const fs::path run_dir(cfg.run.output_dir);
  if (dist.is_main()) {
    fs::create_directories(run_dir);
    std::ofstream(run_dir / "run_config.json") << resolved.dump(2) << "\n";
    log::info("run " + cfg.run.name + " -> " + run_dir.string() + "\n" + resolved.dump(2));
  }
  // All ranks must run the same configuration.
  for (const auto& other : dist.allgather_string(resolved.dump()))
    if (other != resolved.dump()) throw std::runtime_error("ranks were started with different configurations");

  // Model: the HF directory, the run's rope scaling, this rank's device and dtype.
  LlamaConfig mc = load_config(cfg.model.path);
  int64_t max_pos = 0, target_len = 0;
  RopeScaling rope = run_rope(cfg, mc, &max_pos, &target_len);
  LlamaForCausalLM model(mc);
  if (cfg.model.from_scratch) model->init_weights(static_cast<uint64_t>(cfg.run.seed));
  else load_weights(model, cfg.model.path);
  model->set_rope(rope, max_pos);
  model->to(dev, at::kFloat);
  model->train();
  std::vector<at::Tensor> params;
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (auto& p : model->named_parameters()) {
    params.push_back(p.value());
    named.emplace_back(p.key(), p.value());
  }
  dist.broadcast_params(params);
  // The optimizer's masters are taken from the float32 weights before the model is cast down (a
  // master made from bfloat16 weights would have lost their low bits for good); its gradient hooks
  // are attached once the parameters have their compute dtype.
  const int zero_stage = static_cast<int>(cfg.distributed.zero_stage);
  std::unique_ptr<DataParallelOptimizer> opt = make_data_parallel_optimizer(
      dist, named,
      {.lr = cfg.optim.lr, .beta1 = cfg.optim.beta1, .beta2 = cfg.optim.beta2, .eps = cfg.optim.eps,
       .weight_decay = cfg.optim.weight_decay},
      zero_stage, static_cast<int64_t>(cfg.distributed.bucket_mb * (1 << 20)), dtype);
  model->to(dtype);
  opt->attach();
  {
    const OptimizerMemory m = opt->memory();
    int64_t numel = 0;
    for (const auto& p : params) numel += p.numel();
    // Replicated: both moments, and masters unless the model computes in float32 (then they are its weights).
    const int64_t replicated = numel * 8 + (dtype == at::kFloat ? 0 : numel * 4);
    log::info(cat("optimizer state on this rank: ", human_bytes(m.master + m.moments), " = float32 masters ",
                  human_bytes(m.master), " + moments ", human_bytes(m.moments), " (ZeRO-", zero_stage, " over ", env.world,
                  env.world == 1 ? " rank" : " ranks", "; replicated on every rank: ", human_bytes(replicated), ")"));
  }
  log::info(cat("model ", cfg.model.path, ": ", mc.num_hidden_layers, " layers, hidden ", mc.hidden_size, ", rope ",
                describe_rope(rope, mc.rope_theta), ", max_position_embeddings ", max_pos, ", ", dtype_name(dtype), " on ", dev.str()));

  // Data.
  SamplerOptions so = cfg.sampler;
  so.train_len = cfg.data.train_len;
  so.target_len = cfg.sampler.name == "contiguous" ? cfg.data.train_len : target_len;
  if (cfg.sampler.name != "contiguous" && so.target_len <= so.train_len)
    throw ConfigError(cat("rope: sampler '", cfg.sampler.name, "' needs a target length above data.train_len = ", so.train_len,
                          ", got ", so.target_len, " (set rope.target_len)"));
  auto store = std::make_shared<const TokenStore>(TokenStore::open(cfg.data.store));
  if (store->vocab_size() > mc.vocab_size)
    throw std::runtime_error(cfg.data.store + ": tokenized with a vocabulary of " + std::to_string(store->vocab_size()) +
                             " but the model has vocab_size " + std::to_string(mc.vocab_size));
  Loader loader(store, so, {.seed = static_cast<uint64_t>(cfg.run.seed), .rank = env.rank, .world = env.world,
                            .micro_batch = cfg.batch.micro_batch_size, .grad_accum = cfg.batch.grad_accum,
                            .holdout_docs = cfg.eval.every > 0 ? cfg.eval.docs : 0});
  log::info(cat("data ", cfg.data.store, ": ", loader.train_docs(), " training documents (", loader.skipped_docs(),
                " shorter than the sampler's minimum skipped), sampler ", so.name, ", window ", so.train_len,
                ", positions < ", so.target_len, ", global batch ", cfg.global_batch(env.world)));

  const LrSchedule sched{cfg.schedule.type, cfg.optim.lr, cfg.schedule.warmup_steps, cfg.schedule.steps, cfg.schedule.min_lr_ratio};

  TrainerState state{.step = 0, .tokens_seen = 0, .world = env.world, .seed = static_cast<uint64_t>(cfg.run.seed)};
  std::string resume_from;
  if (cfg.checkpoint.resume == "auto") resume_from = latest_checkpoint(run_dir.string()).value_or("");
  else if (cfg.checkpoint.resume != "never") resume_from = cfg.checkpoint.resume;
  for (const auto& other : dist.allgather_string(resume_from))  // every rank must resume from the same place
    if (other != resume_from)
      throw std::runtime_error("ranks disagree on the checkpoint to resume from ('" + resume_from + "' vs '" + other +
                               "'): run.output_dir must be on a filesystem all ranks share");
  if (!resume_from.empty()) {
    state = load_checkpoint(resume_from, dist, model, *opt, loader);
    log::info(cat("resumed from ", resume_from, " at step ", state.step));
  }

  const std::string tokenizer = (fs::path(cfg.model.path) / "tokenizer.model").string();
  ForwardOptions fo;
  fo.attention = parse_attention_backend(cfg.model.attention);
  fo.activation_checkpointing = cfg.model.activation_checkpointing;
  std::ofstream metrics;
  if (dist.is_main()) metrics.open(run_dir / "metrics.jsonl", std::ios::app);
  Progress progress;
  progress.enabled = dist.is_main() && (cfg.logging.progress == "on" || (cfg.logging.progress == "auto" && isatty(2)));
  const std::vector<Batch> eval_set = cfg.eval.every > 0 ? loader.eval_batches(cfg.data.train_len) : std::vector<Batch>{};
  TrainSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first_step = state.step;
  std::string last_ckpt;

  while (state.step < cfg.schedule.steps) {
    const auto ts = std::chrono::steady_clock::now();
    // Fault injection for the failing-rank test: ROPEX_FAULT_INJECT=exit-at-step:N exits this process.
    if (const char* f = std::getenv("ROPEX_FAULT_INJECT"); f && std::string(f) == "exit-at-step:" + std::to_string(state.step))
      throw std::runtime_error("fault injected at step " + std::to_string(state.step));
    const double lr = sched.at(state.step);
    std::vector<Batch> micro;
    double local_tokens = 0;
    for (int64_t m = 0; m < cfg.batch.grad_accum; ++m) {
      micro.push_back(loader.micro_batch(state.step, m));
      local_tokens += static_cast<double>(micro.back().valid_labels);
    }
    // The loss is the mean over every valid label of the global batch (all micro-batches, all ranks).
    // Device tensors throughout the step (NCCL reduces device tensors only); the host reads once,
    // for the log line, after the optimizer step.
    at::Tensor total_tokens = at::tensor({local_tokens}, at::kFloat).to(dev);
    dist.allreduce_sum(total_tokens);
    at::Tensor loss_sum = at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(dev));
    for (size_t mi = 0; mi < micro.size(); ++mi) {
      const Batch& b = micro[mi];
      if (mi + 1 == micro.size()) opt->arm();  // reduce during the last backward only
      at::Tensor logits = model->forward(b.input_ids.to(dev), b.position_ids.to(dev), fo);
      LossResult l = causal_lm_loss(logits, b.labels.to(dev));
      (l.sum / total_tokens[0]).backward();
      loss_sum += l.sum.detach().to(at::kDouble);
    }
    opt->finish();
    if (state.step == first_step && env.world > 1) log::info(opt->reduction_summary());
    at::Tensor grad_norm = opt->clip_grad_norm(cfg.optim.grad_clip);
    opt->step(lr);
    opt->zero_grad();
    dist.allreduce_sum(loss_sum);
    at::Tensor logged = at::cat({loss_sum / total_tokens.to(at::kDouble), grad_norm.to(at::kDouble).reshape({1})}).cpu();
    const double loss = logged[0].item<double>(), gnorm = logged[1].item<double>();
    ++state.step;
    state.tokens_seen += static_cast<int64_t>(cfg.global_batch(env.world) * cfg.data.train_len);
    summary.last_loss = loss;

    const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tok_s = static_cast<double>(cfg.global_batch(env.world) * cfg.data.train_len) / step_s;
    const double eta = elapsed / static_cast<double>(state.step - first_step) * static_cast<double>(cfg.schedule.steps - state.step);
    nlohmann::json rec = {{"step", state.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", gnorm}, {"tokens_per_s", tok_s},
                          {"tokens_seen", state.tokens_seen}, {"elapsed_s", elapsed}, {"step_s", step_s}};
    if (cfg.eval.every > 0 && state.step % cfg.eval.every == 0 && !eval_set.empty()) {
      rec["eval_loss"] = evaluate(model, eval_set, dev, dist, fo);
      rec["eval_ppl"] = std::exp(rec["eval_loss"].get<double>());
    }
    if (dist.is_main()) {
      metrics << rec.dump() << "\n" << std::flush;
      if (state.step % cfg.logging.every == 0 || state.step == cfg.schedule.steps || rec.contains("eval_loss")) {
        progress.clear();
        std::ostringstream line;
        line << "step " << state.step << "/" << cfg.schedule.steps << " | loss " << std::fixed << std::setprecision(4) << loss
             << " | lr " << std::scientific << std::setprecision(2) << lr << " | grad " << std::fixed << std::setprecision(3)
             << gnorm << " | " << std::setprecision(0) << tok_s << " tok/s | elapsed " << hms(elapsed) << " | eta " << hms(eta);
        if (rec.contains("eval_loss")) line << " | eval loss " << std::setprecision(4) << rec["eval_loss"].get<double>();
        log::info(line.str());
      }
      progress.draw(state.step, cfg.schedule.steps, cat("loss ", loss));
    }
    const bool due = cfg.checkpoint.every > 0 && state.step % cfg.checkpoint.every == 0;
    const bool stopping = cfg.run.stop_after > 0 && state.step >= cfg.run.stop_after;
    if (due || stopping || state.step == cfg.schedule.steps) {
      progress.clear();
      last_ckpt = save_checkpoint(dist, run_dir.string(), model, *opt, loader, state, resolved, tokenizer, cfg.checkpoint.keep_last);
      log::info("checkpoint " + last_ckpt);
    }
    if (stopping && state.step < cfg.schedule.steps) {
      log::info(cat("stopping at step ", state.step, " (run.stop_after); run the same command again to resume"));
      summary.steps = state.step;
      summary.last_checkpoint = last_ckpt;
      dist.barrier();
      return summary;
    }
  }
  progress.clear();
  summary.steps = state.step;
  summary.last_checkpoint = last_ckpt.empty() ? latest_checkpoint(run_dir.string()).value_or("") : last_ckpt;
  dist.barrier();  // the last collective: the export below is rank 0's alone, nobody waits on it
  if (cfg.export_.at_end && dist.is_main() && !summary.last_checkpoint.empty()) {
    summary.export_dir = cfg.export_.dir.empty() ? (run_dir / "export").string() : cfg.export_.dir;
    export_checkpoint(summary.last_checkpoint, summary.export_dir, st::parse_size(cfg.export_.max_shard_size),
                      parse_dtype_name(cfg.export_.dtype));
    log::info("exported " + summary.export_dir);
  }
  return summary;
}

}  // namespace ropex
