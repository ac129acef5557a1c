// ConfigSchema: strict JSON configuration bound to C++ fields.
//
// Each field is registered once under a dotted key ("optim.lr") with a one-line
// doc; its value at registration is its default. JSON documents (nested by
// section), files and "--set section.key=value" overrides are then applied to
// the bound fields. Unknown keys, wrong types and out-of-range values are
// errors (ConfigError) that name the source, the full key, what was expected
// and what was given. An unknown key gets a "did you mean" suggestion found in
// its own section first (a misspelt section is matched first, then the key in
// it; a registered alias such as "learning_rate" -> "optim.lr" counts when it
// lies in that section), then the same key in another section; an unknown
// value of a string key gets the nearest allowed one only when it is close, or
// a registered hint ("fp16" for a dtype). Numbers must be finite. An apply
// that fails changes nothing.
//
// It does NOT know any particular key (run_config does), validate relations
// between keys, or merge several schemas.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ropex {

// Every k-th item (e.g. decoder layers): false or 0 = none, true or 1 = all, an integer k >= 2 =
// items 0, k, 2k, ... Written back as false / true / k.
struct EveryKth {
  int64_t every = 0;
};
void to_json(nlohmann::json& j, const EveryKth& e);

// A user error in a config document, file or override.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigSchema {
 public:
  // Bind a field. Keys are dot-separated [A-Za-z0-9_] segments; registering a
  // key twice, or a key that is also a section of another key, throws
  // std::logic_error (a programming error, not a user one).
  void add(const std::string& key, bool* field, std::string doc);
  void add(const std::string& key, int64_t* field, std::string doc, std::optional<int64_t> min = {},
           std::optional<int64_t> max = {});
  void add(const std::string& key, double* field, std::string doc, std::optional<double> min = {},
           std::optional<double> max = {});
  // allowed empty = any string.
  void add(const std::string& key, std::string* field, std::string doc,
           std::vector<std::string> allowed = {});
  void add(const std::string& key, std::vector<int64_t>* field, std::string doc);
  void add(const std::string& key, EveryKth* field, std::string doc);
  // Free-form JSON object (or null), e.g. an HF rope_scaling dict; passed through.
  void add(const std::string& key, nlohmann::json* field, std::string doc);

  // Suggestions for unknown keys and values: `alias` (a bare name or a dotted key another tool
  // uses, e.g. "learning_rate") is answered with `key`; a string key given `value` is answered
  // with `advice` (e.g. "fp16" -> "use \"bfloat16\"...").
  void hint_key(const std::string& alias, const std::string& key);
  void hint_value(const std::string& key, const std::string& value, const std::string& advice);

  // Applies a document whose top level is an object; sections nest
  // ({"optim": {"lr": 1e-3}}) and dotted keys ({"optim.lr": 1e-3}) are also
  // accepted. `source` (a file path, usually) starts every error message.
  void apply_json(const nlohmann::json& doc, const std::string& source);
  // Reads and parses `path`; syntax errors name the file, line and column.
  void apply_file(const std::string& path);
  // "section.key=value": value is parsed as JSON when it parses, else taken as
  // a bare string. For string keys the text is always the string (a JSON-quoted
  // string is unquoted), so `--set data.name=123` means "123".
  void apply_override(const std::string& assignment);

  nlohmann::json to_json() const;         // resolved values, nested by section
  std::string markdown_table() const;     // | key | type | default | description |
  std::vector<std::string> keys() const;  // in registration order

 private:
  struct Entry {
    std::string key;
    std::string type;  // for messages and the table, e.g. "int in [1, 8]"
    std::string doc;
    nlohmann::json default_value;
    bool text_field = false;  // std::string: overrides take the text as is
    // Converts and checks `value` (throws ConfigError naming `source`); assigns when `commit`.
    std::function<void(const nlohmann::json& value, const std::string& source, bool commit)> set;
    std::function<nlohmann::json()> get;
  };
  using Pending = std::vector<std::pair<const Entry*, nlohmann::json>>;

  template <class T, class Convert>
  void bind(const std::string& key, T* field, std::string doc, std::string type, Convert convert);
  const Entry* find(const std::string& key) const;
  bool is_section(const std::string& prefix) const;
  void collect(const std::string& key, const nlohmann::json& value, const std::string& source,
               Pending& pending) const;
  void commit(const Pending& pending, const std::string& source);
  [[noreturn]] void throw_unknown(const std::string& key, const std::string& source) const;
  std::string suggestion(const std::string& key) const;  // "did you mean 'x'?" or the section's keys

  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> key_hints_;
  // key -> (value -> advice); shared with the string converters, which outlive no schema.
  std::shared_ptr<std::map<std::string, std::map<std::string, std::string>>> value_hints_ =
      std::make_shared<std::map<std::string, std::map<std::string, std::string>>>();
};

}  // namespace ropex
