// The ropex binary as a user runs it: `score` against transformers on the same text and model,
// `inspect model`, --help everywhere, and bad command lines / missing files giving clear errors
// and the documented exit codes (0 ok, 1 bad input, 2 bad command line).
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;

const char* kText =
    "The quick brown fox jumps over the lazy dog. Numbers like 12345 and 3.14159 appear too.\n"
    "Il était une fois, dans un château très ancien, une bibliothèque pleine de livres.\n"
    "Context windows grow when positions are interpolated; the middle of a long text matters.\n";

// A model directory with a trained tokenizer and random weights sized to its vocabulary.
struct ScoredModel {
  TempDir dir{"cli-model"};
  fs::path text;
  ScoredModel() {
    text = dir.path / "text.txt";
    {
      std::ofstream corpus(dir.path / "corpus.txt");
      for (int i = 0; i < 60; ++i) corpus << kText << "Line " << i << " of the corpus, with words " << i * 7 << ".\n";
      std::ofstream t(text);
      t << kText << kText;
    }
    TokenizerTrainOptions to;
    to.vocab_size = 400;
    std::string model_path = Tokenizer::train({(dir.path / "corpus.txt").string()}, (dir.path / "tok").string(), to);
    LlamaConfig c;
    c.vocab_size = 400;
    c.hidden_size = 48;
    c.intermediate_size = 96;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 6;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 128;
    LlamaForCausalLM m(c);
    m->init_weights(3);
    SaveOptions so;
    so.tokenizer_model = model_path;
    save_pretrained(m, (dir.path / "model").string(), so);
  }
  std::string model() const { return (dir.path / "model").string(); }
};

// The last line of a command's output that is a JSON object (logs may precede it).
nlohmann::json last_json(const std::string& out) {
  size_t pos = out.rfind("\n{");
  return nlohmann::json::parse(pos == std::string::npos ? out.substr(out.find('{')) : out.substr(pos + 1));
}

std::string ropex(const std::string& args, int* rc) {
  std::string out;
  *rc = run_command("'" + ropex_binary() + "' " + args, &out);
  return out;
}

TEST(CliScore, MatchesTransformersOnTheSameText) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  ScoredModel m;
  for (int max_tokens : {2, 40, 100000}) {
    int rc = 0;
    std::string out = ropex("score --model " + m.model() + " --text " + m.text.string() + " --max-tokens " +
                            std::to_string(max_tokens) + " --json", &rc);
    ASSERT_EQ(rc, 0) << out;
    nlohmann::json ours = last_json(out);
    std::string ref_out;
    ASSERT_EQ(run_python(py, "hf_check.py", {"score", m.model(), m.text.string(), std::to_string(max_tokens)}, &ref_out), 0) << ref_out;
    nlohmann::json ref = last_json(ref_out);
    EXPECT_EQ(ours["tokens"], ref["tokens"]) << "tokenisation differs";
    const LlamaConfig cfg = load_config(m.model());
    const int64_t T = ours["tokens"].get<int64_t>();
    EXPECT_NEAR(ours["nll"].get<double>(), ref["nll"].get<double>(),
                tol::mean_nll(cfg, T, T, tol::random_init_max_logit(cfg), ref["nll"].get<double>()));
    // ppl = exp(nll) in float64 from the printed value (17 digits: exact): exp within 1 ulp, 4u with margin.
    EXPECT_NEAR(ours["ppl"].get<double>(), std::exp(ours["nll"].get<double>()), 4 * tol::kFloat64 * ours["ppl"].get<double>());
  }
}

TEST(CliScore, ReferenceAttentionAgreesWithSdpa) {
  ScoredModel m;
  int rc1 = 0, rc2 = 0;
  auto a = last_json(ropex("score --json --attention sdpa --model " + m.model() + " --text " + m.text.string(), &rc1));
  auto b = last_json(ropex("score --json --attention reference --model " + m.model() + " --text " + m.text.string(), &rc2));
  ASSERT_EQ(rc1, 0);
  ASSERT_EQ(rc2, 0);
  // Two attention kernels on the same float32 weights: the forward's rounding (tokens <= max positions).
  const LlamaConfig cfg = load_config(m.model());
  const int64_t T = cfg.max_position_embeddings;
  EXPECT_NEAR(a["nll"].get<double>(), b["nll"].get<double>(), tol::mean_nll(cfg, T, T, tol::random_init_max_logit(cfg), b["nll"].get<double>()));
}

TEST(CliScore, BadInputGivesClearErrors) {
  ScoredModel m;
  int rc = 0;
  std::string out = ropex("score --model " + m.model() + " --text " + m.text.string() + " --bogus 3", &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("unknown option '--bogus'"), std::string::npos) << out;
  out = ropex("score --model " + m.model() + " --text /nonexistent/file.txt", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("/nonexistent/file.txt"), std::string::npos) << out;
  fs::remove(fs::path(m.model()) / "tokenizer.model");
  out = ropex("score --model " + m.model() + " --text " + m.text.string(), &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("tokenizer.model"), std::string::npos) << out;
  out = ropex("score --model " + m.model() + " --text " + m.text.string() + " --device tpu", &rc);
  EXPECT_NE(rc, 0);
  out = ropex("scroe", &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("did you mean 'score'"), std::string::npos) << out;
  out = ropex("score --model " + m.model(), &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("--text"), std::string::npos) << out;
}

TEST(CliInspect, ModelSummaryCountsEveryParameter) {
  ScoredModel m;
  int rc = 0;
  std::string out = ropex("inspect model --json --model " + m.model(), &rc);
  ASSERT_EQ(rc, 0) << out;
  nlohmann::json j = last_json(out);
  LlamaForCausalLM model = load_pretrained(m.model());
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  EXPECT_EQ(j["parameters"].get<int64_t>(), n);
  out = ropex("inspect model --model " + m.model(), &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("GQA"), std::string::npos) << out;
}

TEST(CliHelp, EveryCommandHasHelp) {
  for (const std::string cmd : {"--help", "score --help", "inspect --help", "inspect model --help", "inspect rope --help",
                                "inspect positions --help"}) {
    int rc = 0;
    std::string out = ropex(cmd, &rc);
    EXPECT_EQ(rc, 0) << cmd << ": " << out;
    EXPECT_NE(out.find("usage"), std::string::npos) << cmd << ": " << out;
  }
}

TEST(CliInspect, RopeMatchesTransformersForReplacedScaling) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  ScoredModel m;
  for (const std::string scaling :
       {R"({"rope_type":"yarn","factor":6.5,"original_max_position_embeddings":128,"beta_fast":20.0})",
        R"({"type":"linear","factor":3.0})", R"({"type":"dynamic","factor":2.0})",
        R"({"rope_type":"llama3","factor":4.0,"low_freq_factor":1.0,"high_freq_factor":2.0,"original_max_position_embeddings":100})",
        // Without original_max_position_embeddings transformers takes the config's max_position_embeddings.
        R"({"rope_type":"yarn","factor":4})", R"({"rope_type":"llama3","factor":4.0,"low_freq_factor":1.0,"high_freq_factor":2.0})"}) {
    int rc = 0;
    std::string out = ropex("inspect rope --json --model " + m.model() + " --rope-scaling '" + scaling + "'", &rc);
    ASSERT_EQ(rc, 0) << out;
    nlohmann::json ours = last_json(out);
    std::string ref_out;
    ASSERT_EQ(run_python(py, "hf_check.py", {"rope", m.model(), scaling}, &ref_out), 0) << ref_out;
    nlohmann::json ref = last_json(ref_out);
    auto a = ours["inv_freq"].get<std::vector<double>>(), b = ref["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(a.size(), b.size()) << scaling;
    LlamaConfig replaced = load_config(m.model());
    replaced.rope = rope_scaling_from_json(nlohmann::json::parse(scaling), "scaling", replaced.max_position_embeddings);
    const double limit = tol::inv_freq(replaced, 0, *std::min_element(b.begin(), b.end()), false);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], limit * std::abs(b[i])) << scaling << " pair " << i;
    const double af = ref["attention_factor"].get<double>();
    EXPECT_NEAR(ours["attention_factor"].get<double>(), af, tol::kAttentionFactor * std::abs(af)) << scaling;
  }
  int rc = 0;
  std::string out = ropex("inspect rope --model " + m.model() + " --rope-scaling '{\"rope_type\":\"warp\",\"factor\":4}'", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("unknown rope type 'warp'"), std::string::npos) << out;
}

TEST(CliInspect, PositionsPrintsPlansAndCoverage) {
  int rc = 0;
  std::string out = ropex("inspect positions --sampler cream --train-len 128 --target-len 1024 --samples 200 --print 5 "
                          "--seed 3 --set cream_mode=per_sample --jsonl", &rc);
  ASSERT_EQ(rc, 0) << out;
  std::istringstream lines(out);
  std::string line;
  int plans = 0;
  nlohmann::json last;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    last = nlohmann::json::parse(line);
    if (!last.contains("position_id")) continue;
    ++plans;
    auto pos = last["position_id"].get<std::vector<int64_t>>();
    ASSERT_EQ(pos.size(), 128u);
    EXPECT_EQ(pos.front(), 0);
    EXPECT_EQ(pos.back(), 1023);
    EXPECT_TRUE(std::is_sorted(pos.begin(), pos.end()));
  }
  EXPECT_EQ(plans, 5);
  ASSERT_TRUE(last.contains("coverage")) << out;
  EXPECT_EQ(last["coverage"]["plans"], 200);
  // Same seed, same output; other seed, other plans.
  int rc2 = 0;
  EXPECT_EQ(out, ropex("inspect positions --sampler cream --train-len 128 --target-len 1024 --samples 200 --print 5 "
                       "--seed 3 --set cream_mode=per_sample --jsonl", &rc2));
  out = ropex("inspect positions --sampler pose --train-len 64 --target-len 64 --samples 1", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("target_len"), std::string::npos) << out;
  out = ropex("inspect positions --sampler cream --train-len 128 --target-len 1024 --set cream_sigma=-1", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("cream_sigma"), std::string::npos) << out;
  out = ropex("inspect positions --sampler pose --train-len 64 --target-len 256 --samples 3", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("plan 0: tok 0-"), std::string::npos) << out;
}

}  // namespace
}  // namespace ropex::test
