// Small tools for building a model from nothing (tests, the demo, experiments without a hub):
//   ropex train-tokenizer --input FILE... --output PREFIX [--vocab-size N]
//   ropex new-model --output DIR [--tokenizer MODEL] [--set key=value ...] [--seed S]
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/log.h"

#include <iostream>

namespace ropex {

int cmd_train_tokenizer(const Args& argv) {
  ArgParser args("train-tokenizer", "Trains a SentencePiece BPE tokenizer with Llama's conventions (unk 0, bos 1, eos 2,\n"
                                    "byte fallback, split digits) and writes PREFIX.model and PREFIX.vocab.");
  args.option("input", "FILE", "plain-text training file", std::nullopt, /*repeatable=*/true)
      .option("output", "PREFIX", "output prefix")
      .option("vocab-size", "N", "vocabulary size", "2000");
  args.parse(argv);
  if (args.get_all("input").empty()) throw UsageError("train-tokenizer: at least one --input FILE is required");
  TokenizerTrainOptions o;
  o.vocab_size = static_cast<int>(args.get_int("vocab-size"));
  const std::string path = Tokenizer::train(args.get_all("input"), args.get("output"), o);
  std::cout << path << std::endl;
  return 0;
}

int cmd_new_model(const Args& argv) {
  ArgParser args("new-model", "Writes a randomly initialised Llama as a Hugging Face directory. Shape keys are\n"
                              "config.json keys: --set hidden_size=64 --set num_hidden_layers=2 ... ; vocab_size\n"
                              "defaults to the tokenizer's.");
  args.option("output", "DIR", "directory to write")
      .option("tokenizer", "MODEL", "SentencePiece model to copy in (sets vocab_size)")
      .option("set", "KEY=VALUE", "a config.json key", std::nullopt, /*repeatable=*/true)
      .option("seed", "S", "initialisation seed", "0");
  args.parse(argv);
  nlohmann::json j = {{"vocab_size", 32000}, {"hidden_size", 256}, {"intermediate_size", 688}, {"num_hidden_layers", 4},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 4}, {"max_position_embeddings", 512},
                      {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
  if (args.has("tokenizer")) j["vocab_size"] = Tokenizer::load(args.get("tokenizer")).vocab_size();
  for (const auto& s : args.get_all("set")) {
    const auto eq = s.find('=');
    if (eq == std::string::npos) throw UsageError("new-model: --set expects key=value, got '" + s + "'");
    nlohmann::json v = nlohmann::json::parse(s.substr(eq + 1), nullptr, false);
    j[s.substr(0, eq)] = v.is_discarded() ? nlohmann::json(s.substr(eq + 1)) : v;
  }
  LlamaForCausalLM m(config_from_json(j, "new-model --set"));
  m->init_weights(static_cast<uint64_t>(args.get_int("seed")));
  SaveOptions so;
  if (args.has("tokenizer")) so.tokenizer_model = args.get("tokenizer");
  save_pretrained(m, args.get("output"), so);
  log::info("wrote " + args.get("output"));
  return 0;
}

}  // namespace ropex
