// ropex eval: perplexity by length, passkey and key-value retrieval (trainer/eval.h) -> results.json,
// results.md and pictures (trainer/plot_eval.py, matplotlib) in the output directory.
// ropex make-tasks: retrieval examples as training documents (.jsonl) for `ropex prepare`.
#include "data/tasks.h"
#include "models/llama.h"
#include "models/safetensors.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/device.h"
#include "trainer/eval.h"
#include "trainer/log.h"
#include "trainer/pictures.h"

#include <tuple>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace ropex {
namespace fs = std::filesystem;

int cmd_eval(const Args& argv) {
  ArgParser args("eval",
                 "Evaluates a Hugging Face Llama directory: perplexity by length (truncated and sliding-window\n"
                 "protocols), passkey retrieval on a length x depth grid, key-value retrieval by position of the\n"
                 "asked key (../shared/spec/evaluation_protocols.md). Writes results.json, results.md and\n"
                 "pictures (ppl_vs_length.png, passkey_heatmap.png, kv_by_position.png) to --output. Launched\n"
                 "with several ranks (./run.sh eval --nproc N ..., torchrun --no-python, srun), prompts and windows\n"
                 "are shared out. Lengths at which a task's prompt cannot fit are skipped with a warning; results\n"
                 "are written after each task.");
  args.option("model", "DIR", "Hugging Face model directory (config.json, safetensors, tokenizer.json or tokenizer.model)")
      .option("tasks", "LIST", "comma-separated: ppl, passkey, kv (default: all three with --data, else passkey,kv)")
      .option("lengths", "N,N,...", "context lengths in tokens (default: doubling from half the pre-trained window "
                                    "to max(max_position_embeddings, 4x the pre-trained window))")
      .option("depths", "N", "passkey depths / kv positions, evenly spaced from 0% to 100%", "10")
      .option("samples", "N", "prompts per (length, depth) cell", "5")
      .option("data", "STORE", "ppl: token store (`ropex prepare`) of held-out text; documents are taken from its\n"
                               "end, where a training run with eval.every > 0 holds out its last eval.docs")
      .option("docs", "N", "ppl: documents per length (the last ones long enough; held out of a training\n"
                            "run on the same store when N <= its eval.docs, default 8)", "8")
      .option("protocols", "LIST", "ppl: truncated, sliding or both", "truncated,sliding")
      .option("stride", "N", "ppl sliding-window stride (0 = min(256, L/2))", "0")
      .option("kv-ids", "uuid|hex:N|digits:N", "kv: form of keys and values", "uuid")
      .option("seed", "N", "seed of the prompts (keys, ids)", "0")
      .option("output", "DIR", "where results go (default: MODEL/eval)")
      .option("label", "NAME", "the model's name in tables and legends (default: the directory's name)")
      .option("tokenizer", "FILE", "tokenizer.json or SentencePiece .model (default: MODEL's, tokenizer.json first)")
      .option("pretrained-len", "N", "the pre-trained window to mark (default: from config.json)")
      .option("device", "cpu|cuda|cuda:N", "where to run (cuda under a distributed launch: cuda:LOCAL_RANK)", "cpu")
      .option("dtype", "float32|bfloat16|float16", "compute dtype", "float32")
      .option("attention", "sdpa|reference", "attention implementation", "sdpa")
      .option("plot-python", "PYTHON", "Python with matplotlib (default: $ROPEX_PYTHON, the source tree's .venv, python3)")
      .flag("no-plot", "write results.json and results.md only");
  args.parse(argv);

  EvalOptions o;
  o.model_dir = args.get("model");
  if (args.has("tasks")) {
    o.tasks = split_list(args.get("tasks"), "eval: --tasks");
  } else {
    o.tasks = args.has("data") ? std::vector<std::string>{"ppl", "passkey", "kv"} : std::vector<std::string>{"passkey", "kv"};
    if (!args.has("data")) log::info("eval: perplexity needs --data (a token store of held-out text); running passkey and kv");
  }
  for (const auto& t : o.tasks) {
    if (t != "ppl" && t != "passkey" && t != "kv")
      throw UsageError("eval: --tasks: unknown task '" + t + "' (did you mean '" + nearest(t, {"ppl", "passkey", "kv"}) + "'?)");
  }
  if (args.has("lengths")) o.lengths = parse_positive_list(args.get("lengths"), "eval: --lengths");
  o.depths = args.get_int("depths");
  o.samples = args.get_int("samples");
  o.docs = args.get_int("docs");
  o.stride = args.get_int("stride");
  if (o.depths < 1 || o.samples < 1 || o.docs < 1 || o.stride < 0)
    throw UsageError("eval: --depths, --samples and --docs must be >= 1 and --stride >= 0");
  // Upper bounds far beyond any evaluation (a cell of 100000 prompts has a 0.3% standard error) that
  // keep the grid's bookkeeping small; an absurd count is refused here, not by the allocator.
  for (const auto& [flag, value, max] : {std::tuple{"depths", o.depths, int64_t{1000}}, {"samples", o.samples, int64_t{100000}},
                                         {"docs", o.docs, int64_t{1000000}}})
    if (value > max) throw UsageError(std::string("eval: --") + flag + " must be <= " + std::to_string(max) + ", got " + std::to_string(value));
  for (const int64_t L : o.lengths)
    if (L < 2) throw UsageError("eval: --lengths: " + std::to_string(L) + " is too short: a length needs 2 tokens or more "
                                "(one to predict from, one predicted)");
  if (args.has("data")) o.data = args.get("data");
  o.protocols = split_list(args.get("protocols"), "eval: --protocols");
  for (const auto& p : o.protocols) {
    if (p != "truncated" && p != "sliding") throw UsageError("eval: --protocols: unknown protocol '" + p + "' (expected truncated or sliding)");
  }
  if (std::find(o.tasks.begin(), o.tasks.end(), "ppl") != o.tasks.end() && o.data.empty())
    throw UsageError("eval: task ppl needs --data (a token store made by `ropex prepare`)");
  try {
    o.kv_ids = parse_kv_id_format(args.get("kv-ids"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("eval: --kv-ids: ") + e.what());
  }
  o.seed = static_cast<uint64_t>(args.get_int("seed"));
  if (args.has("label")) o.label = args.get("label");
  if (args.has("tokenizer")) o.tokenizer_path = args.get("tokenizer");
  if (args.has("pretrained-len")) o.pretrained_len = args.get_int("pretrained-len");
  o.dtype = parse_dtype_name(args.get("dtype"));
  o.attention = parse_attention_backend(args.get("attention"));
  const fs::path out_dir = args.has("output") ? fs::path(args.get("output")) : fs::path(o.model_dir) / "eval";

  const DistEnv env = read_dist_env();
  std::string device = args.get("device");
  if (device == "cuda" && env.world > 1) device = "cuda:" + std::to_string(env.local_rank);
  o.device = parse_device(device);
  Distributed dist(env, o.device.is_cuda() ? "nccl" : "gloo", std::chrono::seconds(1800));
  // Every rank must run the same evaluation (a rank of another launch on the same port would not).
  std::string mine;
  for (const auto& a : argv) mine += a + '\n';
  for (const auto& other : dist.allgather_string(mine))
    if (other != mine)
      throw std::runtime_error(cat("eval ranks were started with different options (or a rank of another launch joined at ",
                                   env.master_addr, ":", env.master_port, ": give each launch its own MASTER_PORT)"));

  // Written after every task, so a failure later leaves what was measured.
  auto write = [&](const nlohmann::json& results) {
    if (!dist.is_main()) return;
    fs::create_directories(out_dir);
    st::write_text_file((out_dir / "results.json").string(), results.dump(2) + "\n");
    st::write_text_file((out_dir / "results.md").string(), "# ropex eval\n\n" + eval_markdown(results));
  };
  const nlohmann::json results = run_eval(o, dist, write);
  if (!dist.is_main()) return 0;
  write(results);
  std::cout << eval_markdown(results);
  log::info("wrote " + (out_dir / "results.json").string() + " and results.md");
  if (!args.flag_set("no-plot")) {
    const PictureRun pictures =
        run_picture_script(picture_python(args.has("plot-python") ? args.get("plot-python") : ""), "plot_eval.py",
                           {"--output", out_dir.string(), (out_dir / "results.json").string()});
    if (!pictures.ok) {
      log::warn("pictures not drawn (needs Python with matplotlib and trainer/plot_eval.py); the results are in " +
                out_dir.string() + "; draw them with: " + pictures.command);
      return 3;
    }
  }
  return 0;
}

int cmd_make_tasks(const Args& argv) {
  ArgParser args("make-tasks",
                 "Writes retrieval examples as training documents (.jsonl, field \"text\") for `ropex prepare`:\n"
                 "each is a passkey, key-value or copy prompt that fits in --length tokens with its answer, followed by\n"
                 "filler so the document is longer than --length (a loader taking the first N tokens sees the\n"
                 "whole example). Depths / asked positions are uniform in [0, 1].");
  args.option("tokenizer", "PATH", "tokenizer.json or SentencePiece .model the lengths are counted with")
      .option("task", "passkey|kv|copy", "which task (copy: a run of random ids repeated, for pre-training from scratch)")
      .option("length", "N", "tokens per example, BOS included (the training window)")
      .option("min-length", "N",
              "shortest example: each example's length is drawn uniformly in [N, --length] and filler follows\n"
              "it up to the window, so a model also sees retrieval in prompts shorter than its window\n"
              "(0: every example is --length long)",
              "0")
      .option("count", "N", "number of examples")
      .option("seed", "N", "seed", "0")
      .option("kv-ids", "uuid|hex:N|digits:N", "kv: form of keys and values", "uuid")
      .option("output", "FILE", ".jsonl file to write");
  args.parse(argv);
  const Tokenizer tok = Tokenizer::load(args.get("tokenizer"));
  const std::string task = args.get("task");
  if (task != "passkey" && task != "kv" && task != "copy")
    throw UsageError("make-tasks: --task must be passkey, kv or copy, got '" + task + "'");
  const int64_t length = args.get_int("length"), count = args.get_int("count");
  if (length < 16 || count < 1) throw UsageError("make-tasks: --length must be >= 16 and --count >= 1");
  const int64_t min_length = args.get_int("min-length") == 0 ? length : args.get_int("min-length");
  if (min_length < 16 || min_length > length)
    throw UsageError(cat("make-tasks: --min-length must be in [16, --length ", length, "] (or 0), got ", min_length));
  KvIdFormat ids;
  try {
    ids = parse_kv_id_format(args.get("kv-ids"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("make-tasks: --kv-ids: ") + e.what());
  }
  Rng rng(static_cast<uint64_t>(args.get_int("seed")));
  const fs::path out_path = args.get("output");
  if (out_path.has_parent_path()) fs::create_directories(out_path.parent_path());
  std::string out;
  auto tokens = [&](const std::string& s) { return static_cast<int64_t>(tok.encode(s, true, false).size()); };
  int64_t size_hint = 0;  // the previous example's size: the next one's search starts there
  for (int64_t i = 0; i < count; ++i) {
    const double depth = rng.uniform();
    const int64_t example_length = min_length < length ? rng.uniform_int(min_length, length) : length;
    std::string text;
    for (int64_t reserve = 8;; reserve += 8) {  // room for the answer after the prompt
      if (reserve >= example_length)
        throw std::runtime_error(cat("make-tasks: no ", task, " example fits in ", example_length, " tokens"));
      const int64_t room = example_length - reserve;
      TaskPrompt p;
      try {
        p = task == "passkey" ? passkey_prompt(tok, room, depth, rng, &size_hint)
            : task == "kv"    ? kv_prompt(tok, room, depth, ids, rng, &size_hint)
                              : copy_prompt(tok, room, rng, &size_hint);
      } catch (const std::runtime_error& e) {  // say which option made the example too short
        throw std::runtime_error(cat("make-tasks: ", task, " example ", i + 1, " of ", example_length, " tokens (",
                                     min_length < length ? cat("drawn from --min-length ", min_length, " to ") : std::string("--length "),
                                     length, "): ", e.what()));
      }
      text = p.prompt + (task == "passkey" ? " " + p.answer + "." : task == "kv" ? " \"" + p.answer + "\"" : " " + p.answer);
      if (tokens(text) <= example_length) break;
    }
    text += "\n";
    while (tokens(text) <= length) text += passkey_filler();
    out += nlohmann::json{{"text", text}}.dump() + "\n";
  }
  st::write_text_file(out_path.string(), out);
  log::info(cat("wrote ", count, " ", task, " examples of ",
                min_length < length ? cat(min_length, "-", length) : cat(length), " tokens to ", out_path.string()));
  return 0;
}

}  // namespace ropex
