// Tests for data/tokenizer: trains a tiny SentencePiece model on a generated
// corpus once per suite, then checks Llama conventions, round trips, digit
// splitting, BOS/EOS framing, errors, and id-for-id parity with Python's
// sentencepiece (tests/tokenizer_parity.py, run through $ROPEX_PYTHON).
// It does not test tokenizer quality or speed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace fs = std::filesystem;
using ropex::Tokenizer;
using ropex::TokenizerTrainOptions;

namespace {

constexpr int kVocabSize = 400;

// Under $ROPEX_TEST_TMP when set (ctest sets it), else the system temp dir.
fs::path make_temp_dir() {
  const char* root = std::getenv("ROPEX_TEST_TMP");
  const fs::path base = (root != nullptr && *root != '\0') ? fs::path(root) : fs::temp_directory_path();
  fs::create_directories(base);
  std::string templ = (base / "ropex-tokenizer-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + templ);
  return templ;
}

// The checked-in script: from the build's ROPEX_SOURCE_DIR, else next to this file.
fs::path parity_script() {
#ifdef ROPEX_SOURCE_DIR
  return fs::path(ROPEX_SOURCE_DIR) / "tests" / "tokenizer_parity.py";
#else
  return fs::path(__FILE__).parent_path() / "tokenizer_parity.py";
#endif
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A few hundred varied lines: English templates, numbers, accents, CJK, tabs.
std::string training_corpus() {
  const std::vector<std::string> subjects = {"The cat", "A student",      "My neighbour", "The old engineer",
                                             "Zoë",     "The café owner", "Our team",     "李明"};
  const std::vector<std::string> verbs = {"reads", "writes", "builds", "paints", "measures", "counts"};
  const std::vector<std::string> objects = {"a long book", "the small bridge", "résumés",
                                            "中文字符",    "numbers like 42",  "the weather\tdaily"};
  std::ostringstream out;
  int n = 0;
  for (const auto& s : subjects) {
    for (const auto& v : verbs) {
      for (const auto& o : objects) {
        out << s << ' ' << v << ' ' << o << " on day " << (n * 37 % 1000) << ".\n";
        ++n;
      }
    }
  }
  return out.str();
}

// POSIX shell single-quoting.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(make_temp_dir());
    const fs::path corpus = *dir_ / "corpus.txt";
    write_file(corpus, training_corpus());
    TokenizerTrainOptions options;
    options.vocab_size = kVocabSize;
    model_path_ = new std::string(Tokenizer::train({corpus.string()}, (*dir_ / "tiny").string(), options));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete model_path_;
  }
  static Tokenizer load() { return Tokenizer::load(*model_path_); }

  static fs::path* dir_;
  static std::string* model_path_;
};
fs::path* TokenizerTest::dir_ = nullptr;
std::string* TokenizerTest::model_path_ = nullptr;

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<no exception>";
}

}  // namespace

TEST_F(TokenizerTest, TrainWritesModelAndVocab) {
  EXPECT_EQ(*model_path_, (*dir_ / "tiny.model").string());
  EXPECT_TRUE(fs::is_regular_file(*dir_ / "tiny.model"));
  EXPECT_TRUE(fs::is_regular_file(*dir_ / "tiny.vocab"));
}

TEST_F(TokenizerTest, LlamaSpecialIdsAndVocabSize) {
  const Tokenizer tok = load();
  EXPECT_EQ(tok.vocab_size(), kVocabSize);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.path(), *model_path_);
}

TEST_F(TokenizerTest, RoundTripsTrickyText) {
  const Tokenizer tok = load();
  const std::vector<std::string> texts = {"Hello world", "café naïve résumé Zoë", "中文字符 and 日本語",
                                          "emoji 🙂🦀👩‍👩‍👧", "runs     of   spaces",
                                          "  leading and trailing  ", "tabs\tand\nnewlines\n\n",
                                          "12345 and 3.14", "\t", " ", "\n", "mixed: abc中文123🙂é\tend",
                                          // identity normalisation: NFKC would rewrite these
                                          "\uff26\uff35\uff2c\uff2c \ufb01 A\u030a \u00c5"};
  for (const auto& text : texts) {
    const auto ids = tok.encode(text, false, false);
    EXPECT_FALSE(ids.empty()) << text;
    EXPECT_EQ(tok.decode(ids), text);
  }
}

// SentencePiece (and so Llama) reads U+2581 in the input as its own space marker.
TEST_F(TokenizerTest, MetaSymbolInInputDecodesAsSpace) {
  const Tokenizer tok = load();
  EXPECT_EQ(tok.decode(tok.encode("a\u2581b", false, false)), "a b");
}

TEST_F(TokenizerTest, UnseenCharactersUseByteFallbackNotUnk) {
  const Tokenizer tok = load();
  for (const std::string text : {"🦀", "Ω≈ç√∫", "한국어"}) {
    const auto ids = tok.encode(text, false, false);
    for (const int32_t id : ids) EXPECT_NE(id, tok.unk_id()) << text;
    EXPECT_EQ(tok.decode(ids), text);
  }
}

TEST_F(TokenizerTest, SplitsDigitsIntoSinglePieces) {
  const Tokenizer tok = load();
  const auto ids = tok.encode("12345", false, false);
  ASSERT_EQ(ids.size(), 6u) << "expected the dummy-prefix piece then five digits";
  EXPECT_EQ(tok.decode({ids[0]}), "");
  const std::string digits = "12345";
  for (size_t i = 0; i < digits.size(); ++i) {
    EXPECT_EQ(tok.decode({ids[i + 1]}), digits.substr(i, 1));
  }
}

// Where a long text is cut (each cut a single space between ASCII characters; the ids are compared
// with Python's whole-text encoding in MatchesPythonSentencepiece).
TEST_F(TokenizerTest, LongTextsAreCutOnlyAtSpacesBetweenAsciiCharacters) {
  const Tokenizer tok = load();
  ASSERT_TRUE(tok.cuts_long_texts());
  EXPECT_TRUE(tok.cuts(std::string(Tokenizer::kPieceBytes, 'a')).empty());
  std::string text;
  for (int i = 0; text.size() < 5 * Tokenizer::kPieceBytes; ++i) text += i % 7 ? "word " : "x  y\n\u00e9 ";
  const std::vector<size_t> cuts = tok.cuts(text);
  ASSERT_GE(cuts.size(), 4u);
  size_t start = 0;
  for (const size_t c : cuts) {
    EXPECT_EQ(text[c], ' ');
    EXPECT_TRUE(text[c - 1] > ' ' && text[c - 1] < 0x7f) << c;
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(text[c + 1]))) << c;
    EXPECT_LE(c - start, Tokenizer::kPieceBytes);  // an exact cut exists in every window here
    start = c + 1;
  }
  // A run without a space: one piece up to kMaxUncut, refused beyond it.
  EXPECT_TRUE(tok.cuts(std::string(Tokenizer::kMaxUncut, 'x')).empty());
  EXPECT_THROW(tok.cuts(std::string(Tokenizer::kMaxUncut + 1, 'x')), ropex::TextTooLong);
  EXPECT_THROW(tok.encode(std::string(Tokenizer::kMaxUncut + 1, 'x'), false, false), ropex::TextTooLong);
}

TEST_F(TokenizerTest, EmptyInput) {
  const Tokenizer tok = load();
  EXPECT_TRUE(tok.encode("", false, false).empty());
  EXPECT_EQ(tok.encode("", true, false), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok.encode("", false, true), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok.encode("", true, true), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(tok.decode({}), "");
}

TEST_F(TokenizerTest, BosEosFrameTheSameIds) {
  const Tokenizer tok = load();
  const auto plain = tok.encode("The cat reads", false, false);
  auto framed = tok.encode("The cat reads", true, true);
  ASSERT_EQ(framed.size(), plain.size() + 2);
  EXPECT_EQ(framed.front(), 1);
  EXPECT_EQ(framed.back(), 2);
  EXPECT_EQ(std::vector<int32_t>(framed.begin() + 1, framed.end() - 1), plain);
  EXPECT_EQ(tok.decode(framed), "The cat reads");
}

TEST_F(TokenizerTest, MovedTokenizerKeepsWorking) {
  Tokenizer a = load();
  const auto ids = a.encode("Zoë builds", true, false);
  Tokenizer b = std::move(a);
  EXPECT_EQ(b.encode("Zoë builds", true, false), ids);
  EXPECT_THROW(a.vocab_size(), std::logic_error);  // NOLINT(bugprone-use-after-move): checked misuse
}

TEST_F(TokenizerTest, LoadMissingFileNamesPath) {
  const std::string path = (*dir_ / "no-such.model").string();
  const std::string msg = error_of([&] { Tokenizer::load(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST_F(TokenizerTest, LoadNonModelFilesNamesPath) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"text.model", "this is plain text, not a protobuf\n"},
      {"empty.model", ""},
      {"binary.model", std::string("\x0a\xff\xff\xff\xff\x0f\x01\x02", 8)},
  };
  for (const auto& [name, content] : bad) {
    const fs::path path = *dir_ / name;
    write_file(path, content);
    const std::string msg = error_of([&] { Tokenizer::load(path.string()); });
    EXPECT_NE(msg.find(path.string()), std::string::npos) << name << ": " << msg;
  }
  // A directory means a model directory's tokenizer; this one holds neither file.
  const std::string msg = error_of([&] { Tokenizer::load(dir_->string()); });
  EXPECT_NE(msg.find("no tokenizer.json or tokenizer.model"), std::string::npos) << msg;
}

TEST_F(TokenizerTest, DecodeOutOfRangeNamesIdAndVocabSize) {
  const Tokenizer tok = load();
  for (const int32_t id : {kVocabSize, -1, 1 << 30}) {
    const std::string msg = error_of([&] { tok.decode({5, id}); });
    EXPECT_NE(msg.find("id " + std::to_string(id)), std::string::npos) << msg;
    EXPECT_NE(msg.find("size " + std::to_string(kVocabSize)), std::string::npos) << msg;
  }
}

TEST_F(TokenizerTest, TrainErrorsNameTheFiles) {
  const std::string missing = (*dir_ / "missing.txt").string();
  TokenizerTrainOptions options;
  options.vocab_size = kVocabSize;
  std::string msg = error_of([&] { Tokenizer::train({missing}, (*dir_ / "x").string(), options); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;

  msg = error_of([&] { Tokenizer::train({}, (*dir_ / "x").string(), options); });
  EXPECT_NE(msg.find("no input files"), std::string::npos) << msg;

  const std::string corpus = (*dir_ / "corpus.txt").string();
  const std::string bad_prefix = (*dir_ / "no-dir" / "x").string();
  msg = error_of([&] { Tokenizer::train({corpus}, bad_prefix, options); });
  EXPECT_NE(msg.find("no-dir"), std::string::npos) << msg;

  const std::string empty = (*dir_ / "empty.txt").string();
  write_file(empty, "");
  msg = error_of([&] { Tokenizer::train({empty}, (*dir_ / "x").string(), options); });
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;

  options.vocab_size = 100000;  // far more than the corpus supports
  msg = error_of([&] { Tokenizer::train({corpus}, (*dir_ / "huge").string(), options); });
  EXPECT_NE(msg.find(corpus), std::string::npos) << msg;
  EXPECT_NE(msg.find("huge.model"), std::string::npos) << msg;
}

// Runs tests/tokenizer_parity.py with $ROPEX_PYTHON on the trained model and
// compares every case id for id.
TEST_F(TokenizerTest, MatchesPythonSentencepiece) {
  const char* python = std::getenv("ROPEX_PYTHON");
  const char* require = std::getenv("ROPEX_REQUIRE_PYTHON");
  if (python == nullptr || *python == '\0') {
    if (require != nullptr && std::string(require) == "1") {
      FAIL() << "ROPEX_REQUIRE_PYTHON=1 but ROPEX_PYTHON is unset: point it at a Python with "
                "sentencepiece installed to run the parity test";
    }
    GTEST_SKIP() << "ROPEX_PYTHON unset: parity with Python sentencepiece not checked";
  }
  const fs::path script = parity_script();
  ASSERT_TRUE(fs::is_regular_file(script)) << "parity script not found at " << script;
  const fs::path out = *dir_ / "parity.json";
  const fs::path err = *dir_ / "parity.stderr";
  const std::string cmd = shell_quote(python) + " " + shell_quote(script.string()) + " " +
                          shell_quote(*model_path_) + " " + shell_quote(out.string()) + " 2> " +
                          shell_quote(err.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << read_file(err);

  const auto ref = nlohmann::json::parse(read_file(out));
  const Tokenizer tok = load();
  ASSERT_GE(ref["cases"].size(), 20u);
  // The long cases are cut into pieces (exactly: the same ids as Python's whole-text encoding).
  ASSERT_TRUE(tok.cuts_long_texts());
  size_t cut_cases = 0;
  for (const auto& c : ref["cases"]) cut_cases += !tok.cuts(c["text"].get<std::string>()).empty();
  EXPECT_EQ(cut_cases, 2u);
  for (const auto& c : ref["cases"]) {
    const auto text = c["text"].get<std::string>();
    const std::string shown = text.size() > 200 ? text.substr(0, 200) + "... (" + std::to_string(text.size()) + " bytes)" : text;
    EXPECT_EQ(tok.encode(text, false, false), c["ids"].get<std::vector<int32_t>>()) << shown;
    EXPECT_EQ(tok.encode(text, true, true), c["ids_bos_eos"].get<std::vector<int32_t>>()) << shown;
    EXPECT_EQ(tok.decode(c["ids"].get<std::vector<int32_t>>()), c["decoded"].get<std::string>()) << shown;
  }
}
