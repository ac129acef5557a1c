// ropex score: mean next-token NLL and perplexity of a text's first N tokens under a model, in one
// window with the tokenizer's own special tokens added as transformers adds them (BOS for Llama,
// none for Qwen2; no striding: see `ropex eval` for sliding-window perplexity).
#include "data/input/files.h"
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "trainer/checkpoint.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/device.h"
#include "trainer/log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace ropex {
namespace {
std::string read_text(const std::string& path) {
  // One window of text: 1 GiB is far more than any model's context holds.
  return input::read_regular_file(path, "a UTF-8 text file to score", size_t{1} << 30);
}
}  // namespace

int cmd_score(const Args& argv) {
  ArgParser args("score", "Scores the first N tokens of a text (one window, the tokenizer's special tokens added\n"
                          "as transformers adds them: BOS for Llama): mean next-token negative log-likelihood\n"
                          "(nats) and perplexity.");
  args.option("model", "DIR", "Hugging Face model directory (config.json, safetensors, tokenizer.json or tokenizer.model)")
      .option("text", "FILE", "UTF-8 text file to score")
      .option("tokenizer", "FILE", "tokenizer.json or SentencePiece .model (default: DIR's, tokenizer.json first)")
      .option("max-tokens", "N", "score at most N tokens, special tokens included (default: all)")
      .option("device", "cpu|cuda", "where to run", "cpu")
      .option("dtype", "float32|bfloat16|float16", "compute dtype", "float32")
      .option("attention", "sdpa|reference", "attention implementation", "sdpa")
      .flag("json", "print one JSON object: tokens, predicted, nll, ppl, ...");
  args.parse(argv);
  const std::string model_dir = args.get("model");
  const std::string text_path = args.get("text");
  const int64_t max_tokens = args.has("max-tokens") ? args.get_int("max-tokens") : 0;
  if (args.has("max-tokens") && max_tokens < 2)
    throw UsageError("score: --max-tokens must be at least 2, got " + std::to_string(max_tokens));
  LoadOptions lo;
  lo.device = parse_device(args.get("device"));
  lo.dtype = parse_dtype_name(args.get("dtype"));
  LlamaForCausalLM model = load_model_or_checkpoint(model_dir, lo);
  const Tokenizer tok = load_model_tokenizer(model_dir, args.has("tokenizer") ? args.get("tokenizer") : "", model->config().vocab_size);
  std::vector<int32_t> ids = tok.encode_with_special_tokens(read_text(text_path));
  if (max_tokens > 0 && static_cast<int64_t>(ids.size()) > max_tokens) ids.resize(max_tokens);
  if (ids.size() < 2) throw std::runtime_error(text_path + ": fewer than two tokens (special tokens included); nothing to score");

  const int64_t T = static_cast<int64_t>(ids.size());
  if (T > model->config().max_position_embeddings)
    log::warn("scoring " + std::to_string(T) + " tokens, past the model's max_position_embeddings (" +
              std::to_string(model->config().max_position_embeddings) + ")");

  torch::NoGradGuard no_grad;
  at::Tensor input = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0).to(lo.device);
  at::Tensor pos = at::arange(T, at::TensorOptions().dtype(at::kLong).device(lo.device)).unsqueeze(0);
  ForwardOptions fo;
  fo.attention = parse_attention_backend(args.get("attention"));
  LossResult loss = lm_loss(model, input, pos, input, fo);
  const double nll = loss.mean.item<double>();
  if (!std::isfinite(nll))
    throw std::runtime_error("score: the mean NLL is not finite (" + std::to_string(nll) + ") for " + model_dir +
                             "; are its weights finite? (a NaN or infinite weight makes every result meaningless)");
  nlohmann::json out = {{"model", model_dir}, {"tokens", T}, {"predicted", loss.count.item<int64_t>()}, {"nll", nll},
                        {"ppl", std::exp(nll)}, {"dtype", dtype_name(lo.dtype)}, {"device", lo.device.str()},
                        {"attention", args.get("attention")}};
  if (args.flag_set("json")) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "tokens     " << T << " (" << loss.count.item<int64_t>() << " predicted)\n"
              << "nll        " << nll << " nats/token\n"
              << "perplexity " << std::exp(nll) << "\n";
  }
  return 0;
}
}  // namespace ropex
