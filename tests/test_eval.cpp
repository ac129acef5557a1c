// Evaluation: the retrieval prompts (standard text, lengths filled as the protocol says, answers
// that are really in the prompt), perplexity by length against transformers (truncated and sliding
// protocols, both aggregations), greedy decoding with the KV cache against transformers' generate()
// and against recomputing the whole sequence (dynamic scaling), distributed evaluation equal to one
// rank, pictures, make-tasks documents, prepare --chunk, and errors.
#include "data/tasks.h"
#include "data/token_store.h"
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "test_util.h"
#include "tests/tolerance.h"
#include "trainer/eval.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <unistd.h>

namespace ropex {
namespace {
using namespace ropex::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

// A tokenizer, a small random model (window 64) and a token store of numbered sentences.
struct EvalSetup {
  TempDir dir{"eval"};
  std::string out_text;
  EvalSetup() {
    std::ofstream corpus(dir.path / "corpus.txt");
    for (int d = 0; d < 12; ++d) {
      for (int s = 0; s < 40; ++s)
        corpus << "Record " << d << "." << s << ": the " << (s % 3 ? "green" : "blue") << " key " << (d * 37 + s * 11) % 1000
               << " is kept in line " << s << ". ";
      corpus << "\n\n";
    }
    corpus << passkey_filler() << "There is an important info hidden inside a lot of irrelevant text. What is the pass key?\n";
    corpus.close();
    TokenizerTrainOptions to;
    to.vocab_size = 400;
    Tokenizer::train({(dir.path / "corpus.txt").string()}, tok_prefix(), to);
    expect_ok(run("new-model --output " + model() + " --tokenizer " + tok() +
                  " --set hidden_size=32 --set intermediate_size=64 --set num_hidden_layers=2 --set num_attention_heads=4"
                  " --set num_key_value_heads=2 --set max_position_embeddings=64"));
    expect_ok(run("prepare --tokenizer " + tok() + " --input " + (dir.path / "corpus.txt").string() + " --output " + store() +
                  " --txt-split blank_line"));
  }
  std::string tok_prefix() const { return (dir.path / "tok").string(); }
  std::string tok() const { return tok_prefix() + ".model"; }
  std::string model() const { return (dir.path / "model").string(); }
  std::string store() const { return (dir.path / "store").string(); }
  int run(const std::string& args, const std::string& env = "") {
    return run_command(env + " '" + ropex_binary() + "' " + args, &out_text);
  }
  void expect_ok(int rc) {
    if (rc != 0) throw std::runtime_error("ropex failed: " + out_text);
  }
  json results(const std::string& out) const {
    std::ifstream in(out + "/results.json");
    return json::parse(in);
  }
};

TEST(Tasks, PasskeyPromptIsTheStandardOneAndFillsTheLength) {
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  for (const int64_t length : {200, 400, 800}) {
    for (const double depth : {0.0, 0.3, 1.0}) {
      Rng rng(static_cast<uint64_t>(length) + static_cast<uint64_t>(depth * 10));
      const TaskPrompt p = passkey_prompt(tok, length, depth, rng);
      EXPECT_LT(p.prompt_tokens, length);
      EXPECT_EQ(p.prompt_tokens, static_cast<int64_t>(tok.encode(p.prompt, true, false).size()));
      // Five parts joined by newlines.
      std::vector<std::string> parts;
      std::stringstream ss(p.prompt);
      for (std::string line; std::getline(ss, line);) parts.push_back(line);
      ASSERT_EQ(parts.size(), 5u) << p.prompt;
      EXPECT_EQ(parts[0], "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
                          "I will quiz you about the important information there.");
      EXPECT_EQ(parts[2], "The pass key is " + p.answer + ". Remember it. " + p.answer + " is the pass key.");
      EXPECT_EQ(parts[4], "What is the pass key? The pass key is");
      const int key = std::stoi(p.answer);
      EXPECT_GE(key, 1);
      EXPECT_LE(key, 50000);
      // Filler: a multiple of 128 characters, cut at depth, and the next 128 characters would reach the length.
      const size_t filler = parts[1].size() + parts[3].size();
      EXPECT_EQ(filler % 128, 0u);
      // The cut is a whole number of characters nearest depth * filler: within half a character.
      EXPECT_NEAR(static_cast<double>(parts[1].size()), depth * static_cast<double>(filler), 0.5);
      std::string repeated;
      while (repeated.size() < filler + 128) repeated += passkey_filler();
      EXPECT_EQ(parts[1] + parts[3], repeated.substr(0, filler));
      const size_t split = static_cast<size_t>(std::llround(depth * static_cast<double>(filler + 128)));
      const std::string longer = parts[0] + "\n" + repeated.substr(0, split) + "\n" + parts[2] + "\n" +
                                 repeated.substr(split, filler + 128 - split) + "\n" + parts[4];
      EXPECT_GE(static_cast<int64_t>(tok.encode(longer, true, false).size()), length) << "filler could have grown";
    }
  }
  Rng rng(1);
  expect_error([&] { passkey_prompt(tok, 20, 0.5, rng); }, {"passkey", "20"});
  expect_error([&] { passkey_prompt(tok, 400, 1.5, rng); }, {"depth", "[0, 1]"});
}

TEST(Tasks, KvPromptAsksForAKeyWhoseValueIsTheAnswer) {
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  for (const std::string ids : {"uuid", "hex:6", "digits:4"}) {
    for (const double pos : {0.0, 0.5, 1.0}) {
      Rng rng(7);
      const TaskPrompt p = kv_prompt(tok, 600, pos, parse_kv_id_format(ids), rng);
      EXPECT_LT(p.prompt_tokens, 600);
      ASSERT_GE(p.pairs, 2) << ids;
      // Parse the JSON object and the asked key independently of the builder.
      const size_t open = p.prompt.find('{'), close = p.prompt.find('}');
      ASSERT_NE(close, std::string::npos);
      const std::string object_text = p.prompt.substr(open, close - open + 1);
      std::vector<std::pair<std::string, std::string>> pairs;
      std::regex pair_re("\"([^\"]+)\": \"([^\"]+)\"");
      for (std::sregex_iterator it(object_text.begin(), object_text.end(), pair_re), end; it != end; ++it)
        pairs.emplace_back((*it)[1], (*it)[2]);
      EXPECT_TRUE(json::parse(object_text).is_object());
      ASSERT_EQ(static_cast<int64_t>(pairs.size()), p.pairs);
      std::smatch m;
      const std::string tail = p.prompt.substr(close);
      ASSERT_TRUE(std::regex_search(tail, m, std::regex("Key: \"([^\"]+)\"\nCorresponding value:$")));
      const auto asked = std::find_if(pairs.begin(), pairs.end(), [&](const auto& kv) { return kv.first == m[1].str(); });
      ASSERT_NE(asked, pairs.end());
      EXPECT_EQ(asked->second, p.answer);
      EXPECT_EQ(asked - pairs.begin(), p.target_index);
      EXPECT_EQ(p.target_index, std::llround(pos * static_cast<double>(p.pairs - 1)));
      if (ids == "uuid") {
        EXPECT_TRUE(std::regex_match(p.answer, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")));
      }
      if (ids == "digits:4") {
        EXPECT_TRUE(std::regex_match(p.answer, std::regex("[0-9]{4}")));
      }
    }
  }
}

// A size hint (what make-tasks passes from one example to the next) only changes where the search
// starts: a hint far too small, far too large, exact or absent gives the same passkey prompt (its
// key is drawn before the search, so the comparison is exact), and the filler steps found are
// written back. kv and copy draw their ids while searching, so a hinted prompt differs from an
// unhinted one; for them the test checks that the size written back is the prompt's, that it
// fits, and that one more pair / group (a fixed one: the next random one is unknown) comes within
// a few tokens of the length, which a search that stopped at its hint would miss by far.
TEST(Tasks, SizeHintGivesTheSameLargestFit) {
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  for (const int64_t length : {150, 400, 900}) {
    Rng ref_rng(11), counted_rng(11);
    const TaskPrompt ref = passkey_prompt(tok, length, 0.4, ref_rng);
    int64_t steps = 0;
    EXPECT_EQ(passkey_prompt(tok, length, 0.4, counted_rng, &steps).prompt, ref.prompt);
    std::vector<std::string> parts;  // intro, filler before the key, key line, filler after, question
    std::stringstream ss(ref.prompt);
    for (std::string line; std::getline(ss, line);) parts.push_back(line);
    ASSERT_EQ(parts.size(), 5u);
    EXPECT_EQ(steps * 128, static_cast<int64_t>(parts[1].size() + parts[3].size())) << "the filler steps are written back";
    if (length == 900) {
      EXPECT_GT(steps, 2);
    }
    for (const int64_t guess : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{5}, int64_t{37}, int64_t{1000}}) {
      Rng rng(11);
      int64_t hint = guess;
      const TaskPrompt p = passkey_prompt(tok, length, 0.4, rng, &hint);
      EXPECT_EQ(p.prompt, ref.prompt) << "length " << length << " hint " << guess;
      EXPECT_EQ(hint, steps);
    }
    for (const int64_t guess : {int64_t{1}, int64_t{3}, int64_t{50}, int64_t{400}}) {
      Rng rng(5);
      int64_t hint = guess;
      const TaskPrompt kv = kv_prompt(tok, length, 0.5, parse_kv_id_format("hex:6"), rng, &hint);
      EXPECT_LT(kv.prompt_tokens, length);
      EXPECT_EQ(hint, kv.pairs) << "length " << length << " hint " << guess;
      // One pair more (another random pair appended to the same object) reaches the length.
      const size_t close = kv.prompt.find('}');
      const std::string bigger = kv.prompt.substr(0, close) + ",\n \"a1b2c3\": \"d4e5f6\"" + kv.prompt.substr(close);
      EXPECT_GE(static_cast<int64_t>(tok.encode(bigger, true, false).size()), length - 12) << "kv could have grown a lot";
      hint = guess;
      Rng crng(6);
      const TaskPrompt c = copy_prompt(tok, length, crng, &hint);
      EXPECT_EQ(hint, c.pairs);
      const std::string more = c.answer + " ffff";
      EXPECT_LT(static_cast<int64_t>(tok.encode(c.prompt + " " + c.answer, true, false).size()), length);
      EXPECT_GE(static_cast<int64_t>(tok.encode("Copy: " + more + "\nAgain: " + more, true, false).size()), length - 8)
          << "copy could have grown a lot";
    }
  }
}

// A short id format has few ids; keys and values must stay distinct, so the object stops at that
// many pairs instead of searching forever for ids that do not exist (hex:1 has 16, digits:1 has 10).
TEST(Tasks, KvPromptWithFewIdsStopsAtTheirNumber) {
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  for (const auto& [ids, distinct] : std::vector<std::pair<std::string, int64_t>>{{"hex:1", 16}, {"digits:1", 10}}) {
    Rng rng(3);
    const TaskPrompt p = kv_prompt(tok, 2000, 0.5, parse_kv_id_format(ids), rng);
    EXPECT_EQ(p.pairs, distinct) << ids;
    EXPECT_LT(p.prompt_tokens, 2000) << ids;
    std::set<std::string> keys, values;
    std::regex pair_re("\"([^\"]+)\": \"([^\"]+)\"");
    for (std::sregex_iterator it(p.prompt.begin(), p.prompt.end(), pair_re), end; it != end; ++it) {
      keys.insert((*it)[1]);
      values.insert((*it)[2]);
    }
    EXPECT_EQ(static_cast<int64_t>(keys.size()), distinct) << ids;
    EXPECT_EQ(static_cast<int64_t>(values.size()), distinct) << ids;
  }
}

TEST(Tasks, CheckersAndIdFormats) {
  EXPECT_TRUE(passkey_correct(" 4213. What", "4213"));
  EXPECT_TRUE(passkey_correct("is 04213", "4213"));
  EXPECT_FALSE(passkey_correct(" 42130", "4213"));
  EXPECT_FALSE(passkey_correct(" 421 3", "4213"));
  EXPECT_FALSE(passkey_correct(" none", "4213"));
  EXPECT_TRUE(kv_correct(" \"ab12\"", "ab12"));
  EXPECT_TRUE(kv_correct("ab12xyz", "ab12"));
  EXPECT_FALSE(kv_correct(" \"ab1\"", "ab12"));
  EXPECT_FALSE(kv_correct("", "ab12"));
  EXPECT_EQ(kv_id_format_name(parse_kv_id_format("hex:8")), "hex:8");
  for (const std::string bad : {"uuid4", "hex:", "hex:0", "hex:65", "digits:x", "octal:3"})
    expect_error([&] { parse_kv_id_format(bad); }, {bad, "uuid, hex:N or digits:N"});
}

TEST(Eval, PerplexityMatchesTransformers) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  EvalSetup s;
  const std::string out = s.dir.str() + "/eval";
  ASSERT_EQ(s.run("eval --model " + s.model() + " --tasks ppl --data " + s.store() +
                  " --lengths 24,64,128 --docs 3 --stride 20 --no-plot --output " + out), 0) << s.out_text;
  const json r = s.results(out);
  // The same documents (store order, BOS stripped) for the reference.
  const TokenStore store = TokenStore::open(s.store());
  json docs = json::array();
  for (size_t d = 0; d < store.num_documents(); ++d) {
    std::vector<int32_t> ids = store.document(d);
    if (!ids.empty() && ids.front() == 1) ids.erase(ids.begin());
    docs.push_back(ids);
  }
  std::string ref_text;
  const LlamaConfig cfg = load_config(s.model());
  // The reference gets the documents ropex should have used: the last 3 long enough, from the
  // store's end back (where a training run holds out its eval.docs).
  for (const int64_t L : {24, 64, 128}) {
    json chosen = json::array();
    for (auto d = docs.rbegin(); d != docs.rend(); ++d)
      if (static_cast<int64_t>(d->size()) >= L - 1 && chosen.size() < 3) chosen.push_back(*d);
    std::ofstream(s.dir.path / "chosen.json") << chosen.dump();
    ASSERT_EQ(run_python(py, "hf_check.py", {"ppl", s.model(), (s.dir.path / "chosen.json").string(), std::to_string(L), "20"}, &ref_text), 0)
        << ref_text;
    const json ref = json::parse(ref_text.substr(ref_text.find('{')));
    for (const char* proto : {"truncated", "sliding"}) {
      const json* row = nullptr;
      for (const json& x : r["ppl"][proto]["rows"])
        if (x["length"] == L) row = &x;
      ASSERT_NE(row, nullptr) << proto << " " << L;
      const json& want = ref[proto][0];
      EXPECT_EQ((*row)["docs"], want["docs"]) << proto << " L=" << L;
      EXPECT_EQ((*row)["windows"], want["windows"]) << proto << " L=" << L;
      EXPECT_EQ((*row)["tokens"], want["tokens"]) << proto << " L=" << L;
      // ln(ppl) is a mean NLL: its absolute error is ppl's relative error (first order). The reference
      // takes float32 logits to float64 before log_softmax, so only the logits' rounding and our
      // reductions count; the model is the random-init one.
      const double nll_limit = tol::mean_nll(cfg, L, want["tokens"].get<int64_t>(), tol::random_init_max_logit(cfg),
                                             std::log(want["ppl"].get<double>()));
      EXPECT_NEAR((*row)["ppl"].get<double>() / want["ppl"].get<double>(), 1.0, nll_limit) << proto << " L=" << L;
      EXPECT_NEAR((*row)["ppl_token_weighted"].get<double>() / want["ppl_token_weighted"].get<double>(), 1.0, nll_limit)
          << proto << " L=" << L;
      if (std::string(proto) == "sliding" && L == 24) {
        EXPECT_GT((*row)["windows"].get<int64_t>(), 3);  // really slid
      }
    }
  }
}

TEST(Eval, GreedyDecodingWithTheCacheMatchesTransformersAndFullRecompute) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  EvalOptions o;
  LlamaForCausalLM model = load_pretrained(s.model());
  Rng rng(3);
  const TaskPrompt p = passkey_prompt(tok, 150, 0.5, rng);
  const std::vector<int32_t> prompt = tok.encode(p.prompt, true, false);
  const std::vector<int32_t> ours = greedy_decode(model, prompt, 12, /*eos_id=*/-1, o);
  ASSERT_EQ(ours.size(), 12u);
  std::string ref;
  ASSERT_EQ(run_python(py, "hf_check.py", {"greedy", s.model(), json(prompt).dump(), "12"}, &ref), 0) << ref;
  while (!ref.empty() && ref.back() == '\n') ref.pop_back();
  EXPECT_EQ(json(ours), json::parse(ref.substr(ref.rfind('\n') + 1))) << "transformers' greedy generate differs";

  // Dynamic NTK past the window: cached decoding must equal recomputing every step from scratch
  // with the frequencies of the current length (keys are cached before rotation).
  RopeScaling dyn;
  dyn.type = "dynamic";
  dyn.factor = 2.0;
  model->set_rope(dyn, 64);
  const TaskPrompt longer = passkey_prompt(tok, 200, 0.5, rng);
  std::vector<int32_t> seq = tok.encode(longer.prompt, true, false);
  ASSERT_LT(seq.size(), 200u);
  ASSERT_GT(seq.size(), 64u);  // past the window: the dynamic frequencies change at every step
  const std::vector<int32_t> cached = greedy_decode(model, seq, 12, -1, o);
  c10::NoGradGuard ng;
  std::vector<int32_t> recomputed;
  for (int step = 0; step < 12; ++step) {
    const int64_t T = static_cast<int64_t>(seq.size());
    at::Tensor ids = at::tensor(std::vector<int64_t>(seq.begin(), seq.end()), at::kLong).unsqueeze(0);
    at::Tensor logits = model->forward(ids, at::arange(T, at::kLong).unsqueeze(0));
    const int32_t next = static_cast<int32_t>(logits[0][-1].argmax().item<int64_t>());
    recomputed.push_back(next);
    seq.push_back(next);
  }
  EXPECT_EQ(cached, recomputed);
}

TEST(Eval, TwoRanksGiveTheResultsOfOneAndPicturesAreDrawn) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  EvalSetup s;
  const std::string args = " eval --model " + s.model() + " --tasks ppl,passkey,kv --data " + s.store() +
                           " --lengths 150,200 --depths 3 --samples 2 --docs 3 --kv-ids digits:3 ";
  const std::string one = s.dir.str() + "/one", two = s.dir.str() + "/two";
  ASSERT_EQ(s.run(args + "--output " + one + " --plot-python " + py), 0) << s.out_text;
  const int port = 23000 + static_cast<int>(::getpid() % 20000);
  std::string cmd;
  for (int r = 0; r < 2; ++r)
    cmd += "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) + " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
           std::to_string(port) + " '" + ropex_binary() + "'" + args + "--no-plot --output " + two + " > " + two + ".rank" +
           std::to_string(r) + ".log 2>&1 & p" + std::to_string(r) + "=$!; ";
  std::string out;
  ASSERT_EQ(run_command("bash -c '" + cmd + " wait $p0 && wait $p1'", &out), 0) << out;
  json a = s.results(one), b = s.results(two);
  EXPECT_EQ(b["world_size"], 2);
  for (json* j : {&a, &b}) {
    j->erase("world_size");
    j->erase("seconds");
  }
  EXPECT_EQ(a.dump(), b.dump());
  EXPECT_EQ(a["passkey"]["accuracy"].size(), 2u);
  EXPECT_EQ(a["passkey"]["accuracy"][0].size(), 3u);
  EXPECT_EQ(a["kv"]["bins"], json({"start", "middle", "end"}));
  EXPECT_EQ(a["pretrained_len"], 64);
  for (const char* f : {"results.md", "ppl_vs_length.png", "passkey_heatmap.png", "kv_by_position.png"})
    EXPECT_GT(fs::file_size(fs::path(one) / f), 100u) << f;
}

// Runs `ropex make-tasks ARGS --output OUT` and returns the documents' texts.
std::vector<std::string> make_task_texts(EvalSetup& s, const std::string& args, const std::string& out) {
  EXPECT_EQ(s.run("make-tasks --tokenizer " + s.tok() + " " + args + " --output " + out), 0) << s.out_text;
  std::vector<std::string> texts;
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) texts.push_back(json::parse(line)["text"]);
  return texts;
}

TEST(MakeTasks, DocumentsHoldTheWholeExampleInTheWindow) {
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  for (const std::string task : {"passkey", "kv"}) {
    const std::vector<std::string> texts =
        make_task_texts(s, "--task " + task + " --length 160 --count 6 --kv-ids hex:3", s.dir.str() + "/" + task + ".jsonl");
    for (const std::string& text : texts) {
      const std::string marker = task == "passkey" ? "The pass key is" : "Corresponding value:";
      const size_t q = text.rfind(marker);
      ASSERT_NE(q, std::string::npos);
      const size_t answer_end = text.find('\n', q);
      const std::string example = text.substr(0, answer_end);
      EXPECT_LE(tok.encode(example, true, false).size(), 160u) << example;
      EXPECT_GT(tok.encode(text, true, true).size(), 160u);
      if (task == "passkey") {
        std::smatch m;
        ASSERT_TRUE(std::regex_search(example, m, std::regex("The pass key is ([0-9]+)\\. Remember")));
        EXPECT_EQ(example.substr(example.size() - m[1].length() - 1), m[1].str() + ".");
      }
    }
    EXPECT_EQ(texts.size(), 6u);
  }
  EXPECT_NE(s.run("make-tasks --tokenizer " + s.tok() + " --task lines --length 160 --count 2 --output x.jsonl"), 0);
  EXPECT_NE(s.out_text.find("passkey, kv or copy"), std::string::npos) << s.out_text;
}

// --min-length: each example's length is drawn in [min, length]; the example still ends in its
// answer within that many tokens, filler follows up to the window, and the lengths really vary.
TEST(MakeTasks, MinLengthVariesTheExamplesLength) {
  EvalSetup s;
  const Tokenizer tok = Tokenizer::load(s.tok());
  for (const std::string task : {"passkey", "copy"}) {
    const std::vector<std::string> texts =
        make_task_texts(s, "--task " + task + " --length 400 --min-length 150 --count 24", s.dir.str() + "/varied-" + task + ".jsonl");
    std::set<size_t> lengths;
    for (const std::string& text : texts) {
      // The example: everything before the first filler sentence that follows the answer.
      const size_t answer_end = task == "passkey" ? text.find('\n', text.rfind("The pass key is")) : text.find('\n', text.find("Again:"));
      ASSERT_NE(answer_end, std::string::npos);
      const size_t example_tokens = tok.encode(text.substr(0, answer_end), true, false).size();
      EXPECT_LE(example_tokens, 400u);
      // Below its drawn length by at most the answer's reserve (8) and one filler / group step.
      EXPECT_GE(example_tokens, 150u - 8u - 40u) << "an example far below --min-length";
      EXPECT_GT(tok.encode(text, true, true).size(), 400u) << "filler reaches the window";
      lengths.insert(example_tokens / 20);
    }
    EXPECT_EQ(texts.size(), 24u);
    EXPECT_GE(lengths.size(), 5u) << task << ": the example lengths do not vary";
  }
  EXPECT_NE(s.run("make-tasks --tokenizer " + s.tok() + " --task copy --length 100 --min-length 200 --count 2 --output x.jsonl"), 0);
  EXPECT_NE(s.out_text.find("--min-length"), std::string::npos) << s.out_text;
  // A passkey prompt needs about 114 tokens with this tokenizer: a shorter draw names --min-length.
  EXPECT_NE(s.run("make-tasks --tokenizer " + s.tok() + " --task passkey --length 400 --min-length 40 --count 40 --output x.jsonl"), 0);
  EXPECT_NE(s.out_text.find("--min-length 40"), std::string::npos) << s.out_text;
  EXPECT_NE(s.out_text.find("without filler already has"), std::string::npos) << s.out_text;
}

TEST(Prepare, ChunkCutsFixedPiecesAndDropsTheShortRemainder) {
  EvalSetup s;
  const TokenStore whole = TokenStore::open(s.store());
  const std::string chunked = s.dir.str() + "/chunked";
  ASSERT_EQ(s.run("prepare --tokenizer " + s.tok() + " --input " + (s.dir.path / "corpus.txt").string() + " --output " + chunked +
                  " --txt-split blank_line --chunk 50"), 0) << s.out_text;
  const TokenStore pieces = TokenStore::open(chunked);
  std::vector<int32_t> expected, got;
  int64_t dropped = 0;
  for (size_t d = 0; d < whole.num_documents(); ++d) {
    const std::vector<int32_t> doc = whole.document(d);
    const size_t keep = doc.size() / 50 * 50;
    expected.insert(expected.end(), doc.begin(), doc.begin() + static_cast<std::ptrdiff_t>(keep));
    dropped += static_cast<int64_t>(doc.size() - keep);
  }
  for (size_t d = 0; d < pieces.num_documents(); ++d) {
    EXPECT_EQ(pieces.doc_len(d), 50);
    const std::vector<int32_t> doc = pieces.document(d);
    got.insert(got.end(), doc.begin(), doc.end());
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(pieces.meta()["stats"]["chunk_dropped_tokens"], dropped);
  EXPECT_NE(s.run("prepare --tokenizer " + s.tok() + " --input " + (s.dir.path / "corpus.txt").string() + " --output " + chunked +
                  "2 --chunk -3"), 0);
  EXPECT_NE(s.out_text.find("--chunk"), std::string::npos) << s.out_text;
}

TEST(Eval, BadInputGivesClearErrors) {
  EvalSetup s;
  struct Case {
    std::string args, needle;
  };
  const std::vector<Case> cases = {
      {"--tasks ppl,pasky", "unknown task 'pasky'"},
      {"--tasks ppl", "needs --data"},
      {"--tasks kv --kv-ids hex:99", "hex:N"},
      {"--tasks passkey --lengths 64,x", "--lengths"},
      {"--tasks ppl --protocols truncated,striding", "striding"},
      {"--tasks ppl --data /nonexistent/store", "/nonexistent/store"},
      {"--tasks passkey --lengths 10", "not below the requested length 10"},
  };
  for (const Case& c : cases) {
    EXPECT_NE(s.run("eval --model " + s.model() + " --no-plot --output " + s.dir.str() + "/bad " + c.args), 0) << c.args;
    EXPECT_NE(s.out_text.find(c.needle), std::string::npos) << c.args << "\n" << s.out_text;
  }
}

}  // namespace
}  // namespace ropex
