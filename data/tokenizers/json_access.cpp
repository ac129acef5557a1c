#include "data/tokenizers/json_access.h"

#include "data/input/json.h"

namespace ropex::tok {

JsonPlace JsonPlace::child(std::string_view name) const {
  return {file, key.empty() ? std::string(name) : key + "." + std::string(name)};
}

JsonPlace JsonPlace::index(size_t i) const { return {file, key + "[" + std::to_string(i) + "]"}; }

void JsonPlace::fail(const std::string& what) const {
  throw std::runtime_error(*file + ": key '" + key + "': " + what);
}

void JsonPlace::unsupported(const std::string& value, const std::string& supported) const {
  fail("'" + value + "' is not supported; ropex reads " + supported);
}

const nlohmann::json& member(const nlohmann::json& j, const JsonPlace& at, std::string_view name) {
  if (!j.is_object()) at.fail("expected an object, got " + input::json_excerpt(j));
  auto it = j.find(name);
  if (it == j.end()) at.child(name).fail("missing");
  return *it;
}

const nlohmann::json* optional_member(const nlohmann::json& j, std::string_view name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

std::string as_string(const nlohmann::json& j, const JsonPlace& at) {
  if (!j.is_string()) at.fail("expected a string, got " + input::json_excerpt(j));
  return j.get<std::string>();
}

bool as_bool(const nlohmann::json& j, const JsonPlace& at) {
  if (!j.is_boolean()) at.fail("expected true or false, got " + input::json_excerpt(j));
  return j.get<bool>();
}

int64_t as_int(const nlohmann::json& j, const JsonPlace& at) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (v > uint64_t{INT64_MAX}) at.fail("integer out of range");
    return static_cast<int64_t>(v);
  }
  if (!j.is_number_integer()) at.fail("expected an integer, got " + input::json_excerpt(j));
  return j.get<int64_t>();
}

std::string type_of(const nlohmann::json& j, const JsonPlace& at) {
  return as_string(member(j, at, "type"), at.child("type"));
}

}  // namespace ropex::tok
