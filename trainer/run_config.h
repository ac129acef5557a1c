// RunConfig: one JSON file is the whole training run. Every key, its type, default and meaning is
// registered here once (bind()), which gives strict parsing (unknown keys / wrong types are errors
// naming the key), `--set section.key=value` overrides, the resolved config (to_json) and the
// table in configs/README.md (`ropex config-docs`). Cross-key checks live in validate().
#pragma once
#include "data/positions.h"
#include "trainer/config_schema.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ropex {

struct RunConfig {
  struct Run {
    std::string name = "ropex";
    std::string output_dir = "runs/ropex";
    int64_t seed = 0;
    std::string log_level = "info";
    int64_t stop_after = 0;          // stop (with a checkpoint) once this step is reached; 0 = run to the end
  } run;
  struct Model {
    std::string path;                // HF Llama directory (config.json, weights, tokenizer.model)
    bool from_scratch = false;       // random init with path's config.json (no weights read)
    std::string dtype = "auto";      // auto | float32 | bfloat16
    std::string device = "auto";     // auto | cpu | cuda
    std::string attention = "sdpa";  // sdpa | reference
    std::string sdpa_backends = "auto";  // auto | torch | a list such as cudnn,flash,efficient,math
    std::string norm = "auto";       // auto | reference | fused (models/rms_norm.h)
    EveryKth activation_checkpointing;  // decoder layers recomputed in backward: none, all, every k-th
    int64_t loss_chunk_tokens = 1024;  // rows of logits made at a time by the loss; 0 = all at once
  } model;
  struct Rope {
    std::string type = "linear";     // keep | default | linear | ntk | dynamic | yarn | dynamic-yarn | llama3
    double factor = 0;               // 0: target_len / the model's max_position_embeddings
    int64_t target_len = 0;          // L, the context to reach (0: keep the model's)
    nlohmann::json extra = nlohmann::json::object();  // other HF keys: beta_fast, attention_factor, ...
  } rope;
  struct Data {
    std::string store;               // token store written by `ropex prepare`
    int64_t train_len = 4096;        // N, tokens per training sequence
  } data;
  SamplerOptions sampler;            // sampler.*; train_len/target_len come from data/rope
  struct Optim {
    double lr = 2e-5, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0, grad_clip = 1.0;
    int64_t skip_nonfinite = 0;      // consecutive non-finite steps skipped before stopping (0 = stop at the first)
    std::string kernel = "auto";     // auto | reference | fused (trainer/adamw_fused.h)
  } optim;
  struct Schedule {
    std::string type = "linear";     // constant | linear | cosine
    int64_t warmup_steps = 10;
    int64_t steps = 1000;
    double min_lr_ratio = 0.0;
  } schedule;
  struct Batch {
    int64_t micro_batch_size = 1;
    int64_t grad_accum = 1;
  } batch;
  struct Checkpoint {
    int64_t every = 100;             // steps; 0 = only at the end
    int64_t keep_last = 2;
    std::string resume = "auto";     // auto | never | a checkpoint directory
    std::string start_over = "refuse";  // resume = never on a folder with checkpoints: refuse | move_aside | delete
    bool async = false;              // write from a host snapshot while training continues
  } checkpoint;
  struct Eval {
    int64_t every = 0;               // steps; 0 = never
    int64_t docs = 8;                // held-out documents (taken from the end of the store)
  } eval;
  struct Export {
    bool at_end = true;
    std::string dir;                 // default: output_dir/export
    std::string max_shard_size = "5GB";
    std::string dtype = "bfloat16";
  } export_;
  struct Distributed {
    std::string backend = "auto";    // auto | gloo | nccl
    int64_t timeout_s = 300;
    double bucket_mb = 25;
    int64_t zero_stage = 0;          // 0 replicated optimizer | 1 sharded optimizer state | 2 + sharded gradients
    bool collectives_with_one_rank = false;  // one rank still makes the backend and runs every collective
  } distributed;
  struct Logging {
    int64_t every = 1;
    std::string progress = "auto";   // auto | on | off
    bool tensorboard = true;         // TensorBoard event files in the run folder (trainer/tensorboard/scalar_log.h)
    bool picture = true;             // run.png in the run folder when train ends (trainer/plot_run.py)
  } logging;

  // Registers every key on `schema` (bound to this object's fields).
  void bind(ConfigSchema& schema);
  // Loads file + overrides; validates; throws ConfigError naming the key.
  static RunConfig load(const std::string& path, const std::vector<std::string>& overrides);
  void validate(const std::string& source) const;
  nlohmann::json to_json();
  int64_t global_batch(int64_t world) const { return batch.micro_batch_size * batch.grad_accum * world; }
};

// The markdown table of every key (configs/README.md is generated from it).
std::string run_config_docs();

}  // namespace ropex
