// ConfigSchema implementation: typed converters with helpful errors, a walk
// that collects (entry, value) pairs from nested or dotted documents, and a
// two-phase apply (validate everything, then assign) so a failed apply leaves
// every field untouched. No LibTorch, no knowledge of particular keys.
#include "trainer/config_schema.h"

#include "data/input/json.h"
#include "data/text_match.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string_view>
#include <type_traits>

namespace ropex {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw ConfigError(source + ": key '" + key + "' " + what);
}

// Never throws, even on invalid UTF-8 (replaced by U+FFFD); for our own values (defaults).
std::string dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// A value as the user wrote it, with its JSON kind: `"abc" (string)`; bounded in depth and length,
// never throws (invalid UTF-8 is replaced by U+FFFD).
std::string shown(const json& v) { return input::json_excerpt(v, 77) + " (" + v.type_name() + ")"; }

[[noreturn]] void fail_type(const std::string& source, const std::string& key, const std::string& type,
                            const json& v) {
  fail(source, key, "expects " + type + ", got " + shown(v));
}

std::string number_text(int64_t x) { return std::to_string(x); }
std::string number_text(double x) { return json(x).dump(); }

template <class T>
std::string range_text(const std::optional<T>& min, const std::optional<T>& max) {
  if (min && max) return "in [" + number_text(*min) + ", " + number_text(*max) + "]";
  if (min) return ">= " + number_text(*min);
  if (max) return "<= " + number_text(*max);
  return "";
}

template <class T>
std::string with_range(std::string type, const std::optional<T>& min, const std::optional<T>& max) {
  const std::string range = range_text(min, max);
  return range.empty() ? type : type + " " + range;
}

template <class T>
T check_range(T x, const std::optional<T>& min, const std::optional<T>& max, const std::string& source,
              const std::string& key) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(x)) fail(source, key, "must be a finite number, got " + number_text(x));
  }
  if ((min && x < *min) || (max && x > *max)) {
    fail(source, key, "must be " + range_text(min, max) + ", got " + number_text(x));
  }
  return x;
}

// Integers, and floats with an integral value that fits in int64 (3.0 -> 3).
int64_t to_int(const json& v, const std::string& source, const std::string& key) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
    fail(source, key, "expects int, got " + shown(v) + ", which does not fit in 64 bits");
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    constexpr double kLimit = 9223372036854775808.0;  // 2^63
    if (std::trunc(d) != d || d < -kLimit || d >= kLimit) {
      fail(source, key, "expects int, got " + shown(v) + ", which is not an integer");
    }
    return static_cast<int64_t>(d);
  }
  fail_type(source, key, "int", v);
}


std::string leaf(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Whether `candidate` is close enough to `given` to be offered: at most half of the given text
// (at least 2 edits) differs.
bool close_enough(const std::string& given, const std::string& candidate) {
  return edit_distance(given, candidate) <= std::max<size_t>(2, given.size() / 2);
}

std::string section_of(const std::string& key) {
  const size_t dot = key.find('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "\"" : ", \"") + item + "\"";
  return out;
}

bool valid_key(const std::string& key) {
  if (key.empty() || key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos)
    return false;
  return std::all_of(key.begin(), key.end(),
                     [](char c) { return std::isalnum(uint8_t(c)) || c == '_' || c == '.'; });
}

std::string escape_cell(const std::string& text) {
  std::string out;
  for (char c : text) out += (c == '|') ? std::string("\\|") : std::string(1, c);
  return out;
}

}  // namespace

// ---- registration -----------------------------------------------------------

template <class T, class Convert>
void ConfigSchema::bind(const std::string& key, T* field, std::string doc, std::string type,
                        Convert convert) {
  if (field == nullptr) throw std::logic_error("ConfigSchema: null field for key '" + key + "'");
  if (!valid_key(key)) throw std::logic_error("ConfigSchema: invalid key '" + key + "'");
  if (find(key) != nullptr || is_section(key)) {
    throw std::logic_error("ConfigSchema: key '" + key + "' is already registered (as a key or a section)");
  }
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    if (find(key.substr(0, dot)) != nullptr) {
      throw std::logic_error("ConfigSchema: '" + key.substr(0, dot) + "' is a key, so '" + key +
                             "' cannot be");
    }
  }
  Entry e;
  e.key = key;
  e.type = std::move(type);
  e.doc = std::move(doc);
  e.default_value = json(*field);
  e.text_field = std::is_same_v<T, std::string>;
  e.set = [field, convert](const json& v, const std::string& source, bool commit) {
    T x = convert(v, source);
    if (commit) *field = std::move(x);
  };
  e.get = [field] { return json(*field); };
  index_[key] = entries_.size();
  entries_.push_back(std::move(e));
}

void ConfigSchema::add(const std::string& key, bool* field, std::string doc) {
  bind(key, field, std::move(doc), "bool", [key](const json& v, const std::string& source) {
    if (!v.is_boolean()) fail_type(source, key, "bool", v);
    return v.get<bool>();
  });
}

void to_json(json& j, const EveryKth& e) {
  if (e.every <= 1) j = e.every == 1;
  else j = e.every;
}

void ConfigSchema::add(const std::string& key, EveryKth* field, std::string doc) {
  bind(key, field, std::move(doc), "bool or int >= 0", [key](const json& v, const std::string& source) {
    if (v.is_boolean()) return EveryKth{v.get<bool>() ? 1 : 0};
    if (!v.is_number()) fail_type(source, key, "bool or int >= 0", v);
    const int64_t k = to_int(v, source, key);
    if (k < 0) fail(source, key, "must be true, false or an int >= 0 (every k-th), got " + number_text(k));
    return EveryKth{k};
  });
}

void ConfigSchema::add(const std::string& key, int64_t* field, std::string doc, std::optional<int64_t> min,
                       std::optional<int64_t> max) {
  bind(key, field, std::move(doc), with_range("int", min, max),
       [key, min, max](const json& v, const std::string& source) {
         return check_range(to_int(v, source, key), min, max, source, key);
       });
}

void ConfigSchema::add(const std::string& key, double* field, std::string doc, std::optional<double> min,
                       std::optional<double> max) {
  const std::string type = with_range("float", min, max);
  bind(key, field, std::move(doc), type, [key, min, max](const json& v, const std::string& source) {
    if (!v.is_number()) fail_type(source, key, "float", v);
    return check_range(v.get<double>(), min, max, source, key);
  });
}

void ConfigSchema::add(const std::string& key, std::string* field, std::string doc,
                       std::vector<std::string> allowed) {
  const std::string type = allowed.empty() ? "string" : "string, one of " + quoted_list(allowed);
  bind(key, field, std::move(doc), type,
       [key, allowed, hints = value_hints_](const json& v, const std::string& source) {
    if (!v.is_string()) fail_type(source, key, "string", v);
    const auto s = v.get<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string advice;
      if (const auto k = hints->find(key); k != hints->end() && k->second.count(s)) {
        advice = " (" + k->second.at(s) + ")";
      } else if (const std::string near = nearest(s, allowed); close_enough(s, near)) {
        advice = " (did you mean \"" + near + "\"?)";
      }
      fail(source, key, "must be one of " + quoted_list(allowed) + ", got \"" + s + "\"" + advice);
    }
    return s;
  });
}

void ConfigSchema::add(const std::string& key, std::vector<int64_t>* field, std::string doc) {
  bind(key, field, std::move(doc), "list of int", [key](const json& v, const std::string& source) {
    if (!v.is_array()) fail_type(source, key, "list of int", v);
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i)
      out.push_back(to_int(v[i], source, key + "[" + std::to_string(i) + "]"));
    return out;
  });
}

void ConfigSchema::add(const std::string& key, nlohmann::json* field, std::string doc) {
  bind(key, field, std::move(doc), "object", [key](const json& v, const std::string& source) {
    if (!v.is_object() && !v.is_null()) fail_type(source, key, "an object or null", v);
    return v;
  });
}

// ---- applying ---------------------------------------------------------------

const ConfigSchema::Entry* ConfigSchema::find(const std::string& key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

bool ConfigSchema::is_section(const std::string& prefix) const {
  const std::string dotted = prefix + ".";
  const auto it = index_.lower_bound(dotted);
  return it != index_.end() && it->first.compare(0, dotted.size(), dotted) == 0;
}

void ConfigSchema::hint_key(const std::string& alias, const std::string& key) {
  if (find(key) == nullptr) throw std::logic_error("ConfigSchema: hint for unregistered key '" + key + "'");
  key_hints_[alias] = key;
}

void ConfigSchema::hint_value(const std::string& key, const std::string& value, const std::string& advice) {
  if (find(key) == nullptr) throw std::logic_error("ConfigSchema: hint for unregistered key '" + key + "'");
  (*value_hints_)[key][value] = advice;
}

// Looks, in order: an alias of the whole key; the given section, or the one nearest a misspelt
// section: an alias of the last segment that lies in it, then the nearest key in it; a key of another section with the same
// last segment (a key put in the wrong section); for a key without a section, the nearest last
// segment anywhere. Without a close candidate it lists the section's keys.
std::string ConfigSchema::suggestion(const std::string& key) const {
  auto mean = [](const std::string& k) { return "did you mean '" + k + "'?"; };
  auto listed = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
  };
  if (const auto it = key_hints_.find(key); it != key_hints_.end()) return mean(it->second);
  std::vector<std::string> sections;
  for (const auto& e : entries_) {
    const std::string sec = section_of(e.key);
    if (!sec.empty() && std::find(sections.begin(), sections.end(), sec) == sections.end()) sections.push_back(sec);
  }
  const std::string given_section = section_of(key);
  std::string section;
  if (!given_section.empty()) {
    if (std::find(sections.begin(), sections.end(), given_section) != sections.end()) section = given_section;
    else if (const std::string near = nearest(given_section, sections); !near.empty() && close_enough(given_section, near))
      section = near;
  }
  // An alias of the last segment, when it names a key of the section meant (or no section is).
  if (const auto it = key_hints_.find(leaf(key));
      it != key_hints_.end() && (section.empty() || section_of(it->second) == section))
    return mean(it->second);
  const std::string rest = given_section.empty() ? key : key.substr(given_section.size() + 1);
  std::vector<std::string> in_section;
  for (const auto& e : entries_)
    if (!section.empty() && section_of(e.key) == section) in_section.push_back(e.key.substr(section.size() + 1));
  if (const std::string near = nearest(rest, in_section); !near.empty() && close_enough(rest, near))
    return mean(section + "." + near);
  for (const auto& e : entries_)
    if (leaf(e.key) == leaf(key)) return mean(e.key);
  if (given_section.empty() || section.empty()) {
    std::vector<std::string> leaves;
    for (const auto& e : entries_) leaves.push_back(leaf(e.key));
    if (const std::string near = nearest(leaf(key), leaves); !near.empty() && close_enough(leaf(key), near))
      for (const auto& e : entries_)
        if (leaf(e.key) == near) return mean(e.key);
  }
  if (section.empty()) return "sections: " + listed(sections);
  return "keys of '" + section + "': " + listed(in_section);
}

void ConfigSchema::throw_unknown(const std::string& key, const std::string& source) const {
  if (entries_.empty()) throw ConfigError(source + ": unknown key '" + key + "' (this schema has no keys)");
  throw ConfigError(source + ": unknown key '" + key + "' (" + suggestion(key) + ")");
}

// Validates `value` for `key` (a field, or a section given as an object) and
// queues the assignments; assigns nothing.
void ConfigSchema::collect(const std::string& key, const json& value, const std::string& source,
                           Pending& pending) const {
  if (const Entry* e = find(key)) {
    const bool seen =
        std::any_of(pending.begin(), pending.end(), [e](const auto& p) { return p.first == e; });
    if (seen) fail(source, key, "is given more than once");
    e->set(value, source, /*commit=*/false);
    pending.emplace_back(e, value);
    return;
  }
  const bool section = is_section(key);
  // An unknown key holding an object is walked, so the error names a full dotted key.
  if (!section && (!value.is_object() || value.empty())) throw_unknown(key, source);
  if (section && !value.is_object()) fail_type(source, key, "an object (it is a section)", value);
  for (const auto& [child, child_value] : value.items())
    collect(key + "." + child, child_value, source, pending);
}

void ConfigSchema::commit(const Pending& pending, const std::string& source) {
  for (const auto& [entry, value] : pending) entry->set(value, source, /*commit=*/true);
}

void ConfigSchema::apply_json(const json& doc, const std::string& source) {
  if (!doc.is_object())
    throw ConfigError(source + ": expected a JSON object at the top level, got " + shown(doc));
  Pending pending;
  for (const auto& [key, value] : doc.items()) collect(key, value, source, pending);
  commit(pending, source);
}

void ConfigSchema::apply_file(const std::string& path) {
  json doc;
  try {
    // A run config is a few KB; 16 MiB is far beyond any real one and keeps a wrong path cheap.
    doc = input::read_json_file(path, "a ropex run config (JSON)", size_t{16} << 20);
  } catch (const std::runtime_error& e) {  // input::JsonInputError, input::InputFileError
    throw ConfigError(e.what());
  }
  apply_json(doc, path);
}

void ConfigSchema::apply_override(const std::string& assignment) {
  const std::string source = "--set " + assignment;
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError(source + ": expected section.key=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const Entry* e = find(key);
  json value;
  if (e != nullptr && e->text_field) {  // the text as written (--set run.name=2024-01), or a quoted JSON string
    try {
      value = input::parse_json(text, source);
    } catch (const input::JsonInputError&) {
    }
    if (!value.is_string()) value = text;
  } else {
    try {
      value = input::parse_json_or_text(text, source);
    } catch (const input::JsonInputError& err) {
      throw ConfigError(err.what());
    }
  }
  Pending pending;
  collect(key, value, source, pending);
  commit(pending, source);
}

// ---- reporting --------------------------------------------------------------

json ConfigSchema::to_json() const {
  json out = json::object();
  for (const auto& e : entries_) {
    std::string pointer = "/" + e.key;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    out[json::json_pointer(pointer)] = e.get();
  }
  return out;
}

std::string ConfigSchema::markdown_table() const {
  std::string out = "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& e : entries_) {
    out += "| `" + e.key + "` | " + escape_cell(e.type) + " | `" + escape_cell(dump(e.default_value)) +
           "` | " + escape_cell(e.doc) + " |\n";
  }
  return out;
}

std::vector<std::string> ConfigSchema::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.key);
  return out;
}

}  // namespace ropex
