// `ropex prepare` over every corpus format (data/readers/): the same held-out documents as .jsonl,
// .jsonl.gz (two members), .jsonl.zst (two frames), gzip under a plain name, .parquet (many row
// groups), and pre-tokenized .jsonl / .jsonl.gz / .parquet (list<int32>, large_list<int64>) ids made
// by the `tokenizers` library, give byte-identical tokens.bin and index.bin (tests/make_corpus_formats.py
// writes them). Pre-tokenized ids are stored as given, BOS/EOS only when asked, and checked against
// the vocabulary; bad places are named FILE:LINE / FILE: row N; a truncated stream stops prepare
// with nothing written. The readers themselves: tests/text/test_readers.cpp, test_parquet_reader.cpp.
#include "data/token_store.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A model directory with tests/text/make_tokenizers.py's llama3 tokenizer.json and the
// tokenizer_config.json naming its EOS, and the corpus files; made once per process.
struct Corpus {
  fs::path model, files;
  json expected;
};

const Corpus& corpus(const std::string& python) {
  static TempDir dir("corpus-formats");
  static Corpus c;
  if (c.model.empty()) {
    std::string out;
    const fs::path styles = dir.path / "styles";
    fs::create_directories(styles);
    if (run_python(python, "text/make_tokenizers.py", {styles.string()}, &out) != 0) throw std::runtime_error("make_tokenizers.py: " + out);
    c.model = dir.path / "model";
    fs::create_directories(c.model);
    fs::copy_file(styles / "llama3.json", c.model / "tokenizer.json");
    std::ofstream(c.model / "tokenizer_config.json") << R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})";
    c.files = dir.path / "files";
    fs::create_directories(c.files);
    if (run_python(python, "make_corpus_formats.py", {c.files.string(), (c.model / "tokenizer.json").string()}, &out) != 0)
      throw std::runtime_error("make_corpus_formats.py: " + out);
    c.expected = json::parse(slurp(c.files / "expected.json"));
  }
  return c;
}

// Runs `ropex prepare` on one input into `store`; returns the exit code, output in *out.
int prepare(const Corpus& c, const std::string& input, const fs::path& store, const std::string& extra, std::string* out) {
  return run_command("'" + ropex_binary() + "' prepare --tokenizer '" + c.model.string() + "' --input '" +
                         (c.files / input).string() + "' --output '" + store.string() + "' --threads 2 " + extra + " 2>&1",
                     out);
}

TEST(CorpusFormats, EveryFormatGivesTheSameStore) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const Corpus& c = corpus(py);
  TempDir dir("corpus-stores");
  std::string out;
  const fs::path reference = dir.path / "reference";
  ASSERT_EQ(prepare(c, "docs.jsonl", reference, "", &out), 0) << out;
  const TokenStore ref = TokenStore::open(reference.string());
  const int64_t docs = c.expected["documents"].get<int64_t>() - c.expected["empty"].get<int64_t>();
  ASSERT_EQ(static_cast<int64_t>(ref.num_documents()), docs);  // the empty document is dropped in every format
  // The reference itself: BOS + the library's ids + EOS (so the comparisons below are with the truth).
  const Tokenizer tok = Tokenizer::load(c.model.string());
  std::vector<int32_t> first{tok.bos_id()};
  for (const auto& id : c.expected["ids"][0]) first.push_back(id.get<int32_t>());
  first.push_back(tok.eos_id());
  EXPECT_EQ(ref.document(0), first);

  const std::string tokens = slurp(reference / "tokens.bin"), index = slurp(reference / "index.bin");
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"docs.jsonl.gz", ""},
      {"docs.jsonl.zst", ""},
      {"docs-gzip-no-suffix.jsonl", ""},
      {"docs.parquet", ""},
      {"ids.jsonl", "--ids-field ids --add-bos --add-eos"},
      {"ids.jsonl.gz", "--ids-field ids --add-bos --add-eos"},
      {"ids.jsonl.zst", "--ids-field ids --add-bos --add-eos"},
      {"ids.parquet", "--ids-field ids --add-bos --add-eos"},
      {"ids-int64.parquet", "--ids-field ids --add-bos --add-eos"},
  };
  for (const auto& [input, flags] : inputs) {
    SCOPED_TRACE(input);
    const fs::path store = dir.path / ("store-" + input);
    ASSERT_EQ(prepare(c, input, store, flags, &out), 0) << out;
    EXPECT_TRUE(slurp(store / "tokens.bin") == tokens) << "tokens.bin differs";
    EXPECT_TRUE(slurp(store / "index.bin") == index) << "index.bin differs";
    const json stats = json::parse(slurp(store / "stats.json"));
    EXPECT_EQ(stats["documents"], docs);
    EXPECT_EQ(stats["empty"], c.expected["empty"]);
    EXPECT_EQ(stats["skipped"], 0);
  }
}

// .txt paragraphs (plain and zstd) against the same documents as .jsonl.
TEST(CorpusFormats, TextParagraphsGiveTheSameStoreAsJsonl) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const Corpus& c = corpus(py);
  TempDir dir("corpus-paras");
  std::string out;
  ASSERT_EQ(prepare(c, "paras.jsonl", dir.path / "reference", "", &out), 0) << out;
  EXPECT_EQ(TokenStore::open((dir.path / "reference").string()).num_documents(), 60u);
  for (const char* input : {"paras.txt", "paras.txt.zst"}) {
    SCOPED_TRACE(input);
    const fs::path store = dir.path / input;
    ASSERT_EQ(prepare(c, input, store, "--txt-split blank_line", &out), 0) << out;
    EXPECT_TRUE(slurp(store / "tokens.bin") == slurp(dir.path / "reference" / "tokens.bin")) << "tokens.bin differs";
    EXPECT_TRUE(slurp(store / "index.bin") == slurp(dir.path / "reference" / "index.bin")) << "index.bin differs";
  }
}

TEST(CorpusFormats, PreTokenizedIdsAreStoredAsGiven) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const Corpus& c = corpus(py);
  TempDir dir("corpus-ids");
  std::string out;
  for (const char* input : {"ids.jsonl", "ids.parquet"}) {
    SCOPED_TRACE(input);
    const fs::path store = dir.path / (std::string("plain-") + input);
    ASSERT_EQ(prepare(c, input, store, "--ids-field ids", &out), 0) << out;
    const TokenStore s = TokenStore::open(store.string());
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(json(s.document(i)), c.expected["ids"][i]) << "document " << i;
    EXPECT_EQ(s.meta()["prepare"]["add_bos"], false);
    EXPECT_EQ(s.meta()["prepare"]["add_eos"], false);
    EXPECT_EQ(s.meta()["prepare"]["ids_field"], "ids");
  }
  // Only the EOS asked for.
  ASSERT_EQ(prepare(c, "ids.jsonl", dir.path / "eos", "--ids-field ids --add-eos", &out), 0) << out;
  const Tokenizer tok = Tokenizer::load(c.model.string());
  std::vector<int32_t> first = c.expected["ids"][0].get<std::vector<int32_t>>();
  first.push_back(tok.eos_id());
  EXPECT_EQ(TokenStore::open((dir.path / "eos").string()).document(0), first);
  // Contradicting flags, and text files with --ids-field, are refused before any work.
  EXPECT_NE(prepare(c, "ids.jsonl", dir.path / "x", "--ids-field ids --add-bos --no-bos", &out), 0);
  EXPECT_NE(out.find("--add-bos and --no-bos contradict"), std::string::npos) << out;
  std::ofstream(dir.path / "a.txt") << "text";
  ASSERT_NE(run_command("'" + ropex_binary() + "' prepare --tokenizer '" + c.model.string() + "' --input '" +
                            (c.files / "ids.jsonl").string() + "' --input '" + (dir.path / "a.txt").string() +
                            "' --ids-field ids --output '" + (dir.path / "y").string() + "' 2>&1",
                        &out),
            0);
  EXPECT_NE(out.find("a.txt' is a text file, which holds no token ids"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir.path / "y"));
}

TEST(CorpusFormats, BadRecordsAreNamedAndTruncatedStreamsStop) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const Corpus& c = corpus(py);
  TempDir dir("corpus-bad");
  std::string out;
  // An id outside the vocabulary: skipped and named by FILE:LINE, or fatal with --on-error fail.
  const std::string bad_ids = (c.files / "bad-ids.jsonl").string();
  ASSERT_EQ(prepare(c, "bad-ids.jsonl", dir.path / "skip", "--ids-field ids", &out), 0) << out;
  EXPECT_NE(out.find(bad_ids + ":2: token id 2000000000 at index 1 is outside the vocabulary"), std::string::npos) << out;
  EXPECT_EQ(TokenStore::open((dir.path / "skip").string()).num_documents(), 2u);
  EXPECT_NE(prepare(c, "bad-ids.jsonl", dir.path / "fail", "--ids-field ids --on-error fail", &out), 0);
  EXPECT_NE(out.find(bad_ids + ":2: token id 2000000000"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir.path / "fail"));
  // A null Parquet text: named by FILE: row N.
  ASSERT_EQ(prepare(c, "bad.parquet", dir.path / "pq", "", &out), 0) << out;
  EXPECT_NE(out.find((c.files / "bad.parquet").string() + ": row 2"), std::string::npos) << out;
  EXPECT_EQ(TokenStore::open((dir.path / "pq").string()).num_documents(), 2u);
  // A .jsonl.gz cut short: prepare stops, naming the file; no store is left.
  const std::string gz = slurp(c.files / "docs.jsonl.gz");
  const fs::path cut = dir.path / "cut.jsonl.gz";
  std::ofstream(cut, std::ios::binary) << gz.substr(0, gz.size() * 3 / 4);
  ASSERT_NE(run_command("'" + ropex_binary() + "' prepare --tokenizer '" + c.model.string() + "' --input '" + cut.string() +
                            "' --output '" + (dir.path / "cut").string() + "' 2>&1",
                        &out),
            0);
  EXPECT_NE(out.find(cut.string() + "': the gzip stream ends before its end marker (the file was cut short?)"), std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(dir.path / "cut"));
  for (const auto& e : fs::directory_iterator(dir.path))
    EXPECT_EQ(e.path().filename().string().find("cut.partial"), std::string::npos) << e.path() << " left behind";
}

}  // namespace
}  // namespace ropex::test
