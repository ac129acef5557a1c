// RunConfig keys and checks. See run_config.h.
#include "trainer/run_config.h"

#include "models/llama.h"
#include "models/safetensors.h"
#include "models/sdpa_order.h"

#include <filesystem>

namespace ropex {
static_assert(RunConfig::Model{}.loss_chunk_tokens == kDefaultLossChunkTokens, "one default loss chunk");

void RunConfig::bind(ConfigSchema& s) {
  s.add("run.name", &run.name, "run name, used in logs");
  s.add("run.output_dir", &run.output_dir, "run directory: checkpoints/, metrics.jsonl, resolved config, export/");
  s.add("run.seed", &run.seed, "seed for data order, position plans and random init", 0);
  s.add("run.log_level", &run.log_level, "console log level", {"trace", "debug", "info", "warn", "error"});
  s.add("run.stop_after", &run.stop_after,
        "stop with a checkpoint once this step is reached (0 = run to schedule.steps); resume continues", 0);

  s.add("model.path", &model.path, "Hugging Face Llama directory (config.json, safetensors, tokenizer.model)");
  s.add("model.from_scratch", &model.from_scratch, "random init from model.path's config.json instead of its weights");
  s.add("model.dtype", &model.dtype, "compute dtype: auto = float32 on CPU, bfloat16 on CUDA (fp32 master weights)",
        {"auto", "float32", "bfloat16"});
  s.add("model.device", &model.device, "auto = cuda:LOCAL_RANK when CUDA is available, else cpu", {"auto", "cpu", "cuda"});
  s.add("model.attention", &model.attention, "attention kernel", {"sdpa", "reference"});
  s.add("model.sdpa_backends", &model.sdpa_backends,
        "order in which SDPA tries its backends: auto = cudnn,flash,efficient,math (cuDNN attention first; a backend "
        "that cannot run the shape is skipped), torch = ATen's own order, or a comma-separated list of cudnn, flash, "
        "efficient, math");
  s.add("model.norm", &model.norm,
        "RMSNorm kernel: auto = fused (at::rms_norm, one kernel forward and backward) on CUDA and transformers' order "
        "(normalise in float32, cast, multiply) on the CPU; reference = transformers' order everywhere",
        {"auto", "reference", "fused"});
  s.add("model.activation_checkpointing", &model.activation_checkpointing,
        "recompute decoder layers in backward instead of storing their activations: true = every layer, false = none, "
        "k = layers 0, k, 2k, ... (memory between the two; `ropex plan` shows it)");
  s.add("model.loss_chunk_tokens", &model.loss_chunk_tokens,
        "the lm_head and the loss run this many tokens at a time, so the full [tokens, vocab] logits never exist; "
        "0 = all at once (the plain path; needs about 12 bytes x tokens x vocab)", 0);

  s.add("rope.type", &rope.type, "frequency scaling trained with (keep = the model's own)",
        {"keep", "default", "linear", "ntk", "dynamic", "yarn", "dynamic-yarn", "llama3"});
  s.add("rope.factor", &rope.factor,
        "scale factor (>= 1: ropex extends context); 0 = rope.target_len / the model's pre-trained length", 0.0, 4096.0);
  s.add("rope.target_len", &rope.target_len, "target context length L (0 = keep the model's)", 0);
  s.add("rope.extra", &rope.extra, "other HF rope keys, e.g. {\"beta_fast\": 32, \"attention_factor\": 1.0}");

  s.add("data.store", &data.store, "token store directory written by `ropex prepare`");
  s.add("data.train_len", &data.train_len, "N, tokens per training sequence (the window)", 2);

  s.add("sampler.name", &sampler.name, "position sampler", {"contiguous", "randpos", "pose", "cream"});
  s.add("sampler.pose_chunks", &sampler.pose_chunks, "PoSE: number of chunks", 2);
  s.add("sampler.cream_mode", &sampler.cream_mode, "CREAM: how continuity/relativity is chosen",
        {"per_block", "per_sample", "continuity", "relativity"});
  s.add("sampler.cream_block_size", &sampler.cream_block_size, "CREAM per_block: examples per coin (official 3000)", 1);
  s.add("sampler.cream_continuity_prob", &sampler.cream_continuity_prob, "CREAM per_sample: P(continuity)", 0.0, 1.0);
  s.add("sampler.cream_sigma", &sampler.cream_sigma, "CREAM: std of the truncated Gaussian, in half-windows", 0.0);
  s.add("sampler.cream_mu", &sampler.cream_mu, "CREAM: its mean over r = 2s; -1 = 1 + f (official code: 9)");
  s.add("sampler.cream_continuity_len", &sampler.cream_continuity_len, "CREAM continuity head/tail length; -1 = 4f");
  s.add("sampler.cream_table_points", &sampler.cream_table_points, "CREAM: points of the tabulated CDF", 2);
  s.add("sampler.short_docs", &sampler.short_docs, "documents shorter than the sampler needs", {"skip", "error"});
  s.add("sampler.resample", &sampler.resample, "plans drawn once per example (official) or anew each epoch",
        {"once", "per_epoch"});

  s.add("optim.lr", &optim.lr, "peak learning rate (AdamW moves each weight by about lr per step: above 1 is a typo)", 0.0, 1.0);
  s.add("optim.beta1", &optim.beta1, "AdamW beta1", 0.0, 1.0);
  s.add("optim.beta2", &optim.beta2, "AdamW beta2", 0.0, 1.0);
  s.add("optim.eps", &optim.eps, "AdamW epsilon", 0.0, 1.0);
  s.add("optim.weight_decay", &optim.weight_decay,
        "decoupled weight decay (norm weights and biases excluded); each step scales weights by 1 - lr x weight_decay", 0.0);
  s.add("optim.grad_clip", &optim.grad_clip, "clip the global gradient norm to this (0 = off)", 0.0, 1e30);
  s.add("optim.skip_nonfinite", &optim.skip_nonfinite,
        "skip up to N consecutive steps whose loss or gradient norm is not finite (weights, moments and AdamW's step "
        "count untouched; the batch is consumed), then stop naming the step; 0 = stop at the first", 0);

  s.add("optim.kernel", &optim.kernel,
        "AdamW update: auto = fused (at::_fused_adamw_ over many tensors per call) on CUDA, reference (tensor by "
        "tensor, torch.optim.AdamW's sequence of operations) on the CPU; both keep float32 masters and moments",
        {"auto", "reference", "fused"});

  s.add("schedule.type", &schedule.type, "learning-rate schedule after warmup", {"constant", "linear", "cosine"});
  s.add("schedule.warmup_steps", &schedule.warmup_steps, "linear warmup steps", 0);
  s.add("schedule.steps", &schedule.steps, "optimizer steps in the run", 1);
  s.add("schedule.min_lr_ratio", &schedule.min_lr_ratio, "final lr as a fraction of the peak (linear/cosine)", 0.0, 1.0);

  s.add("batch.micro_batch_size", &batch.micro_batch_size, "sequences per rank per forward", 1);
  s.add("batch.grad_accum", &batch.grad_accum, "micro-batches per optimizer step (global batch = micro x accum x ranks)", 1);

  s.add("checkpoint.every", &checkpoint.every, "checkpoint interval in steps (0 = only at the end)", 0);
  s.add("checkpoint.keep_last", &checkpoint.keep_last,
        "complete checkpoints kept (sound ones counted; older ones pruned only after a newer one is committed)", 1);
  s.add("checkpoint.resume", &checkpoint.resume,
        "auto = newest checkpoint in the run dir that passes verification (a corrupt one is reported, renamed "
        ".corrupt, and the previous one used), never, or a path (refused if it fails verification)");
  s.add("checkpoint.start_over", &checkpoint.start_over,
        "with checkpoint.resume = never, a run folder that already holds checkpoints is refused (the next default run "
        "would resume the old run's), or its checkpoints, metrics and export are moved to RUN/previous-DATE "
        "(move_aside) or deleted", {"refuse", "move_aside", "delete"});
  s.add("checkpoint.async", &checkpoint.async,
        "write checkpoints from a host copy of each rank's state in a background thread while training continues "
        "(costs that copy in host memory; one save in flight; the files are identical)");

  s.add("eval.every", &eval.every, "held-out loss every N steps (0 = never)", 0);
  s.add("eval.docs", &eval.docs, "held-out documents, taken from the end of the store", 0);

  s.add("export.at_end", &export_.at_end, "write an HF directory when training ends");
  s.add("export.dir", &export_.dir, "export directory (default: run.output_dir/export)");
  s.add("export.max_shard_size", &export_.max_shard_size, "safetensors shard size, e.g. 5GB (0 = one file)");
  s.add("export.dtype", &export_.dtype, "dtype of exported weights", {"float32", "bfloat16", "float16"});

  s.add("distributed.backend", &distributed.backend, "auto = nccl on CUDA, gloo on CPU", {"auto", "gloo", "nccl"});
  s.add("distributed.timeout_s", &distributed.timeout_s, "collective timeout: a dead rank fails the others after this", 1);
  s.add("distributed.bucket_mb", &distributed.bucket_mb,
        "gradient bucket size for the all-reduce or reduce-scatter overlapped with backward (MiB; fractions allowed)", 1e-3,
        1048576.0);
  s.add("distributed.zero_stage", &distributed.zero_stage,
        "ZeRO: 0 = every rank keeps the whole optimizer state; 1 = float32 masters and AdamW moments sharded over "
        "ranks (gradients reduce-scattered, updated weights all-gathered); 2 = also the reduced gradients "
        "(whole gradients freed after the reduction). Checkpoints are the same for every stage and resume with any",
        0, 2);

  s.add("distributed.collectives_with_one_rank", &distributed.collectives_with_one_rank,
        "with one rank, still make the backend (an in-process store) and run every collective through it: a check "
        "of NCCL or Gloo on one GPU or CPU (./run.sh gpu-check); off, one rank skips them");

  s.add("logging.every", &logging.every, "console line every N steps", 1);
  s.add("logging.progress", &logging.progress, "progress bar (auto = when stderr is a terminal)", {"auto", "on", "off"});
  s.add("logging.tensorboard", &logging.tensorboard,
        "TensorBoard event files in run.output_dir (events.out.tfevents.*, one per run segment): train/loss, train/lr, "
        "train/grad_norm, train/tokens_per_s at every step, eval/loss and eval/ppl at evaluations");
  s.add("logging.picture", &logging.picture,
        "when train ends or stops, rank 0 draws run.png in run.output_dir: training and evaluation loss, learning rate "
        "and gradient norm against the step (trainer/plot_run.py, needs Python with matplotlib; `ropex plot-run` redraws it)");

  // What other trainers (HF Trainer, torchtune, the papers' scripts) call these keys.
  for (const auto& [alias, key] : std::vector<std::pair<const char*, const char*>>{
           {"learning_rate", "optim.lr"}, {"max_grad_norm", "optim.grad_clip"}, {"adam_beta1", "optim.beta1"},
           {"adam_beta2", "optim.beta2"}, {"adam_epsilon", "optim.eps"}, {"max_steps", "schedule.steps"},
           {"num_steps", "schedule.steps"}, {"total_steps", "schedule.steps"}, {"warmup", "schedule.warmup_steps"},
           {"lr_scheduler_type", "schedule.type"}, {"scheduler", "schedule.type"},
           {"batch_size", "batch.micro_batch_size"}, {"per_device_train_batch_size", "batch.micro_batch_size"},
           {"gradient_accumulation_steps", "batch.grad_accum"}, {"seq_len", "data.train_len"},
           {"seq_length", "data.train_len"}, {"max_seq_len", "data.train_len"}, {"max_seq_length", "data.train_len"},
           {"model_name_or_path", "model.path"}, {"dataset", "data.store"}, {"output", "run.output_dir"},
           {"save_steps", "checkpoint.every"}, {"save_total_limit", "checkpoint.keep_last"},
           {"eval_steps", "eval.every"}, {"logging_steps", "logging.every"},
           {"gradient_checkpointing", "model.activation_checkpointing"}, {"torch_dtype", "model.dtype"},
           {"zero", "distributed.zero_stage"}, {"rope_scaling", "rope.type"}, {"scaling_factor", "rope.factor"}})
    s.hint_key(alias, key);
  s.hint_value("model.dtype", "bf16", "did you mean \"bfloat16\"?");
  s.hint_value("model.dtype", "fp32", "did you mean \"float32\"?");
  s.hint_value("model.dtype", "float", "did you mean \"float32\"?");
  for (const char* half : {"fp16", "float16", "half"})
    s.hint_value("model.dtype", half,
                 "float16 needs loss scaling, which ropex does not do: train in \"bfloat16\" (or \"float32\"); "
                 "export.dtype may still be float16");
  s.hint_value("export.dtype", "bf16", "did you mean \"bfloat16\"?");
  s.hint_value("export.dtype", "fp16", "did you mean \"float16\"?");
  s.hint_value("export.dtype", "fp32", "did you mean \"float32\"?");
}

RunConfig RunConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig cfg;
  ConfigSchema schema;
  cfg.bind(schema);
  schema.apply_file(path);
  for (const auto& o : overrides) schema.apply_override(o);
  cfg.validate(path);
  return cfg;
}

void RunConfig::validate(const std::string& source) const {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw ConfigError(source + ": key '" + key + "': " + what);
  };
  if (model.path.empty()) fail("model.path", "required: the Hugging Face Llama directory to start from");
  if (!std::filesystem::is_directory(model.path)) fail("model.path", "'" + model.path + "' is not a directory");
  if (data.store.empty()) fail("data.store", "required: a token store written by `ropex prepare`");
  if (run.output_dir.empty()) fail("run.output_dir", "must not be empty");
  if (schedule.warmup_steps > schedule.steps)
    fail("schedule.warmup_steps", "must not exceed schedule.steps (" + std::to_string(schedule.steps) + ")");
  if (rope.type != "keep" && rope.type != "default" && rope.target_len == 0 && rope.factor == 0)
    fail("rope.target_len", "rope.type '" + rope.type + "' needs rope.target_len (or rope.factor)");
  if (!rope.extra.is_object()) fail("rope.extra", "must be a JSON object of HF rope keys");
  try {
    sdpa_order_words(model.sdpa_backends);
  } catch (const std::exception& e) {
    fail("model.sdpa_backends", e.what());
  }
  // Checked now, not when the export runs after all of training.
  try {
    st::parse_size(export_.max_shard_size);
  } catch (const std::exception& e) {
    fail("export.max_shard_size", e.what());
  }
  if (optim.lr * optim.weight_decay > 1)
    fail("optim.weight_decay", "each step scales the weights by 1 - optim.lr x optim.weight_decay, which is below 0 "
         "with optim.lr = " + std::to_string(optim.lr) + " and weight_decay = " + std::to_string(optim.weight_decay));
  if (rope.type == "keep" && rope.factor != 0)
    fail("rope.factor", "has no meaning with rope.type 'keep' (the model's own scaling is trained); set it to 0, "
         "or choose a rope.type");
  if (rope.type == "keep" && !rope.extra.empty())
    fail("rope.extra", "has no meaning with rope.type 'keep' (the model's own scaling is trained)");
  if (rope.factor != 0 && rope.factor < 1)
    fail("rope.factor", "must be >= 1 (ropex extends the context; a factor below 1 would shrink it), got " +
         std::to_string(rope.factor));
  if (sampler.name != "contiguous" && rope.target_len > 0 && rope.target_len <= data.train_len)
    fail("rope.target_len", "sampler '" + sampler.name + "' trains at data.train_len = " + std::to_string(data.train_len) +
         " and needs rope.target_len above it, got " + std::to_string(rope.target_len));
}

nlohmann::json RunConfig::to_json() {
  ConfigSchema schema;
  bind(schema);
  return schema.to_json();
}

std::string run_config_docs() {
  RunConfig cfg;
  ConfigSchema schema;
  cfg.bind(schema);
  return schema.markdown_table();
}

}  // namespace ropex
