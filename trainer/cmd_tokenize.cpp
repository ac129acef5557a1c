// ropex tokenize: a text's ids under a tokenizer (tokenizer.json or SentencePiece .model), or with
// --decode the text of ids: for users checking a tokenizer, and for the tests that compare ropex's
// ids with the `tokenizers` library's. Parse, call data/tokenizer.h, print.
#include "data/input/files.h"
#include "data/input/json.h"
#include "data/tokenizer.h"
#include "trainer/cli.h"
#include "trainer/commands.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <limits>

namespace ropex {
namespace {

// "1 2 3", "[1, 2, 3]" or {"ids": [1, 2, 3]}: the ids to decode, each an int32.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& source) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<int32_t> ids;
  auto take = [&](const nlohmann::json& v) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max())
      throw UsageError("tokenize --decode: " + source + ": expected token ids (integers >= 0), got " + input::json_excerpt(v));
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  };
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    nlohmann::json j = input::parse_json(text, source);
    if (j.is_object()) {
      if (!j.contains("ids") || j.size() != 1) throw UsageError("tokenize --decode: " + source + ": expected {\"ids\": [...]}");
      j = j["ids"];
    }
    if (!j.is_array()) throw UsageError("tokenize --decode: " + source + ": expected a list of ids");
    for (const auto& v : j) take(v);
    return ids;
  }
  size_t i = 0;
  while ((i = text.find_first_not_of(" \t\r\n,", i)) != std::string::npos) {
    const size_t end = text.find_first_of(" \t\r\n,", i);
    const std::string word = text.substr(i, end == std::string::npos ? std::string::npos : end - i);
    nlohmann::json v;
    try {
      v = input::parse_json(word, source);
    } catch (const std::exception&) {
      throw UsageError("tokenize --decode: " + source + ": " + input::json_excerpt(word) + " is not a token id");
    }
    take(v);
    i = end;
  }
  return ids;
}

}  // namespace

int cmd_tokenize(const Args& argv) {
  ArgParser args("tokenize", "Prints the ids of a text under a tokenizer, as the `tokenizers` library's\n"
                             "encode(text, add_special_tokens=False) (--special: True); with --decode, the text of ids\n"
                             "(special tokens left out as decode(ids) does, unless --special).");
  args.option("tokenizer", "PATH", "tokenizer.json, SentencePiece .model, or a model directory (tokenizer.json first)")
      .option("text", "FILE", "read the text (or with --decode the ids) from FILE")
      .option("string", "S", "the text (or with --decode the ids: \"1 2 3\", [1,2,3] or {\"ids\": [...]})")
      .flag("special", "encode: add the tokenizer's special tokens (BOS...); decode: keep special tokens")
      .flag("decode", "ids in, text out")
      .flag("json", "print one JSON object: {\"ids\": [...]} or with --decode {\"text\": ...}")
      .flag("timing", "also print to stderr one JSON line: bytes, ids, load_s, encode_s (bench/tokenizer_speed.py)");
  args.parse(argv);
  if (args.has("text") == args.has("string")) throw UsageError("tokenize: give exactly one of --text FILE and --string S");
  const std::string source = args.has("text") ? args.get("text") : "--string";
  const std::string input = args.has("text")
                                ? input::read_regular_file(args.get("text"), "a UTF-8 text file to tokenize", size_t{1} << 30)
                                : args.get("string");
  const auto now = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
  const double t0 = now();
  const Tokenizer tok = Tokenizer::load(args.get("tokenizer"));
  const double t1 = now();
  const bool special = args.flag_set("special");
  if (args.flag_set("decode")) {
    const std::string text = tok.decode(parse_ids(input, source), /*keep_special=*/special);
    if (args.flag_set("json"))
      std::cout << nlohmann::json{{"text", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    else
      std::cout << text << std::flush;  // as it is: a trailing newline would be one the ids do not hold
    return 0;
  }
  const std::vector<int32_t> ids = special ? tok.encode_with_special_tokens(input) : tok.encode(input, false, false);
  if (args.flag_set("timing"))
    std::cerr << nlohmann::json{{"bytes", input.size()}, {"ids", ids.size()}, {"load_s", t1 - t0}, {"encode_s", now() - t1}}.dump()
              << std::endl;
  if (args.flag_set("json")) {
    std::cout << nlohmann::json{{"ids", ids}}.dump() << std::endl;
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::cout << line << "\n";
  }
  return 0;
}

}  // namespace ropex
