// Small tools for building a model from nothing (tests, the demo, experiments without a hub):
//   ropex train-tokenizer --input FILE... --output PREFIX [--vocab-size N] [--text-field NAME]
//   ropex new-model --output DIR [--tokenizer MODEL] [--set key=value ...] [--seed S] [--overwrite]
#include "data/input/json.h"
#include "data/prepare.h"
#include "data/text_match.h"
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/log.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace ropex {
namespace fs = std::filesystem;

int cmd_train_tokenizer(const Args& argv) {
  ArgParser args("train-tokenizer", "Trains a SentencePiece BPE tokenizer with Llama's conventions (unk 0, bos 1, eos 2,\n"
                                    "byte fallback, split digits) and writes PREFIX.model and PREFIX.vocab. Inputs are read\n"
                                    "as `ropex prepare` reads them: .jsonl by its text field, .txt as plain text.");
  args.option("input", "FILE", ".jsonl or .txt training file", std::nullopt, /*repeatable=*/true)
      .option("output", "PREFIX", "output prefix")
      .option("vocab-size", "N", "vocabulary size", "2000")
      .option("text-field", "NAME", ".jsonl: the string field holding the text", "text");
  args.parse(argv);
  const std::vector<std::string> inputs = args.get_all("input");
  if (inputs.empty()) throw UsageError("train-tokenizer: at least one --input FILE is required");
  TokenizerTrainOptions o;
  o.vocab_size = static_cast<int>(args.get_int("vocab-size"));
  // SentencePiece reads lines: JSON lines are turned into their texts first (one document after
  // another, as prepare reads them), or it would learn the JSON's quotes and escapes.
  const bool jsonl = std::any_of(inputs.begin(), inputs.end(),
                                 [](const std::string& p) { return fs::path(p).extension() == ".jsonl"; });
  std::vector<std::string> files = inputs;
  const std::string text = args.get("output") + ".input.txt";
  struct RemoveAtExit {
    std::string path;
    ~RemoveAtExit() {
      std::error_code ec;
      if (!path.empty()) fs::remove(path, ec);
    }
  } intermediate;
  if (jsonl) {
    PrepareOptions po;
    po.inputs = inputs;
    po.text_field = args.get("text-field");
    po.on_error = OnError::fail;
    intermediate.path = text;
    const int64_t docs = write_documents_as_text(po, text);
    log::info(cat("train-tokenizer: ", docs, " documents from ", inputs.size(), " input(s)"));
    files = {text};
  }
  const std::string path = Tokenizer::train(files, args.get("output"), o);
  std::cout << path << std::endl;
  return 0;
}

namespace {
// The config.json keys new-model takes: those ropex writes, with their default values' JSON types.
nlohmann::json new_model_defaults() {
  nlohmann::json j = {{"vocab_size", 32000}, {"hidden_size", 256}, {"intermediate_size", 688}, {"num_hidden_layers", 4},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 4}, {"max_position_embeddings", 512},
                      {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
  // Written without the 5.x rope_parameters block, which would win over a --set rope_theta.
  const nlohmann::json written =
      config_to_json(config_from_json(j, "new-model defaults"), {.with_rope_parameters = false});
  for (const auto& [key, value] : written.items())
    if (!j.contains(key)) j[key] = value;
  for (const char* optional : {"head_dim", "pad_token_id", "rope_scaling"})  // null: not set
    if (!j.contains(optional)) j[optional] = nullptr;
  return j;
}

// Whether `given` may replace a default of `def`'s JSON type: an integer key takes integers only;
// a float key takes any number; a key without a default (null) takes anything config.json allows
// (config_from_json checks it).
bool same_kind(const nlohmann::json& given, const nlohmann::json& def) {
  if (def.is_null()) return true;
  if (given.is_number() && def.is_number()) return !(given.is_number_float() && def.is_number_integer());
  return given.type() == def.type();
}
}  // namespace

int cmd_new_model(const Args& argv) {
  ArgParser args("new-model", "Writes a randomly initialised Llama as a Hugging Face directory. Shape keys are\n"
                              "config.json keys: --set hidden_size=64 --set num_hidden_layers=2 ... ; vocab_size\n"
                              "defaults to the tokenizer's. Unknown keys and values of the wrong type are errors.");
  args.option("output", "DIR", "directory to write (refused if it holds anything, unless --overwrite)")
      .option("tokenizer", "PATH", "tokenizer.json or SentencePiece .model to copy in (sets vocab_size)")
      .option("set", "KEY=VALUE", "a config.json key", std::nullopt, /*repeatable=*/true)
      .option("seed", "S", "initialisation seed", "0")
      .flag("overwrite", "replace what --output holds");
  args.parse(argv);
  fs::path out_path = fs::path(args.get("output")).lexically_normal();
  if (!out_path.has_filename()) out_path = out_path.parent_path();  // "dir/" -> "dir"
  const std::string out = out_path.string();
  std::error_code ec;
  const bool occupied = fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out, ec));
  if (occupied && !args.flag_set("overwrite"))
    throw UsageError("new-model: --output " + out + " already exists and is not an empty folder (pass --overwrite to replace it)");
  if (occupied && !fs::exists(fs::path(out) / "config.json"))
    throw UsageError("new-model: --overwrite replaces a model folder, and " + out + " has no config.json; refusing to delete it");
  nlohmann::json j = new_model_defaults();
  std::vector<std::string> known;
  for (const auto& [key, _] : j.items()) known.push_back(key);
  if (args.has("tokenizer")) j["vocab_size"] = Tokenizer::load(args.get("tokenizer")).vocab_size();
  for (const auto& s : args.get_all("set")) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("new-model: --set expects key=value, got '" + s + "'");
    const std::string key = s.substr(0, eq), text = s.substr(eq + 1);
    if (!j.contains(key))
      throw UsageError("new-model: --set " + s + ": unknown config.json key '" + key + "' (did you mean '" +
                       nearest(key, known) + "'?)");
    nlohmann::json v;
    try {
      v = input::parse_json_or_text(text, "new-model --set " + s);
    } catch (const input::JsonInputError& e) {
      throw UsageError(e.what());
    }
    if (!same_kind(v, j[key]))
      throw UsageError("new-model: --set " + s + ": key '" + key + "' expects " +
                       std::string(j[key].type_name()) +
                       (j[key].is_number_integer() ? " (an integer)" : "") + ", got " + input::json_excerpt(v) + " (" + v.type_name() + ")");
    j[key] = v;
  }
  // Its size checked against the memory available before anything is allocated.
  LlamaForCausalLM m = make_checked_model(config_from_json(j, "new-model --set"), at::TensorOptions(), nullptr, {}, "new-model");
  m->init_weights(static_cast<uint64_t>(args.get_int("seed")));
  SaveOptions so;
  if (args.has("tokenizer")) so.tokenizer_model = args.get("tokenizer");
  // Written beside the output and swapped in, so a failure (or a --tokenizer inside the folder
  // being replaced) never leaves the old model half gone.
  const std::string fresh = (out_path.parent_path() / (out_path.filename().string() + ".new-model-partial")).string();
  fs::remove_all(fresh);
  save_pretrained(m, fresh, so);
  if (occupied) fs::remove_all(out);
  else if (fs::exists(out)) fs::remove(out);  // an empty folder
  fs::rename(fresh, out);
  log::info("wrote " + out);
  return 0;
}

}  // namespace ropex
