// JSON from files and flags a user hands ropex, parsed so that no input can crash it.
//
// Every JSON document ropex reads (run configs and --set values, config.json, safetensors headers
// and indexes, token store meta.json, corpus records, checkpoint state) goes through parse_json:
//  - nesting deeper than a limit is refused while parsing, so nothing later (copying, comparing,
//    dumping into a message) recurses without bound;
//  - a key repeated in one object is refused (nlohmann would keep the last silently);
//  - every error names the source and says what is wrong in words (a number too large for a double,
//    a syntax error), not as a raw library exception; syntax and number errors add the line and
//    column (source:L:C:) and the key path they were under, depth and duplicate-key errors the key
//    path.
// json_excerpt renders a value for an error message with bounded depth and length; untrusted values
// are never dumped whole into a message.
// This file does not validate what the document means: its callers check keys, types and ranges.
#pragma once

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ropex::input {

// Thrown for a document that is not acceptable JSON; what() is the whole message.
class JsonInputError : public std::runtime_error {
 public:
  JsonInputError(const std::string& what, std::string reason) : std::runtime_error(what), reason_(std::move(reason)) {}
  // The message without the source and position ("invalid JSON: ...", "duplicate key 'a' ..."),
  // for callers that give the place their own way (a corpus line).
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

struct JsonLimits {
  // Our own formats nest at most 4 levels and Hugging Face's config.json / tokenizer.json well under
  // 20; 64 leaves room while keeping any recursion over a parsed value a few KB of stack.
  size_t max_depth = 64;
  bool reject_duplicate_keys = true;
};

// Parses `text`; `source` ("config.json", "--set optim.lr=...") begins every error message.
nlohmann::json parse_json(std::string_view text, const std::string& source, const JsonLimits& limits = {});

// A flag's value (--set key=value): the JSON it parses as, else the text itself as a string; text
// that starts like JSON meant as a number, object or array ("1e400", "[1,2") throws its parse error
// instead of silently becoming a string.
nlohmann::json parse_json_or_text(std::string_view text, const std::string& source);

// Reads a regular file of at most max_bytes (input/files.h) and parses it. `what` describes the file
// for errors ("a Hugging Face config.json").
nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what,
                              size_t max_bytes = size_t{64} << 20, const JsonLimits& limits = {});

// A short rendering of `value` for messages: at most `max_chars` characters (then "..."), nested
// containers beyond two levels shown as {...} / [...].
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 80);

// "L:C", the line and column of byte offset `byte` in `text` (1-based, as editors count).
std::string line_and_column(std::string_view text, size_t byte);

}  // namespace ropex::input
