// tokenizer.json's `model` of type BPE: the vocabulary, the ranked merges, and the encoding of one
// pre-token into ids as the `tokenizers` library does it.
//
// A pre-token starts as its characters (with continuing_subword_prefix / end_of_word_suffix when
// set); a character missing from the vocabulary becomes its <0xXX> byte tokens (byte_fallback) or
// unk_token (runs fused with fuse_unk) or is dropped when there is neither; then the adjacent pair
// of lowest rank (leftmost on ties) is merged until none applies. ignore_merges emits a pre-token
// found whole in the vocabulary as that id. Merges are read as pairs (["a","b"]) or as "a b"
// strings. dropout other than null/0 is refused (it makes encoding random), as is any other model
// type. Results are cached per pre-token (thread-safe, bounded).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizers/json_access.h"

namespace ropex::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class Bpe {
 public:
  // Reads the `model` object `j`; throws naming `at` and the key for anything unsupported.
  Bpe(const nlohmann::json& j, const JsonPlace& at);
  ~Bpe();

  // Appends the ids of one pre-token.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr for an id not in the vocabulary.
  const std::string* id_to_token(int32_t id) const;
  // One more than the largest id.
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct MergeInfo {
    int32_t rank;
    int32_t new_id;
  };
  void merge_word(std::string_view piece, std::vector<int32_t>& out) const;
  int32_t char_id(std::string_view ch) const;

  std::string file_;
  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::vector<int32_t> bmp_ids_;       // id of each single code point below U+10000, -1 when none
  int32_t byte_ids_[256];              // id of <0xXX>, -1 when missing
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::optional<std::string> unk_token_;
  std::string prefix_, suffix_;        // continuing_subword_prefix, end_of_word_suffix

  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace ropex::tok
