// TokenizerJson: a Hugging Face `tokenizer.json` (the `tokenizers` library's file), read and run as
// that library runs it: added tokens, normalizer, pre-tokenizer, BPE model, post-processor, and the
// decoder for decode(). ../shared/spec/tokenizer_json.md lists what the target models use.
//
// It is torch-free and knows nothing of SentencePiece .model files, chat templates, batching or
// tensors (data/tokenizer.h puts this and SentencePiece behind one Tokenizer). A component or
// option it does not implement is refused at load with an error naming the file and the JSON key,
// never run approximately. Every failure is a std::runtime_error naming the file, key or id.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ropex {

class TokenizerJson {
 public:
  // Throws std::runtime_error naming `path` (and the key) when the file is missing, is not JSON, or
  // uses a component or option this reader does not implement.
  static TokenizerJson load(const std::string& path);

  // The ids of tokenizers' `encode(text, add_special_tokens=...)`. With add_special_tokens the
  // post-processor's tokens for a single sequence are added (e.g. Llama-3's <|begin_of_text|>).
  // `text` that is not valid UTF-8 (which cannot reach the Python library) is not refused: each
  // maximal invalid byte sequence is read as U+FFFD, as Python's decode(errors="replace") does.
  // Thread-safe: several threads may encode with one TokenizerJson.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // tokenizers' `decode(ids, skip_special_tokens=...)`. Throws naming an id outside the vocabulary
  // (the library drops such ids silently).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;

  // One more than the largest id of the model's vocabulary and the added tokens.
  int vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // The ids the post-processor puts before and after a single sequence (add_special_tokens=True);
  // empty when it adds none (Qwen2) or there is no post-processor.
  const std::vector<int32_t>& special_prefix() const;
  const std::vector<int32_t>& special_suffix() const;
  // Whether `id` is an added token marked special (skipped by decode(..., true)).
  bool is_special(int32_t id) const;
  const std::string& path() const;

  TokenizerJson(TokenizerJson&&) noexcept;
  TokenizerJson& operator=(TokenizerJson&&) noexcept;
  TokenizerJson(const TokenizerJson&) = delete;
  TokenizerJson& operator=(const TokenizerJson&) = delete;
  ~TokenizerJson();

 private:
  struct Impl;
  explicit TokenizerJson(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropex
