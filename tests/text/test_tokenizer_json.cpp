// TokenizerJson against the `tokenizers` library: tests/text/make_tokenizers.py trains a tokenizer of
// each style (Llama-3, Qwen2, GPT-2, Llama-2 / Mistral v0.1, Mistral v0.3, Metaspace, legacy merges),
// writes the real files' structure and the library's ids and decodes for a held-out multilingual text
// and tricky strings; every id and every decoded string must be equal. Plus the load errors for
// unsupported components and malformed files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cstring>
#include <iterator>
#include <random>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizers/tokenizer_json.h"

namespace fs = std::filesystem;
using ropex::TokenizerJson;

namespace {

const fs::path& out_dir() {
  static const fs::path dir = fs::path(ROPEX_TEST_TMP_DIR) / "tokenizer_json";
  return dir;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the Python script once per process, or reuses its output when another process (ctest runs
// each test in its own) already made it from the same script: a stamp holds a hash of the script
// and the interpreter's path, and a lock keeps parallel processes from writing at the same time.
const nlohmann::json& expected() {
  static const nlohmann::json data = []() -> nlohmann::json {
    std::string python = ROPEX_TEST_PYTHON;
    if (python.empty() || !fs::exists(python)) {
      ADD_FAILURE() << "ROPEX_TEST_PYTHON ('" << python << "') is missing: configure with -DROPEX_PYTHON=.venv/bin/python";
      return nlohmann::json::object();
    }
    fs::path script = fs::path(ROPEX_SOURCE_DIR) / "tests/text/make_tokenizers.py";
    std::string stamp = std::to_string(std::hash<std::string>{}(read_all(script) + "\n" + python));
    fs::create_directories(out_dir().parent_path());
    int lock = ::open((out_dir().string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    bool fresh = read_all(out_dir() / "stamp") == stamp && fs::exists(out_dir() / "expected.json");
    int rc = 0;
    std::string cmd = "'" + python + "' '" + script.string() + "' '" + out_dir().string() + "'";
    if (!fresh) {
      fs::remove_all(out_dir());
      fs::create_directories(out_dir());
      rc = std::system(cmd.c_str());
      if (rc == 0) std::ofstream(out_dir() / "stamp") << stamp;
    }
    if (lock >= 0) ::close(lock);  // releases the lock
    if (rc != 0) {
      ADD_FAILURE() << "make_tokenizers.py failed (" << rc << "): " << cmd;
      return nlohmann::json::object();
    }
    return nlohmann::json::parse(read_all(out_dir() / "expected.json"));
  }();
  return data;
}

std::string show(const std::string& s, size_t max = 120) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else out += static_cast<char>(c);
  }
  return s.size() > max ? out + "...(" + std::to_string(s.size()) + " bytes)" : out;
}

std::string show_ids(const std::vector<int32_t>& ids, size_t from) {
  std::string out;
  for (size_t i = from; i < ids.size() && i < from + 12; ++i) out += std::to_string(ids[i]) + " ";
  return out;
}

size_t first_difference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

class StyleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StyleTest, IdsAndDecodeEqualTheTokenizersLibrary) {
  const auto& all = expected();
  ASSERT_TRUE(all.contains(GetParam())) << "no expectations for " << GetParam();
  const auto& style = all[GetParam()];
  TokenizerJson tok = TokenizerJson::load(style["file"].get<std::string>());
  EXPECT_EQ(tok.vocab_size(), style["vocab_size"].get<int>());
  int failures = 0;
  size_t cases = 0, tokens = 0;
  for (const auto& c : style["cases"]) {
    const std::string text = c["text"].get<std::string>();
    auto want = c["ids"].get<std::vector<int32_t>>();
    auto want_special = c["ids_special"].get<std::vector<int32_t>>();
    auto got = tok.encode(text, false);
    auto got_special = tok.encode(text, true);
    ++cases;
    tokens += got.size();
    if (got != want && failures++ < 5) {
      size_t d = first_difference(got, want);
      ADD_FAILURE() << GetParam() << ": ids differ for '" << show(text) << "' at token " << d << ": ours "
                    << show_ids(got, d) << " theirs " << show_ids(want, d);
    }
    if (got_special != want_special && failures++ < 5) {
      size_t d = first_difference(got_special, want_special);
      ADD_FAILURE() << GetParam() << ": ids with special tokens differ for '" << show(text) << "' at token " << d;
    }
    std::string dec = tok.decode(want_special, false), dec_skip = tok.decode(want_special, true);
    if (dec != c["decode"].get<std::string>() && failures++ < 5) {
      ADD_FAILURE() << GetParam() << ": decode differs for '" << show(text) << "': ours '" << show(dec) << "' theirs '"
                    << show(c["decode"].get<std::string>()) << "'";
    }
    if (dec_skip != c["decode_skip"].get<std::string>() && failures++ < 5) {
      ADD_FAILURE() << GetParam() << ": decode(skip_special_tokens) differs for '" << show(text) << "': ours '"
                    << show(dec_skip) << "' theirs '" << show(c["decode_skip"].get<std::string>()) << "'";
    }
  }
  for (const auto& d : style["decodes"]) {
    auto ids = d["ids"].get<std::vector<int32_t>>();
    std::string dec = tok.decode(ids, false), dec_skip = tok.decode(ids, true);
    if (dec != d["decode"].get<std::string>() && failures++ < 8) {
      ADD_FAILURE() << GetParam() << ": decode of random ids " << show_ids(ids, 0) << "differs: ours '" << show(dec)
                    << "' theirs '" << show(d["decode"].get<std::string>()) << "'";
    }
    if (dec_skip != d["decode_skip"].get<std::string>() && failures++ < 8) {
      ADD_FAILURE() << GetParam() << ": decode(skip) of random ids " << show_ids(ids, 0) << "differs";
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(cases, 100u);
  EXPECT_GT(tokens, 10000u);

  // Time of one encode of the held-out text (the last case), printed for the record, not asserted.
  const std::string big = style["cases"].back()["text"].get<std::string>();
  auto t0 = std::chrono::steady_clock::now();
  auto ids = tok.encode(big, false);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timing ] %s: %zu bytes -> %zu ids in %.1f ms\n", GetParam().c_str(), big.size(), ids.size(), s * 1e3);
}

INSTANTIATE_TEST_SUITE_P(Styles, StyleTest,
                         ::testing::Values("llama3", "qwen2", "gpt2", "gpt2_prefix_space", "legacy_merges", "llama2",
                                           "mistral3", "metaspace", "c_nfkc_lower", "c_nfd_strip_accents",
                                           "c_nfkd_next", "c_invert_whitespace", "c_whitespace_split",
                                           "c_unk_nofuse", "c_unk_fuse", "c_affixes"),
                         [](const auto& info) { return info.param; });

// --- load errors -----------------------------------------------------------------------------------

nlohmann::json read_style(const std::string& name) {
  expected();  // makes the files
  return nlohmann::json::parse(read_all(out_dir() / (name + ".json")));
}

std::string write_file(const std::string& name, const std::string& text) {
  fs::path p = out_dir() / "bad" / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.string();
}

// The message of the error loading `j`, which must name the file and contain every one of `parts`.
void expect_load_error(const std::string& name, const nlohmann::json& j, const std::vector<std::string>& parts) {
  std::string path = write_file(name, j.dump());
  try {
    TokenizerJson::load(path);
    ADD_FAILURE() << name << ": loaded without error";
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(TokenizerJsonErrors, UnsupportedComponentsNameFileAndKey) {
  auto j = read_style("qwen2");
  auto bad = j;
  bad["normalizer"] = {{"type", "BertNormalizer"}};
  expect_load_error("bert_normalizer.json", bad, {"key 'normalizer.type'", "'BertNormalizer' is not supported", "NFC"});
  bad = j;
  bad["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Punctuation"}};
  expect_load_error("punct.json", bad, {"key 'pre_tokenizer.pretokenizers[1].type'", "'Punctuation'"});
  bad = j;
  bad["decoder"] = {{"type", "WordPiece"}};
  expect_load_error("wordpiece_decoder.json", bad, {"key 'decoder.type'", "'WordPiece'"});
  bad = j;
  bad["model"]["type"] = "Unigram";
  expect_load_error("unigram.json", bad, {"key 'model.type'", "'Unigram'"});
  bad = j;
  bad["model"]["dropout"] = 0.1;
  expect_load_error("dropout.json", bad, {"key 'model.dropout'"});
  bad = j;
  bad["post_processor"] = {{"type", "Foo"}};
  expect_load_error("post.json", bad, {"key 'post_processor.type'", "'Foo'"});
  bad = j;
  bad["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  expect_load_error("behavior.json", bad, {"key 'pre_tokenizer.pretokenizers[0].behavior'", "'Sideways'"});
  bad = j;
  bad["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_load_error("regex.json", bad, {"key 'pre_tokenizer.pretokenizers[0].pattern'", "invalid regular expression"});
  bad = j;
  bad["truncation"] = {{"max_length", 10}};
  expect_load_error("truncation.json", bad, {"key 'truncation'"});
}

TEST(TokenizerJsonErrors, MalformedFilesNameFileAndKey) {
  auto j = read_style("gpt2");
  auto bad = j;
  bad["model"]["merges"][3] = nlohmann::json::array({"Ġ", "no-such-token-xyz"});
  expect_load_error("merge_oov.json", bad, {"key 'model.merges[3]'", "no-such-token-xyz"});
  bad = j;
  bad["model"]["merges"][0] = "a b c";
  expect_load_error("merge_string.json", bad, {"key 'model.merges[0]'"});
  bad = j;
  bad["model"]["vocab"]["Ġthe"] = "seven";
  expect_load_error("vocab_type.json", bad, {"key 'model.vocab.Ġthe'", "expected an integer"});
  bad = j;
  bad["model"].erase("vocab");
  expect_load_error("no_vocab.json", bad, {"key 'model.vocab'", "missing"});
  bad = j;
  bad["added_tokens"][0].erase("id");
  expect_load_error("added_no_id.json", bad, {"key 'added_tokens[0].id'"});
  bad = j;
  bad["post_processor"] = read_style("llama3")["post_processor"];
  bad["post_processor"]["processors"][1]["special_tokens"] = nlohmann::json::object();
  expect_load_error("template.json", bad, {"key 'post_processor.processors[1].special_tokens'", "<|begin_of_text|>"});

  std::string not_json = write_file("not_json.json", "{\"model\": [1, 2");
  try {
    TokenizerJson::load(not_json);
    ADD_FAILURE() << "loaded invalid JSON";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(not_json), std::string::npos) << e.what();
  }
  try {
    TokenizerJson::load((out_dir() / "does_not_exist.json").string());
    ADD_FAILURE() << "loaded a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does_not_exist.json"), std::string::npos) << e.what();
  }
}

TEST(TokenizerJsonApi, LookupsDecodeErrorsAndInvalidUtf8) {
  expected();
  TokenizerJson tok = TokenizerJson::load((out_dir() / "llama3.json").string());
  auto bos = tok.token_to_id("<|begin_of_text|>");
  ASSERT_TRUE(bos.has_value());
  EXPECT_TRUE(tok.is_special(*bos));
  EXPECT_EQ(tok.special_prefix(), std::vector<int32_t>{*bos});
  EXPECT_TRUE(tok.special_suffix().empty());
  EXPECT_EQ(tok.id_to_token(*bos).value(), "<|begin_of_text|>");
  EXPECT_FALSE(tok.id_to_token(tok.vocab_size()).has_value());
  EXPECT_THROW(tok.decode({tok.vocab_size() + 5}, false), std::runtime_error);
  // Invalid UTF-8 is encoded as if each maximal invalid sequence were U+FFFD (documented in the header).
  EXPECT_EQ(tok.encode("a\xff" "b\xe2\x82", false), tok.encode("a\xEF\xBF\xBD" "b\xEF\xBF\xBD", false));
  TokenizerJson qwen = TokenizerJson::load((out_dir() / "qwen2.json").string());
  EXPECT_TRUE(qwen.special_prefix().empty());
  EXPECT_TRUE(qwen.special_suffix().empty());
}

// Random bytes (mostly invalid UTF-8, with pieces of special tokens and "▁") through every style:
// no crash, ids inside the vocabulary, and decode accepts them.
TEST(TokenizerJsonApi, RandomBytesEncodeAndDecode) {
  const auto& all = expected();
  std::mt19937_64 rng(7);
  const std::vector<std::string> bits = {"<|endoftext|>", "<s>", "\xE2\x96\x81", "<mask>", "[FOO]", " ", "\r\n", "\xF0\x9F"};
  for (auto it = all.begin(); it != all.end(); ++it) {
    TokenizerJson tok = TokenizerJson::load(it.value()["file"].get<std::string>());
    for (int round = 0; round < 200; ++round) {
      std::string text;
      size_t n = rng() % 64;
      for (size_t i = 0; i < n; ++i) {
        if (rng() % 5 == 0) text += bits[rng() % bits.size()];
        else text += static_cast<char>(rng() % 256);
      }
      auto ids = tok.encode(text, true);
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size()) << it.key() << ": id " << id;
      EXPECT_NO_THROW(tok.decode(ids, false)) << it.key();
      EXPECT_NO_THROW(tok.decode(ids, true)) << it.key();
    }
  }
}

TEST(TokenizerJsonApi, ConcurrentEncodesAgreeWithTheLibrary) {
  const auto& style = expected()["llama3"];
  TokenizerJson tok = TokenizerJson::load(style["file"].get<std::string>());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < style["cases"].size(); i += 4) {
        const auto& c = style["cases"][i];
        if (tok.encode(c["text"].get<std::string>(), false) != c["ids"].get<std::vector<int32_t>>()) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace

namespace {

// Timing against the `tokenizers` library, run by hand:
//   RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false .venv/bin/python tests/text/make_tokenizers.py DIR --bench-bytes 8000000
//   ROPEX_TOKENIZER_BENCH_DIR=DIR build/ropex_text_tests --gtest_also_run_disabled_tests --gtest_filter='*Bench*'
// Prints times; asserts only that the ids are produced.
TEST(TokenizerJsonBench, DISABLED_EncodeLargeText) {
  const char* dir = std::getenv("ROPEX_TOKENIZER_BENCH_DIR");
  ASSERT_NE(dir, nullptr) << "set ROPEX_TOKENIZER_BENCH_DIR to make_tokenizers.py's --bench-bytes output";
  std::ifstream in(fs::path(dir) / "bench.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  ASSERT_FALSE(text.empty());
  for (const char* name : {"llama3", "qwen2", "gpt2", "llama2", "mistral3"}) {
    TokenizerJson tok = TokenizerJson::load((fs::path(dir) / (std::string(name) + ".json")).string());
    double best = 1e9;
    size_t n = 0;
    for (int rep = 0; rep < 3; ++rep) {
      // A fresh tokenizer each time would also time loading; the first repetition runs with a cold cache.
      auto t0 = std::chrono::steady_clock::now();
      n = tok.encode(text, false).size();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (rep == 0) std::printf("ropex %s (cold cache): %.0f ms\n", name, best * 1e3);
    }
    std::printf("ropex %s: %zu bytes -> %zu ids in %.0f ms\n", name, text.size(), n, best * 1e3);
    {
      // The same text as documents of 2000 characters (as the Python side cuts it), one encode each.
      std::vector<std::string> docs;
      size_t start = 0, chars = 0;
      for (size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
          if (chars == 2000 || i == text.size()) {
            docs.push_back(text.substr(start, i - start));
            start = i;
            chars = 0;
          }
          ++chars;
        }
      }
      TokenizerJson fresh = TokenizerJson::load((fs::path(dir) / (std::string(name) + ".json")).string());
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& d : docs) fresh.encode(d, false);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("ropex %s: %zu documents in %.0f ms\n", name, docs.size(), s * 1e3);
    }
    EXPECT_GT(n, 0u);
    // The library's ids for the same text (int32, native byte order), written beside it.
    std::ifstream ids_in(fs::path(dir) / (std::string(name) + ".bench_ids"), std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(ids_in)), std::istreambuf_iterator<char>());
    std::vector<int32_t> want(raw.size() / sizeof(int32_t));
    std::memcpy(want.data(), raw.data(), want.size() * sizeof(int32_t));
    EXPECT_TRUE(tok.encode(text, false) == want) << name << ": ids differ from the library's on bench.txt";
  }
}

}  // namespace
