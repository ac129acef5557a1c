// Built-in evaluation (../shared/spec/evaluation_protocols.md), the work behind `ropex eval`:
//   ppl      perplexity by length, truncated (one window of the first L tokens per document) and
//            sliding-window (window L, stride S, each token scored once) protocols, reported with
//            both aggregations: exp(mean of per-window mean NLL) (YaRN's) and exp(token-weighted NLL);
//   passkey  retrieval on a grid of lengths x depths, greedy decoding with a KV cache (keys cached
//            before rotation, so dynamic scaling re-rotates them as the sequence grows);
//   kv       key-value retrieval with the asked key at positions from first to last, accuracy by
//            position bin (start / middle / end thirds of the position grid) and by position.
// Work items are dealt round-robin over the ranks of a distributed launch and gathered on every
// rank; the result is the same JSON for any world size.
//
// It does NOT write files or draw: cmd_eval does (results.json, results.md, pictures).
#pragma once
#include "data/tasks.h"
#include "models/attention.h"
#include "models/llama.h"
#include "models/llama_config.h"
#include "trainer/distributed.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace ropex {

struct EvalOptions {
  std::string model_dir;
  std::string tokenizer_path;      // default: MODEL/tokenizer.model
  std::string label;               // legend name; default: the model directory's name
  std::vector<std::string> tasks;  // ppl | passkey | kv
  std::vector<int64_t> lengths;    // empty: default_eval_lengths()
  std::string data;                // ppl: a token store directory
  std::vector<std::string> protocols = {"truncated", "sliding"};
  int64_t stride = 0;              // sliding window stride; 0 = min(256, L / 2)
  int64_t docs = 8;                // ppl: documents per length (the last long enough, from the store's end)
  int64_t depths = 10;             // passkey depths / kv positions, evenly from 0 to 1
  int64_t samples = 5;             // prompts per (length, depth) cell
  KvIdFormat kv_ids;
  uint64_t seed = 0;
  int64_t pretrained_len = 0;      // 0: from the model's config (pretrained_window())
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  AttentionBackend attention = AttentionBackend::sdpa;
};

// The context a model was pre-trained at, from its config: original_max_position_embeddings when
// set, else max_position_embeddings / factor for scaled types, else max_position_embeddings.
int64_t pretrained_window(const LlamaConfig& cfg);
// Doubling from pretrained / 2 up to max(max_position_embeddings, 4 * pretrained).
std::vector<int64_t> default_eval_lengths(int64_t pretrained, int64_t max_position_embeddings);

// Runs the tasks; every rank returns the full results (schema in trainer/plot_eval.py's header).
// Before anything runs, each retrieval task's prompt is built once per length: lengths where it
// cannot fit are skipped with a warning (results["skipped"][task]: lengths and reasons; a task with
// no length left has no section of its own), and an error is thrown when no task fits at all. `on_task` is
// called with the results so far after each task, so a caller can write what was measured.
nlohmann::json run_eval(const EvalOptions& options, Distributed& dist,
                        const std::function<void(const nlohmann::json&)>& on_task = {});

// Greedy continuation of prompt_ids (BOS first) with a KV cache: at most max_new tokens, stopping at
// eos_id (not returned). Uses o.device and o.attention.
std::vector<int32_t> greedy_decode(LlamaForCausalLM& model, const std::vector<int32_t>& prompt_ids, int max_new, int eos_id,
                                   const EvalOptions& o);

// The markdown report of one results object.
std::string eval_markdown(const nlohmann::json& results);

}  // namespace ropex
