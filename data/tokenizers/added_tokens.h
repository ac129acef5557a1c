// tokenizer.json's `added_tokens`: tokens found in the input before anything else runs, each becoming
// its id directly.
//
// Matching is leftmost-longest over the token contents (as the `tokenizers` library's Aho-Corasick
// search): tokens with normalized=false are looked for in the raw input, tokens with normalized=true
// in each normalized stretch between those (their contents normalized first). lstrip / rstrip make
// a token absorb the whitespace before / after it; single_word accepts a match only when no word
// character touches it. This file does not normalize or encode the stretches between tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizers/json_access.h"

namespace ropex::tok {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// Reads the `added_tokens` list.
std::vector<AddedToken> read_added_tokens(const nlohmann::json& j, const JsonPlace& at);

// A set of token contents searched leftmost-longest.
class TokenMatcher {
 public:
  // `patterns[i]` stands for tokens[i] (what is searched may differ from the content when normalized).
  void build(const std::vector<std::string>& patterns, const std::vector<const AddedToken*>& tokens);
  bool empty() const { return tokens_.empty(); }

  // A stretch of text (token == nullptr) or an added token.
  struct Part {
    const AddedToken* token;
    size_t begin, end;
  };
  // Cuts `text` into parts as tokenizers' AddedVocabulary::find_matches does.
  void split(std::string_view text, std::vector<Part>& out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token = -1;  // index into tokens_ of the pattern ending here
  };
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace ropex::tok
