// tokenizer.json's `decoder`: turns the tokens of a list of ids back into text.
//
// Implemented: ByteLevel (reverse byte map, then invalid UTF-8 as U+FFFD per maximal invalid
// subsequence), ByteFallback (<0xXX> runs to bytes; a run that is not valid UTF-8 becomes one
// U+FFFD per byte), Fuse, Replace (String or Regex pattern), Strip, Metaspace, Sequence — each as
// the `tokenizers` library chains them, then the tokens are concatenated. Without a decoder the
// tokens are joined with spaces, as the library does. Others (WordPiece, BPEDecoder, CTC) are
// refused at load naming the file and key.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizers/json_access.h"

namespace ropex::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const JsonPlace& at);

}  // namespace ropex::tok
