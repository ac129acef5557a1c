// The special tokens a Hugging Face tokenizer directory names in tokenizer_config.json (bos_token,
// eos_token, pad_token, unk_token, each a string or an {"content": ...} object), and the files that
// travel with a tokenizer when ropex copies it into a checkpoint or an export.
//
// tokenizer.json itself does not say which added token ends a text: transformers takes that from
// tokenizer_config.json, and so does ropex. This file does not read tokenizer.json
// (tokenizer_json.h) and does not decide what a model directory's tokenizer is (data/tokenizer.h).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ropex {

struct HfSpecialTokens {
  std::optional<std::string> bos, eos, pad, unk;  // the tokens' text; unset when not named (or null)
  std::string source;                             // the tokenizer_config.json read, "" when none
};

// Reads DIR/tokenizer_config.json when it exists (nothing set when it does not). Throws
// std::runtime_error naming the file and key when it is not JSON or a token is neither a string,
// null nor an object with a string "content".
HfSpecialTokens read_special_tokens(const std::filesystem::path& dir);

// The files beside `tokenizer_file` that belong with it in a Hugging Face directory
// (tokenizer_config.json, special_tokens_map.json), those that exist, after the file itself.
std::vector<std::filesystem::path> tokenizer_files(const std::filesystem::path& tokenizer_file);

}  // namespace ropex
