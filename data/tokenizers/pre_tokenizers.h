// tokenizer.json's `pre_tokenizer`: cuts normalized text into the pieces the model encodes one by
// one, and rewrites them (ByteLevel's byte-to-character map, Metaspace's "▁").
//
// Implemented: Split (String or Regex pattern, every behavior, invert), ByteLevel, Metaspace,
// Whitespace, WhitespaceSplit, Digits, Sequence. Others (BertPreTokenizer, Punctuation,
// CharDelimiterSplit, UnicodeScripts) are refused at load naming the file and key. Regexes run in
// Oniguruma as in the `tokenizers` library; Whitespace, which the library runs with Rust's regex
// crate, is a scan over the same character classes. Pieces carry no offsets, only whether they begin the
// input (what Metaspace's prepend_scheme "first" asks).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizers/json_access.h"

namespace ropex::tok {

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original input
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their sub-pieces; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const JsonPlace& at);

}  // namespace ropex::tok
