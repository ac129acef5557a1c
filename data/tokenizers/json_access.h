// Reading tokenizer.json's values with errors that name the file and the key path.
//
// Every component of data/tokenizers reads its part of the file through these helpers, so that a
// missing key, a wrong type or an unsupported option always reads
// "<file>: key 'pre_tokenizer.pretokenizers[1].type': ...". They do not parse JSON (that is
// data/input/json.h) and know nothing of what the values mean.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ropex::tok {

// Where a JSON value sits: the file and the dotted key path to it.
struct JsonPlace {
  const std::string* file;
  std::string key;

  JsonPlace child(std::string_view name) const;
  JsonPlace index(size_t i) const;
  // "<file>: key '<key>': <what>" as a std::runtime_error.
  [[noreturn]] void fail(const std::string& what) const;
  // "<file>: key '<key>': '<value>' is not supported; ropex reads <supported>".
  [[noreturn]] void unsupported(const std::string& value, const std::string& supported) const;
};

// The member `name` of object `j`; fails when j is not an object or the member is missing.
const nlohmann::json& member(const nlohmann::json& j, const JsonPlace& at, std::string_view name);
// The member or nullptr when absent.
const nlohmann::json* optional_member(const nlohmann::json& j, std::string_view name);

std::string as_string(const nlohmann::json& j, const JsonPlace& at);
bool as_bool(const nlohmann::json& j, const JsonPlace& at);
int64_t as_int(const nlohmann::json& j, const JsonPlace& at);
// "type" of a component object.
std::string type_of(const nlohmann::json& j, const JsonPlace& at);

}  // namespace ropex::tok
