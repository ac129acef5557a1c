// `ropex tokenize`, and tokenizer.json through the commands that take a tokenizer: the ids equal the
// `tokenizers` library's (tests/hf_tokenize.py) with and without special tokens, decode equals its
// decode, a model directory's tokenizer is tokenizer.json before tokenizer.model, and `prepare`
// frames documents with the post-processor's BOS and tokenizer_config.json's EOS. The reader itself
// is tested on many scripts and every style in tests/text/test_tokenizer_json.cpp.
#include "data/token_store.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// The tokenizer.json files of tests/text/make_tokenizers.py, made once per process.
const fs::path& styles_dir(const std::string& python) {
  static TempDir dir("tokenize-styles");
  static bool made = false;
  if (!made) {
    std::string out;
    if (run_python(python, "text/make_tokenizers.py", {dir.str()}, &out) != 0) throw std::runtime_error("make_tokenizers.py: " + out);
    made = true;
  }
  return dir.path;
}

std::string write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

json ropex_json(const std::string& args) {
  std::string out;
  const int rc = run_command("'" + ropex_binary() + "' tokenize " + args + " 2>&1", &out);
  if (rc != 0) throw std::runtime_error("ropex tokenize " + args + " failed: " + out);
  return json::parse(out);
}

json oracle(const std::string& python, const std::vector<std::string>& args) {
  std::string out;
  if (run_python(python, "hf_tokenize.py", args, &out) != 0) throw std::runtime_error("hf_tokenize.py: " + out);
  return json::parse(out);
}

const char* kText =
    "<|begin_of_text|>Hello  world's 12345\r\n\n  x café cafe\u0301 ΣΟΦΟΣ 你好，世界！ 👩‍💻 <s> I'M 3.14159\t\tend";

TEST(TokenizeCli, IdsAndTextEqualTheTokenizersLibrary) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const fs::path& styles = styles_dir(py);
  TempDir dir("tokenize");
  const std::string text = write(dir.path / "text.txt", kText);
  for (const char* style : {"llama3", "qwen2", "llama2", "mistral3"}) {
    SCOPED_TRACE(style);
    const std::string tok = (styles / (std::string(style) + ".json")).string();
    for (const bool special : {false, true}) {
      const json ours = ropex_json("--tokenizer " + tok + " --text " + text + " --json" + (special ? " --special" : ""));
      const json theirs = oracle(py, {"encode", tok, text, special ? "--special" : ""});
      EXPECT_EQ(ours, theirs) << "special " << special;
      // Decode: the ids back to text, special tokens kept or skipped.
      const std::string ids = write(dir.path / "ids.json", theirs.dump());
      for (const bool keep : {false, true}) {
        EXPECT_EQ(ropex_json("--tokenizer " + tok + " --decode --text " + ids + " --json" + (keep ? " --special" : "")),
                  oracle(py, {"decode", tok, ids, keep ? "--special" : ""}))
            << "keep special " << keep;
      }
    }
  }
  // Plain output: the same ids, space-separated; --string instead of a file; "1 2 3" for --decode.
  const std::string tok = (styles / "qwen2.json").string();
  std::string out;
  ASSERT_EQ(run_command("'" + ropex_binary() + "' tokenize --tokenizer " + tok + " --string 'Hello world'", &out), 0) << out;
  const json ids = oracle(py, {"encode", tok, write(dir.path / "hw.txt", "Hello world")})["ids"];
  std::string expected;
  for (const auto& id : ids) expected += (expected.empty() ? "" : " ") + std::to_string(id.get<int>());
  EXPECT_EQ(out, expected + "\n");
  ASSERT_EQ(run_command("'" + ropex_binary() + "' tokenize --tokenizer " + tok + " --decode --string '" + expected + "'", &out), 0);
  EXPECT_EQ(out, "Hello world");
}

TEST(TokenizeCli, ModelDirectoryPrefersTokenizerJsonAndPrepareFramesDocuments) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const fs::path& styles = styles_dir(py);
  TempDir dir("tokenize-dir");
  // A model directory with both files, as Llama-2 checkpoints ship them: tokenizer.json is used.
  const fs::path model = dir.path / "model";
  fs::create_directories(model);
  fs::copy_file(styles / "llama3.json", model / "tokenizer.json");
  write(model / "tokenizer.model", "not a SentencePiece model: it must not be read");
  write(model / "tokenizer_config.json", R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})");
  const std::string text = write(dir.path / "text.txt", "Two short documents.");
  EXPECT_EQ(ropex_json("--tokenizer " + model.string() + " --text " + text + " --json"),
            oracle(py, {"encode", (model / "tokenizer.json").string(), text}));
  const Tokenizer tok = load_model_tokenizer(model.string(), "", 1 << 20);
  EXPECT_TRUE(tok.is_tokenizer_json());
  ASSERT_GE(tok.bos_id(), 0);
  ASSERT_GE(tok.eos_id(), 0);
  EXPECT_NE(tok.bos_id(), tok.eos_id());
  // prepare: each document is the post-processor's BOS, its ids, and tokenizer_config.json's EOS.
  const std::string corpus = write(dir.path / "corpus.jsonl", "{\"text\": \"Two short documents.\"}\n{\"text\": \"The second one.\"}\n");
  std::string out;
  ASSERT_EQ(run_command("'" + ropex_binary() + "' prepare --tokenizer " + model.string() + " --input " + corpus + " --output " +
                            (dir.path / "store").string() + " 2>&1",
                        &out),
            0)
      << out;
  const TokenStore store = TokenStore::open((dir.path / "store").string());
  ASSERT_EQ(store.num_documents(), 2u);
  std::vector<int32_t> first{tok.bos_id()};
  const json body = oracle(py, {"encode", (model / "tokenizer.json").string(), text});
  for (const auto& id : body["ids"]) first.push_back(id.get<int32_t>());
  first.push_back(tok.eos_id());
  EXPECT_EQ(store.document(0), first);
  EXPECT_EQ(store.meta()["tokenizer"]["path"].get<std::string>(), fs::absolute(model / "tokenizer.json").lexically_normal().string());
  // Without tokenizer_config.json there is no end-of-text token to add: refused, with the way out.
  fs::remove(model / "tokenizer_config.json");
  EXPECT_NE(run_command("'" + ropex_binary() + "' prepare --tokenizer " + model.string() + " --input " + corpus + " --output " +
                            (dir.path / "store2").string() + " 2>&1",
                        &out),
            0);
  EXPECT_NE(out.find("names no end-of-text token"), std::string::npos) << out;
  ASSERT_EQ(run_command("'" + ropex_binary() + "' prepare --no-eos --tokenizer " + model.string() + " --input " + corpus +
                            " --output " + (dir.path / "store2").string() + " 2>&1",
                        &out),
            0)
      << out;
}

TEST(TokenizeCli, SentencePieceModelsKeepTheirIds) {
  TempDir dir("tokenize-spm");
  std::ofstream corpus(dir.path / "corpus.txt");
  for (int i = 0; i < 200; ++i) corpus << "line " << i << ": the quick brown fox jumps over the lazy dog\n";
  corpus.close();
  TokenizerTrainOptions to;
  to.vocab_size = 300;
  const std::string model = Tokenizer::train({(dir.path / "corpus.txt").string()}, (dir.path / "tok").string(), to);
  const Tokenizer tok = Tokenizer::load(model);
  const std::string s = "the lazy fox 42";
  std::vector<int32_t> plain = tok.encode(s, false, false), with_bos = tok.encode(s, true, false);
  EXPECT_EQ(ropex_json("--tokenizer " + model + " --string '" + s + "' --json")["ids"].get<std::vector<int32_t>>(), plain);
  EXPECT_EQ(ropex_json("--tokenizer " + model + " --string '" + s + "' --json --special")["ids"].get<std::vector<int32_t>>(), with_bos);
  EXPECT_EQ(tok.encode_with_special_tokens(s), with_bos);
  // Decode: BOS dropped unless --special keeps it as its piece.
  const std::string ids = write(dir.path / "ids.json", json{{"ids", with_bos}}.dump());
  EXPECT_EQ(ropex_json("--tokenizer " + model + " --decode --text " + ids + " --json")["text"], s);
  EXPECT_EQ(ropex_json("--tokenizer " + model + " --decode --text " + ids + " --json --special")["text"], "<s>" + s);
}

TEST(TokenizeCli, BadInputIsNamed) {
  TempDir dir("tokenize-bad");
  std::string out;
  auto run = [&](const std::string& args) { return run_command("'" + ropex_binary() + "' tokenize " + args + " 2>&1", &out); };
  EXPECT_NE(run("--tokenizer " + (dir.path / "missing.json").string() + " --string x"), 0);
  EXPECT_NE(out.find("missing.json"), std::string::npos) << out;
  EXPECT_NE(run("--tokenizer x.json"), 0);
  EXPECT_NE(out.find("exactly one of --text FILE and --string S"), std::string::npos) << out;
  const std::string bad = write(dir.path / "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}");
  EXPECT_NE(run("--tokenizer " + bad + " --string x"), 0);
  EXPECT_NE(out.find(bad), std::string::npos) << out;
  EXPECT_NE(run("--tokenizer " + dir.path.string() + " --string x"), 0);  // a directory with a broken tokenizer.json
  EXPECT_NE(out.find("tokenizer.json"), std::string::npos) << out;
  fs::remove(dir.path / "tokenizer.json");
  EXPECT_NE(run("--tokenizer " + dir.path.string() + " --string x"), 0);
  EXPECT_NE(out.find("no tokenizer.json or tokenizer.model"), std::string::npos) << out;
}

}  // namespace
}  // namespace ropex::test

namespace ropex::test {
namespace {

// The issue's check: Qwen2, Mistral and Llama-3 directories that ship only tokenizer.json; `ropex
// score` tokenizes with it, adds the post-processor's special tokens (none for Qwen2) and equals
// transformers' float32 NLL. Limit: each side is a float32 mean of ~40 log-softmax terms over a
// ~1000-token vocabulary from 2 layers of 64-wide dot products; each term carries at most ~100 u
// (u = 2^-24 ~ 6e-8: the dots, the log-sum-exp, RMSNorm) of rounding, 6e-6 relative, and the mean
// does not add to that relative error: relative 1e-5 bounds the difference of the two sides with
// room (the issue asks for 1e-4).
TEST(TokenizeCli, ScoreEqualsTransformersOnTokenizerJsonFamilies) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const fs::path& styles = styles_dir(py);
  TempDir dir("score-families");
  const std::string text = write(dir.path / "text.txt", "The quick brown fox, 12345 times: café 你好 — done.\nSecond line here.");
  for (const auto& [family, style] : std::vector<std::pair<std::string, std::string>>{
           {"qwen2", "qwen2"}, {"mistral", "llama2"}, {"llama3", "llama3"}}) {
    SCOPED_TRACE(family);
    const std::string model = (dir.path / family).string();
    std::string out;
    ASSERT_EQ(run_python(py, "hf_family_score.py", {"make", family, model, (styles / (style + ".json")).string()}, &out), 0) << out;
    ASSERT_EQ(run_python(py, "hf_family_score.py", {"score", model, text}, &out), 0) << out;
    const json theirs = json::parse(out.substr(out.find('{')));
    ASSERT_EQ(run_command("'" + ropex_binary() + "' score --model " + model + " --text " + text + " --json 2>&1", &out), 0) << out;
    const json ours = json::parse(out.substr(out.find('{')));
    EXPECT_EQ(ours["tokens"], theirs["tokens"]);
    const double nll = theirs["nll"].get<double>();
    EXPECT_NEAR(ours["nll"].get<double>(), nll, 1e-5 * std::abs(nll)) << "ropex " << ours["nll"] << ", transformers " << nll;
    // The ids themselves: ropex tokenize --special on the model directory.
    EXPECT_EQ(ropex_json("--tokenizer " + model + " --text " + text + " --special --json")["ids"], theirs["ids"]);
  }
}

}  // namespace
}  // namespace ropex::test
