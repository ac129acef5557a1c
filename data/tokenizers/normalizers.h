// tokenizer.json's `normalizer`: rewrites each stretch of input text between added tokens before it
// is pre-tokenized.
//
// Implemented: NFC, NFD, NFKC, NFKD (utf8proc), Lowercase, StripAccents, Replace (String or Regex
// pattern), Prepend, Strip, ByteLevel, Sequence. Any other type (BertNormalizer, Precompiled, Nmt)
// is refused at load naming the file and key. Only the text is produced, not the alignments to the
// original that the `tokenizers` library tracks for offsets: ropex needs ids, not offsets.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/tokenizers/json_access.h"

namespace ropex::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// The normalizer described by `j` (an object with "type"); `at` names it in errors.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const JsonPlace& at);

// The replacement pattern objects of Replace and Split: {"String": s} (literal) or {"Regex": r}.
// Returns an Oniguruma pattern.
std::string read_pattern(const nlohmann::json& j, const JsonPlace& at);

}  // namespace ropex::tok
