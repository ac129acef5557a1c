// Tests for data/token_store and data/prepare (and the `ropex prepare` command line): trains a
// tiny SentencePiece model once per suite, prepares .jsonl/.txt corpora, and checks round trips
// against Tokenizer::encode, byte-identical output for 1 and 2 threads, malformed-record reports
// (FILE:LINE), token widths, interrupted and corrupted stores, overwrite rules and statistics.
// It does not test tokenizer quality or the trainer's loader.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/prepare.h"
#include "data/token_store.h"
#include "data/tokenizer.h"
#include "trainer/cli.h"

namespace ropex {
int cmd_prepare(const std::vector<std::string>& args);  // trainer/cmd_prepare.cpp
}

namespace fs = std::filesystem;
using nlohmann::json;
using namespace ropex;

namespace {

// A fresh directory under $ROPEX_TEST_TMP (or the system temp dir), removed on destruction.
struct TempDir {
  TempDir() {
    const char* root = std::getenv("ROPEX_TEST_TMP");
    const fs::path base = (root != nullptr && *root != '\0') ? fs::path(root) : fs::temp_directory_path();
    fs::create_directories(base);
    std::string templ = (base / "ropex-token-store-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + templ);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  fs::path path;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string jsonl_line(const std::string& text) { return json{{"text", text}}.dump() + "\n"; }

std::string jsonl_of(const std::vector<std::string>& texts) {
  std::string out;
  for (const auto& t : texts) out += jsonl_line(t);
  return out;
}

// The what() of the exception fn throws, or "<no exception>".
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

#define EXPECT_ERROR_HAS(stmt, needle) EXPECT_NE(error_of([&] { stmt; }).find(needle), std::string::npos) \
    << "error was: " << error_of([&] { stmt; }) << "\nexpected it to contain: " << (needle)

// Document i of a deterministic corpus: sentences from a small grammar, i % 7 + 1 of them
// repeated (i % 5 == 0 ? long_repeat : 1) times, so lengths vary from ten to thousands of tokens.
std::string document_text(int i, int long_repeat = 40) {
  static const std::vector<std::string> subjects = {"The cat", "A student", "Zoë", "The café owner", "李明", "Our team"};
  static const std::vector<std::string> verbs = {"reads", "writes", "builds", "measures"};
  static const std::vector<std::string> objects = {"a long book", "the small bridge", "résumés", "numbers like 42"};
  std::string out;
  const int sentences = (i % 7 + 1) * (i % 5 == 0 ? long_repeat : 1);
  for (int s = 0; s < sentences; ++s) {
    const int k = i * 31 + s * 7;
    out += subjects[k % subjects.size()] + " " + verbs[(k / 3) % verbs.size()] + " " + objects[(k / 5) % objects.size()] +
           " on day " + std::to_string(k % 1000) + ". ";
  }
  return out;
}

std::vector<std::string> corpus(int n, int long_repeat = 40) {
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) texts.push_back(document_text(i, long_repeat));
  return texts;
}

class TokenStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = new TempDir();
    std::string training;
    for (const auto& t : corpus(200)) training += t + "\n";
    std::replace(training.begin(), training.end(), '.', '\n');  // one short sentence per line
    write_file(*suite_dir_ / "train.txt", training);
    TokenizerTrainOptions options;
    options.vocab_size = 300;
    model_ = new std::string(Tokenizer::train({*suite_dir_ / "train.txt"}, *suite_dir_ / "tiny", options));
  }
  static void TearDownTestSuite() {
    delete suite_dir_;
    delete model_;
  }

  PrepareOptions options(const std::vector<std::string>& inputs, const std::string& output) const {
    PrepareOptions o;
    o.tokenizer_path = *model_;
    o.inputs = inputs;
    o.output_dir = output;
    o.threads = 1;
    return o;
  }
  static Tokenizer tokenizer() { return Tokenizer::load(*model_); }

  // A small finished store at tmp/name holding `texts`.
  std::string make_store(const std::string& name, const std::vector<std::string>& texts) {
    write_file(tmp_ / (name + ".jsonl"), jsonl_of(texts));
    prepare_corpus(options({tmp_ / (name + ".jsonl")}, tmp_ / name));
    return tmp_ / name;
  }

  static TempDir* suite_dir_;
  static std::string* model_;
  TempDir tmp_;
};
TempDir* TokenStoreTest::suite_dir_ = nullptr;
std::string* TokenStoreTest::model_ = nullptr;

void expect_document(const TokenStore& store, size_t doc, const std::vector<int32_t>& expected) {
  ASSERT_LT(doc, store.num_documents());
  EXPECT_EQ(store.doc_len(doc), static_cast<int64_t>(expected.size())) << "document " << doc;
  EXPECT_EQ(store.document(doc), expected) << "document " << doc;
}

// A dead process id: a child that exits at once.
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

}  // namespace

// ---- round trips ----

TEST_F(TokenStoreTest, JsonlAndTxtRoundTripInInputOrder) {
  const auto texts = corpus(30);
  write_file(tmp_ / "a.jsonl", jsonl_of({texts.begin(), texts.begin() + 20}));
  write_file(tmp_ / "b.txt", texts[20]);
  write_file(tmp_ / "c.jsonl", "\n" + jsonl_of({texts.begin() + 21, texts.end()}) + "  \n");
  const PrepareStats stats = prepare_corpus(options({tmp_ / "a.jsonl", tmp_ / "b.txt", tmp_ / "c.jsonl"}, tmp_ / "store"));

  const TokenStore store = TokenStore::open(tmp_ / "store");
  const Tokenizer tok = tokenizer();
  ASSERT_EQ(store.num_documents(), texts.size());
  int64_t total = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tok.encode(texts[i], true, true);
    expect_document(store, i, ids);
    total += static_cast<int64_t>(ids.size());
  }
  EXPECT_EQ(store.num_tokens(), total);
  EXPECT_EQ(store.vocab_size(), 300);
  EXPECT_EQ(store.token_bytes(), 2);
  EXPECT_NO_THROW(store.verify_tokens());
  EXPECT_EQ(stats.documents, 30);
  EXPECT_EQ(stats.tokens, total);
  EXPECT_EQ(stats.skipped, 0);

  const json& meta = store.meta();
  EXPECT_EQ(meta["format"], "ropex-token-store");
  EXPECT_EQ(meta["version"], 1);
  EXPECT_EQ(meta["tokenizer"]["vocab_size"], 300);
  EXPECT_EQ(meta["tokenizer"]["size"], fs::file_size(*model_));
  EXPECT_EQ(meta["tokenizer"]["fnv1a64"].get<std::string>().size(), 16u);
  EXPECT_EQ(meta["prepare"]["add_bos"], true);
  EXPECT_EQ(meta["stats"], json::parse(read_file(tmp_ / "store/stats.json")));
  EXPECT_TRUE(fs::exists(tmp_ / "store/COMPLETE"));
  EXPECT_FALSE(fs::exists(tmp_ / "store/OWNER"));
}

TEST_F(TokenStoreTest, ReadReturnsSlicesAndIsBoundsChecked) {
  const TokenStore store = TokenStore::open(make_store("s", corpus(3)));
  const auto doc = store.document(1);
  std::vector<int32_t> slice(3);
  store.read(1, 2, 3, slice.data());
  EXPECT_EQ(slice, std::vector<int32_t>(doc.begin() + 2, doc.begin() + 5));
  store.read(1, store.doc_len(1), 0, slice.data());  // empty read at the end is fine
  const int64_t len = store.doc_len(1);
  EXPECT_THROW(store.read(1, len - 2, 3, slice.data()), std::out_of_range);
  EXPECT_THROW(store.read(1, -1, 1, slice.data()), std::out_of_range);
  EXPECT_THROW(store.read(3, 0, 1, slice.data()), std::out_of_range);
  EXPECT_ERROR_HAS(store.doc_len(7), "document 7 does not exist (3 documents)");
  EXPECT_ERROR_HAS(store.read(1, len - 2, 3, slice.data()), "tokens");
}

TEST_F(TokenStoreTest, NoBosNoEosAndBlankLineSplit) {
  write_file(tmp_ / "p.txt", "First paragraph\nstill first.\n\n  \t\nSecond one.\r\n\n\n\nThird\n");
  PrepareOptions o = options({tmp_ / "p.txt"}, tmp_ / "store");
  o.add_bos = false;
  o.add_eos = false;
  o.txt_split = TxtSplit::blank_line;
  prepare_corpus(o);
  const TokenStore store = TokenStore::open(tmp_ / "store");
  const Tokenizer tok = tokenizer();
  ASSERT_EQ(store.num_documents(), 3u);
  expect_document(store, 0, tok.encode("First paragraph\nstill first.", false, false));
  expect_document(store, 1, tok.encode("Second one.\r", false, false));
  expect_document(store, 2, tok.encode("Third", false, false));
}

TEST_F(TokenStoreTest, TxtFileModeKeepsTheWholeFile) {
  const std::string text = "Para one.\n\nPara two.\n";
  write_file(tmp_ / "p.txt", text);
  prepare_corpus(options({tmp_ / "p.txt"}, tmp_ / "store"));
  const TokenStore store = TokenStore::open(tmp_ / "store");
  ASSERT_EQ(store.num_documents(), 1u);
  expect_document(store, 0, tokenizer().encode(text, true, true));
}

TEST_F(TokenStoreTest, EmptyDocumentsAreDroppedAndCounted) {
  write_file(tmp_ / "e.jsonl", jsonl_of({"", "Zoë reads.", ""}));
  write_file(tmp_ / "e.txt", "");
  const PrepareStats stats = prepare_corpus(options({tmp_ / "e.jsonl", tmp_ / "e.txt"}, tmp_ / "store"));
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.empty, 3);
  write_file(tmp_ / "none.jsonl", jsonl_of({""}) + "{bad\n");
  EXPECT_ERROR_HAS(prepare_corpus(options({tmp_ / "none.jsonl"}, tmp_ / "none")), "no documents");
  EXPECT_FALSE(fs::exists(tmp_ / "none"));
}

// ---- threads ----

TEST_F(TokenStoreTest, OneAndTwoThreadsWriteIdenticalBytes) {
  write_file(tmp_ / "big.jsonl", jsonl_of(corpus(2600, 2)));  // > 2 batches of 1024 documents
  write_file(tmp_ / "tail.txt", document_text(5));
  const std::vector<std::string> inputs = {tmp_ / "big.jsonl", tmp_ / "tail.txt"};
  for (const int threads : {1, 2, 3}) {
    PrepareOptions o = options(inputs, tmp_ / ("t" + std::to_string(threads)));
    o.threads = threads;
    prepare_corpus(o);
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp_ / "t1")) names.push_back(e.path().filename().string());
  EXPECT_EQ(names.size(), 5u);  // tokens.bin index.bin meta.json stats.json COMPLETE
  for (const auto& name : names) {
    const std::string one = read_file(tmp_ / ("t1/" + name));
    EXPECT_EQ(one, read_file(tmp_ / ("t2/" + name))) << name;
    EXPECT_EQ(one, read_file(tmp_ / ("t3/" + name))) << name;
  }
  const TokenStore store = TokenStore::open(tmp_ / "t2");
  ASSERT_EQ(store.num_documents(), 2601u);
  const Tokenizer tok = tokenizer();
  for (const size_t i : {0, 1023, 1024, 2047, 2048, 2599}) {
    expect_document(store, i, tok.encode(document_text(static_cast<int>(i), 2), true, true));
  }
  expect_document(store, 2600, tok.encode(document_text(5), true, true));
}

// ---- malformed input ----

std::string malformed_jsonl() {
  return jsonl_line("good one") +                        // 1
         "\n" +                                          // 2 blank: skipped silently
         "{\"text\": \"unterminated\n" +                 // 3 bad JSON
         jsonl_line("good two") +                        // 4
         "[1, 2]\n" +                                    // 5 not an object
         "{\"body\": \"x\", \"id\": 3}\n" +              // 6 missing field
         "{\"text\": 17}\n" +                            // 7 not a string
         "{\"text\": \"bad \xff utf8\"}\n" +             // 8 invalid UTF-8
         jsonl_line("good three");                       // 9
}

TEST_F(TokenStoreTest, MalformedLinesAreSkippedWithFileAndLine) {
  write_file(tmp_ / "bad.jsonl", malformed_jsonl());
  const PrepareStats stats = prepare_corpus(options({tmp_ / "bad.jsonl"}, tmp_ / "store"));
  EXPECT_EQ(stats.documents, 3);
  EXPECT_EQ(stats.skipped, 5);
  ASSERT_EQ(stats.skipped_examples.size(), 5u);
  const std::string file = tmp_ / "bad.jsonl";
  const std::vector<std::pair<int, std::string>> expected = {
      {3, "invalid JSON"}, {5, "expected a JSON object, got array"}, {6, "no \"text\" field (keys: body, id)"},
      {7, "field \"text\" is number, expected a string"}, {8, "invalid JSON"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(stats.skipped_examples[i].rfind(file + ":" + std::to_string(expected[i].first) + ": ", 0), 0u)
        << stats.skipped_examples[i];
    EXPECT_NE(stats.skipped_examples[i].find(expected[i].second), std::string::npos) << stats.skipped_examples[i];
  }
  const TokenStore store = TokenStore::open(tmp_ / "store");
  expect_document(store, 2, tokenizer().encode("good three", true, true));
  EXPECT_EQ(store.meta()["stats"]["skipped"], 5);
  // The bad byte quoted by the JSON parser is replaced in stats.json, not fatal.
  EXPECT_EQ(json::parse(read_file(tmp_ / "store/stats.json"))["skipped_examples"].size(), 5u);
}

TEST_F(TokenStoreTest, OnlyTheFirstTenMalformedLinesAreKept) {
  std::string text;
  for (int i = 0; i < 25; ++i) text += "not json\n" + jsonl_line("ok");
  write_file(tmp_ / "many.jsonl", text);
  const PrepareStats stats = prepare_corpus(options({tmp_ / "many.jsonl"}, tmp_ / "store"));
  EXPECT_EQ(stats.skipped, 25);
  EXPECT_EQ(stats.documents, 25);
  ASSERT_EQ(stats.skipped_examples.size(), 10u);
  EXPECT_NE(stats.skipped_examples[9].find("many.jsonl:19:"), std::string::npos);
}

TEST_F(TokenStoreTest, FailModeThrowsNamingFileAndLineAndWritesNothing) {
  write_file(tmp_ / "bad.jsonl", malformed_jsonl());
  PrepareOptions o = options({tmp_ / "bad.jsonl"}, tmp_ / "store");
  o.on_error = OnError::fail;
  EXPECT_ERROR_HAS(prepare_corpus(o), tmp_ / "bad.jsonl:3: invalid JSON");
  EXPECT_FALSE(fs::exists(tmp_ / "store"));
  EXPECT_FALSE(fs::exists(partial_dir_for(tmp_ / "store", getpid())));
}

TEST_F(TokenStoreTest, CustomTextField) {
  write_file(tmp_ / "f.jsonl", "{\"body\": \"Zoë builds.\"}\n{\"text\": \"wrong field\"}\n");
  PrepareOptions o = options({tmp_ / "f.jsonl"}, tmp_ / "store");
  o.text_field = "body";
  const PrepareStats stats = prepare_corpus(o);
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.skipped, 1);
  EXPECT_NE(stats.skipped_examples[0].find("f.jsonl:2: no \"body\" field (keys: text)"), std::string::npos);
}

TEST_F(TokenStoreTest, InvalidUtf8InTxtNamesTheLine) {
  write_file(tmp_ / "u.txt", "fine\n\nline three\nline \xc3\x28 four\n\nlast ok\n");
  PrepareOptions o = options({tmp_ / "u.txt"}, tmp_ / "store");
  o.txt_split = TxtSplit::blank_line;
  const PrepareStats stats = prepare_corpus(o);
  EXPECT_EQ(stats.documents, 2);
  ASSERT_EQ(stats.skipped_examples.size(), 1u);
  EXPECT_NE(stats.skipped_examples[0].find("u.txt:4: invalid UTF-8"), std::string::npos) << stats.skipped_examples[0];
  // Overlong encodings and surrogates are not UTF-8 either.
  for (const std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    write_file(tmp_ / "v.txt", "ok " + bad);
    o = options({tmp_ / "v.txt"}, tmp_ / "v");
    o.on_error = OnError::fail;
    EXPECT_ERROR_HAS(prepare_corpus(o), "v.txt:1: invalid UTF-8");
  }
}

TEST_F(TokenStoreTest, UnsupportedInputsFailBeforeAnyWork) {
  write_file(tmp_ / "ok.jsonl", jsonl_line("fine"));
  write_file(tmp_ / "c.jsonl.bz2", "BZh9");
  write_file(tmp_ / "e.jsonl.gz", jsonl_line("not gzip"));
  write_file(tmp_ / "d.csv", "a,b\n");
  EXPECT_ERROR_HAS(prepare_corpus(options({tmp_ / "ok.jsonl", tmp_ / "c.jsonl.bz2"}, tmp_ / "s")), "c.jsonl.bz2' is compressed as .bz2");
  EXPECT_ERROR_HAS(prepare_corpus(options({tmp_ / "ok.jsonl", tmp_ / "e.jsonl.gz"}, tmp_ / "s")), "e.jsonl.gz' is named .gz but");
  EXPECT_ERROR_HAS(prepare_corpus(options({tmp_ / "d.csv"}, tmp_ / "s")), "accepted: .jsonl");
  EXPECT_ERROR_HAS(prepare_corpus(options({tmp_ / "missing.txt"}, tmp_ / "s")), "missing.txt' does not exist");
  EXPECT_ERROR_HAS(prepare_corpus(options({}, tmp_ / "s")), "no input files");
  PrepareOptions o = options({tmp_ / "ok.jsonl"}, tmp_ / "s");
  o.tokenizer_path = tmp_ / "nope.model";
  EXPECT_ERROR_HAS(prepare_corpus(o), "nope.model");
  EXPECT_FALSE(fs::exists(tmp_ / "s"));
}

// ---- token width ----

TEST_F(TokenStoreTest, TokenWidthFollowsVocabSize) {
  EXPECT_EQ(token_bytes_for_vocab(300), 2);
  EXPECT_EQ(token_bytes_for_vocab(65536), 2);
  EXPECT_EQ(token_bytes_for_vocab(65537), 4);
  EXPECT_THROW(token_bytes_for_vocab(0), std::runtime_error);
  for (const int64_t vocab : {int64_t{65536}, int64_t{128256}}) {
    const std::string dir = tmp_ / ("v" + std::to_string(vocab));
    const std::vector<int32_t> a = {0, 1, 65535}, b = {static_cast<int32_t>(vocab - 1), 7};
    {
      TokenStoreWriter w(dir, vocab);
      w.add_document(a);
      w.add_document({});
      w.add_document(b);
      w.finish();
    }
    const TokenStore store = TokenStore::open(dir);
    const int width = vocab > 65536 ? 4 : 2;
    EXPECT_EQ(store.token_bytes(), width);
    EXPECT_EQ(fs::file_size(dir + "/tokens.bin"), 5u * width);
    EXPECT_EQ(fs::file_size(dir + "/index.bin"), 4u * 8);
    expect_document(store, 0, a);
    EXPECT_EQ(store.doc_len(1), 0);
    expect_document(store, 2, b);
    EXPECT_EQ(store.docs_at_least(2), 2u);
    EXPECT_EQ(store.docs_at_least(0), 3u);
    EXPECT_NO_THROW(store.verify_tokens());
  }
}

TEST_F(TokenStoreTest, WriterRejectsBadIdsAndReservedMeta) {
  TokenStoreWriter w(tmp_ / "w", 300);
  const std::vector<int32_t> too_big = {1, 300}, negative = {-1};
  EXPECT_ERROR_HAS(w.add_document(too_big), "token id 300 outside [0, 300)");
  EXPECT_ERROR_HAS(w.add_document(negative), "token id -1");
  EXPECT_ERROR_HAS(w.set_meta("num_tokens", 5), "reserved");
  EXPECT_ERROR_HAS(w.add_file("meta.json", "{}"), "cannot add file");
  EXPECT_ERROR_HAS(w.add_file("../x", "{}"), "cannot add file");
  EXPECT_ERROR_HAS(TokenStoreWriter(tmp_ / "m", 300, json::array()), "must be a JSON object");
}

// ---- interruption ----

TEST_F(TokenStoreTest, WriterDestroyedWithoutFinishLeavesNothing) {
  const std::string dir = tmp_ / "store";
  {
    TokenStoreWriter w(dir, 300);
    w.add_document(std::vector<int32_t>{1, 5, 2});
    EXPECT_TRUE(fs::is_directory(w.partial_dir()));
    EXPECT_ERROR_HAS(TokenStore::open(w.partial_dir()), "partial token store");
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(partial_dir_for(dir, getpid())));
  EXPECT_ERROR_HAS(TokenStore::open(dir), "does not exist");
}

TEST_F(TokenStoreTest, CrashLeavesOnlyAPartialFolderThatIsNeverOpenedAndLaterRemoved) {
  const std::string dir = tmp_ / "store";
  const pid_t child = fork();
  if (child == 0) {  // a prepare killed mid-way: no destructors, no finish()
    TokenStoreWriter w(dir, 300);
    w.add_document(std::vector<int32_t>{1, 5, 2});
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  const std::string partial = partial_dir_for(dir, child);
  ASSERT_TRUE(fs::is_directory(partial));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_ERROR_HAS(TokenStore::open(dir), "is an unfinished or interrupted prepare");
  EXPECT_ERROR_HAS(TokenStore::open(partial), "partial token store");
  write_file(partial + "/COMPLETE", "even a partial folder with COMPLETE is refused\n");
  EXPECT_ERROR_HAS(TokenStore::open(partial), "partial token store");

  // The next prepare removes it (its process is gone) and writes the store.
  write_file(tmp_ / "a.jsonl", jsonl_of(corpus(2)));
  prepare_corpus(options({tmp_ / "a.jsonl"}, dir));
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(TokenStore::open(dir).num_documents(), 2u);
}

TEST_F(TokenStoreTest, StalePartialCleanupSparesLiveAndForeignRuns) {
  const std::string dir = tmp_ / "store";
  const std::string live = partial_dir_for(dir, getpid()), foreign = partial_dir_for(dir, dead_pid()),
                    dead = partial_dir_for(dir, dead_pid()), other = tmp_ / "otherstore.partial-1";
  for (const auto& p : {live, foreign, dead, other}) fs::create_directories(p);
  write_file(foreign + "/OWNER", "some-other-host 1\n");
  EXPECT_EQ(remove_stale_partials(dir), 1);
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(foreign));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(other));
}

// ---- overwrite rules ----

TEST_F(TokenStoreTest, OverwriteRules) {
  const std::string dir = make_store("store", corpus(2));
  EXPECT_ERROR_HAS(make_store("store", corpus(3)), "already exists; pass --overwrite");
  EXPECT_EQ(TokenStore::open(dir).num_documents(), 2u);

  PrepareOptions o = options({tmp_ / "store.jsonl"}, dir);
  o.overwrite = true;
  prepare_corpus(o);
  EXPECT_EQ(TokenStore::open(dir).num_documents(), 3u);
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp_.path), fs::directory_iterator()), 2);  // store + store.jsonl

  fs::create_directories(tmp_ / "notes");
  write_file(tmp_ / "notes/keep.txt", "mine");
  o.output_dir = tmp_ / "notes";
  EXPECT_ERROR_HAS(prepare_corpus(o), "is not a ropex token store; refusing to replace it");
  EXPECT_EQ(read_file(tmp_ / "notes/keep.txt"), "mine");

  fs::create_directories(tmp_ / "odd");  // a COMPLETE file but a meta.json that is no store's
  write_file(tmp_ / "odd/COMPLETE", "");
  write_file(tmp_ / "odd/meta.json", "{\"format\": 5}");
  o.output_dir = tmp_ / "odd";
  EXPECT_ERROR_HAS(prepare_corpus(o), "is not a ropex token store");

  fs::create_directories(tmp_ / "empty");
  o.output_dir = tmp_ / "empty/";
  prepare_corpus(o);
  EXPECT_EQ(TokenStore::open(tmp_ / "empty").num_documents(), 3u);
}

// ---- corrupted stores ----

class CorruptStoreTest : public TokenStoreTest {
 protected:
  void SetUp() override {
    good_ = make_store("good", corpus(4));
    n_docs_ = 4;
    n_tokens_ = TokenStore::open(good_).num_tokens();
  }
  // A copy of the good store, changed by `edit`, named `name`.
  std::string corrupt(const std::string& name, const std::function<void(const std::string&)>& edit) {
    const std::string dir = tmp_ / name;
    fs::copy(good_, dir);
    edit(dir);
    return dir;
  }
  void write_index(const std::string& dir, std::vector<uint64_t> offsets) {
    write_file(dir + "/index.bin", std::string(reinterpret_cast<const char*>(offsets.data()), offsets.size() * 8));
  }
  void edit_meta(const std::string& dir, const std::function<void(json&)>& edit) {
    json meta = json::parse(read_file(dir + "/meta.json"));
    edit(meta);
    write_file(dir + "/meta.json", meta.dump());
  }
  std::string good_;
  uint64_t n_docs_ = 0;
  int64_t n_tokens_ = 0;
};

TEST_F(CorruptStoreTest, TruncatedTokens) {
  const auto dir = corrupt("t", [](const std::string& d) { fs::resize_file(d + "/tokens.bin", fs::file_size(d + "/tokens.bin") - 2); });
  EXPECT_ERROR_HAS(TokenStore::open(dir), dir + "/tokens.bin': " + std::to_string(2 * n_tokens_ - 2) + " bytes, expected " +
                                              std::to_string(2 * n_tokens_));
}

TEST_F(CorruptStoreTest, BadIndex) {
  const auto t = static_cast<uint64_t>(n_tokens_);
  const auto short_index = corrupt("i1", [&](const std::string& d) { write_index(d, {0, 1, 2, t}); });
  EXPECT_ERROR_HAS(TokenStore::open(short_index), "index.bin': 32 bytes, expected 40");
  const auto decreasing = corrupt("i2", [&](const std::string& d) { write_index(d, {0, 5, 3, 8, t}); });
  EXPECT_ERROR_HAS(TokenStore::open(decreasing), "index.bin': offset[2] = 3 is less than offset[1] = 5");
  const auto wrong_end = corrupt("i3", [&](const std::string& d) { write_index(d, {0, 1, 2, 3, t - 1}); });
  EXPECT_ERROR_HAS(TokenStore::open(wrong_end), "index.bin': last offset is " + std::to_string(t - 1));
  const auto bad_start = corrupt("i4", [&](const std::string& d) { write_index(d, {1, 2, 3, 4, t}); });
  EXPECT_ERROR_HAS(TokenStore::open(bad_start), "index.bin': offset[0] is 1, expected 0");
}

TEST_F(CorruptStoreTest, MissingComplete) {
  const auto dir = corrupt("c", [](const std::string& d) { fs::remove(d + "/COMPLETE"); });
  EXPECT_ERROR_HAS(TokenStore::open(dir), dir + "/COMPLETE' is missing");
}

TEST_F(CorruptStoreTest, BadMeta) {
  const auto not_json = corrupt("m1", [](const std::string& d) { write_file(d + "/meta.json", "{\"format\": "); });
  EXPECT_ERROR_HAS(TokenStore::open(not_json), "m1/meta.json': not valid JSON");
  const auto format = corrupt("m2", [&](const std::string& d) { edit_meta(d, [](json& m) { m["format"] = "npy"; }); });
  EXPECT_ERROR_HAS(TokenStore::open(format), "m2/meta.json': key 'format' is \"npy\"");
  const auto version = corrupt("m3", [&](const std::string& d) { edit_meta(d, [](json& m) { m["version"] = 2; }); });
  EXPECT_ERROR_HAS(TokenStore::open(version), "m3/meta.json': version 2 is not supported");
  const auto missing = corrupt("m4", [&](const std::string& d) { edit_meta(d, [](json& m) { m.erase("num_tokens"); }); });
  EXPECT_ERROR_HAS(TokenStore::open(missing), "m4/meta.json': missing key 'num_tokens'");
  const auto wrong_type = corrupt("m5", [&](const std::string& d) { edit_meta(d, [](json& m) { m["num_documents"] = "4"; }); });
  EXPECT_ERROR_HAS(TokenStore::open(wrong_type), "m5/meta.json': key 'num_documents' must be an integer");
  const auto width = corrupt("m6", [&](const std::string& d) { edit_meta(d, [](json& m) { m["token_bytes"] = 4; }); });
  EXPECT_ERROR_HAS(TokenStore::open(width), "m6/meta.json': token_bytes 4 does not match vocab_size 300");
  const auto count = corrupt("m7", [&](const std::string& d) { edit_meta(d, [](json& m) { m["num_tokens"] = 3; }); });
  EXPECT_ERROR_HAS(TokenStore::open(count), "m7/tokens.bin'");
  const auto array = corrupt("m8", [](const std::string& d) { write_file(d + "/meta.json", "[]"); });
  EXPECT_ERROR_HAS(TokenStore::open(array), "m8/meta.json': expected a JSON object");
}

TEST_F(CorruptStoreTest, OutOfVocabularyIdsAreFoundByVerify) {
  const auto dir = corrupt("v", [](const std::string& d) {
    std::fstream f(d + "/tokens.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(6);
    const char big[2] = {'\xff', '\x7f'};  // 32767 >= vocab 300
    f.write(big, 2);
  });
  const TokenStore store = TokenStore::open(dir);  // open does not scan every token
  EXPECT_ERROR_HAS(store.verify_tokens(), "tokens.bin': token 3 (document 0) has id 32767 outside [0, 300)");
}

// ---- statistics ----

TEST(PrepareStatsTest, KnownLengths) {
  const PrepareStats s = summarize_lengths({600, 3, 1, 5000, 2, 100, 4, 70000}, {3000, 512});
  EXPECT_EQ(s.documents, 8);
  EXPECT_EQ(s.tokens, 75710);
  EXPECT_EQ(s.min_len, 1);
  EXPECT_EQ(s.max_len, 70000);
  EXPECT_DOUBLE_EQ(s.mean_len, 75710.0 / 8);
  EXPECT_DOUBLE_EQ(s.median_len, (4 + 100) / 2.0);
  // Buckets [1,2) [2,4) [4,8) ... [65536,131072).
  ASSERT_EQ(s.histogram.size(), 17u);
  EXPECT_EQ(s.histogram[0], (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(s.histogram[1], (std::pair<int64_t, int64_t>{2, 2}));
  EXPECT_EQ(s.histogram[2], (std::pair<int64_t, int64_t>{4, 1}));
  EXPECT_EQ(s.histogram[6], (std::pair<int64_t, int64_t>{64, 1}));
  EXPECT_EQ(s.histogram[9], (std::pair<int64_t, int64_t>{512, 1}));
  EXPECT_EQ(s.histogram[12], (std::pair<int64_t, int64_t>{4096, 1}));
  EXPECT_EQ(s.histogram[16], (std::pair<int64_t, int64_t>{65536, 1}));
  int64_t total = 0;
  for (const auto& [lo, count] : s.histogram) total += count;
  EXPECT_EQ(total, 8);
  const std::map<int64_t, int64_t> windows = {{512, 3},  {1024, 2},  {2048, 2},  {3000, 2},  {4096, 2},
                                              {8192, 1}, {16384, 1}, {32768, 1}, {65536, 1}};
  EXPECT_EQ(s.docs_at_least, windows);
  const json j = s.to_json();
  EXPECT_EQ(j["docs_at_least"]["3000"], 2);
  EXPECT_EQ(j["histogram"][9], (json{{"lo", 512}, {"hi", 1024}, {"count", 1}}));
  EXPECT_EQ(j["length"]["median"], 52.0);
  const std::string table = s.table();
  EXPECT_NE(table.find("75,710"), std::string::npos) << table;
  EXPECT_NE(table.find("[65,536, 131,072)"), std::string::npos) << table;
}

TEST(PrepareStatsTest, OddCountMedianAndEmpty) {
  EXPECT_DOUBLE_EQ(summarize_lengths({9, 1, 5}, {}).median_len, 5.0);
  const PrepareStats none = summarize_lengths({}, {});
  EXPECT_EQ(none.documents, 0);
  EXPECT_TRUE(none.histogram.empty());
  EXPECT_EQ(none.docs_at_least.at(512), 0);
}

TEST_F(TokenStoreTest, PreparedStatsAgreeWithTheStore) {
  const TokenStore store = TokenStore::open(make_store("s", corpus(60)));
  const json stats = json::parse(read_file(store.dir() + "/stats.json"));
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < store.num_documents(); ++i) lengths.push_back(store.doc_len(i));
  EXPECT_EQ(stats, summarize_lengths(lengths, {}).to_json());
  EXPECT_EQ(stats["documents"], 60);
  EXPECT_EQ(stats["tokens"], store.num_tokens());
  EXPECT_EQ(stats["length"]["max"], *std::max_element(lengths.begin(), lengths.end()));
  EXPECT_GT(stats["docs_at_least"]["512"].get<int64_t>(), 0);  // the corpus has long documents
  for (const auto& [window, count] : stats["docs_at_least"].items()) {
    EXPECT_EQ(count.get<size_t>(), store.docs_at_least(std::stoll(window))) << window;
  }
}

// ---- command line ----

TEST_F(TokenStoreTest, CommandLine) {
  write_file(tmp_ / "a.jsonl", "{\"body\": \"Zoë builds.\"}\n");
  write_file(tmp_ / "b.txt", "One.\n\nTwo.\n");
  const std::vector<std::string> base = {"--tokenizer", *model_, "--input", tmp_ / "a.jsonl", "--input", tmp_ / "b.txt",
                                         "--output", tmp_ / "store"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  testing::internal::CaptureStdout();
  const int rc = cmd_prepare(with({"--text-field", "body", "--txt-split", "blank_line", "--no-eos", "--threads", "2",
                                   "--windows", "3,5", "--on-error", "fail"}));
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("documents at least as long as a window"), std::string::npos) << out;
  const TokenStore store = TokenStore::open(tmp_ / "store");
  const Tokenizer tok = tokenizer();
  ASSERT_EQ(store.num_documents(), 3u);
  expect_document(store, 0, tok.encode("Zoë builds.", true, false));
  expect_document(store, 2, tok.encode("Two.", true, false));
  EXPECT_TRUE(store.meta()["stats"]["docs_at_least"].contains("5"));

  EXPECT_THROW(cmd_prepare(with({"--on-error", "ignore"})), UsageError);
  EXPECT_THROW(cmd_prepare(with({"--txt-split", "lines"})), UsageError);
  EXPECT_THROW(cmd_prepare(with({"--windows", "4096,x"})), UsageError);
  EXPECT_THROW(cmd_prepare(with({"--threads", "-1"})), UsageError);
  EXPECT_THROW(cmd_prepare({"--tokenizer", *model_, "--output", tmp_ / "x"}), UsageError);  // no --input
  EXPECT_THROW(cmd_prepare({"--help"}), HelpRequested);
  EXPECT_ERROR_HAS(cmd_prepare(with({})), "already exists; pass --overwrite");
  testing::internal::CaptureStdout();
  EXPECT_EQ(cmd_prepare(with({"--overwrite", "--text-field", "body"})), 0);
  testing::internal::GetCapturedStdout();
  EXPECT_EQ(TokenStore::open(tmp_ / "store").num_documents(), 2u);
}
