#include "data/input/json.h"

#include <unordered_set>
#include <vector>

#include "data/input/files.h"

namespace ropex::input {
namespace {

using json = nlohmann::json;

// nlohmann's messages start "[json.exception.parse_error.101] parse error at line 1, column 5: ";
// we give the place ourselves, so keep what follows.
std::string library_detail(const std::string& what) {
  std::string s = what;
  if (s.rfind("[json.exception.", 0) == 0) {
    const size_t close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  const size_t colon = s.rfind("parse error", 0) == 0 ? s.find(": ") : std::string::npos;
  if (colon != std::string::npos) s = s.substr(colon + 2);
  if (s.rfind("number overflow parsing '", 0) == 0 && s.size() > 26)
    s = "the number " + s.substr(25, s.size() - 26) + " does not fit in a double (about 1.8e308 at most)";
  return s;
}

// A SAX handler that builds the document with nlohmann's own DOM builder and adds the checks.
class CheckedBuilder {
 public:
  CheckedBuilder(json& out, std::string_view text, const std::string& source, const JsonLimits& limits)
      : dom_(out, /*allow_exceptions=*/true), text_(text), source_(source), limits_(limits) {}

  bool null() { return value(), dom_.null(); }
  bool boolean(bool v) { return value(), dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return value(), dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value(), dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) { return value(), dom_.number_float(v, s); }
  bool string(json::string_t& v) { return value(), dom_.string(v); }
  bool binary(json::binary_t& v) { return value(), dom_.binary(v); }
  bool start_object(std::size_t n) {
    open(true);
    return dom_.start_object(n);
  }
  bool key(json::string_t& k) {
    Frame& f = frames_.back();
    if (limits_.reject_duplicate_keys && !f.keys.insert(k).second) {
      std::string where = "the top-level object";
      if (frames_.size() > 1) {
        where = "'";
        where += path(frames_.size() - 1);
        where += "'";
      }
      fail("duplicate key '" + shorten(k) + "' in " + where + " (JSON keys must be unique)");
    }
    f.key = k;
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    open(false);
    return dom_.start_array(n);
  }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    const std::string p = path(frames_.size(), /*reading=*/true);
    const std::string reason = "invalid JSON: " + library_detail(e.what()) + (p.empty() ? "" : " (under '" + p + "')");
    throw JsonInputError(source_ + ":" + line_and_column(text_, position > 0 ? position - 1 : 0) + ": " + reason, reason);
  }

 private:
  struct Frame {
    bool object;
    std::string key;        // the key being read, in an object
    size_t next_index = 0;  // the index of the next element, in an array
    std::unordered_set<std::string> keys;
  };

  static std::string shorten(const std::string& s) { return s.size() <= 60 ? s : s.substr(0, 57) + "..."; }

  // The key path of the first `depth` open containers: model.layers[3].name. `reading`: the innermost
  // array's element being read has not been counted yet (a parse error inside it).
  std::string path(size_t depth, bool reading = false) const {
    std::string out;
    for (size_t i = 0; i < depth && i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      const size_t next = f.next_index + (reading && i + 1 == frames_.size() && !f.object ? 1 : 0);
      if (f.object) {
        if (f.key.empty() && f.keys.empty()) break;
        if (!out.empty()) out += '.';
        out += shorten(f.key);
      } else {
        if (next == 0) break;
        out += '[';
        out += std::to_string(next - 1);
        out += ']';
      }
      if (out.size() > 200) return out.substr(0, 197) + "...";
    }
    return out;
  }

  void value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().next_index;
  }

  void open(bool object) {
    value();
    if (frames_.size() >= limits_.max_depth)
      fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels (no input ropex reads needs that many)");
    frames_.push_back(Frame{object, {}, 0, {}});
  }

  [[noreturn]] void fail(const std::string& why) const { throw JsonInputError(source_ + ": " + why, why); }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::string_view text_;
  const std::string& source_;
  const JsonLimits& limits_;
  std::vector<Frame> frames_;
};

void excerpt_into(const json& v, int depth, size_t budget, std::string& out) {
  if (out.size() > budget) return;
  if (v.is_object() || v.is_array()) {
    const bool object = v.is_object();
    if (depth >= 2) {
      out += v.empty() ? (object ? "{}" : "[]") : (object ? "{...}" : "[...]");
      return;
    }
    out += object ? '{' : '[';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= budget; ++it) {
      if (!first) out += ", ";
      first = false;
      if (object) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ": ";
      excerpt_into(*it, depth + 1, budget, out);
    }
    out += object ? '}' : ']';
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    out += json(s.size() > budget ? s.substr(0, budget) : s).dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    out += v.dump();  // a scalar: a few characters
  }
}

}  // namespace

std::string line_and_column(std::string_view text, size_t byte) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::to_string(line) + ":" + std::to_string(column);
}

json parse_json(std::string_view text, const std::string& source, const JsonLimits& limits) {
  json out;
  CheckedBuilder builder(out, text, source, limits);
  json::sax_parse(text.begin(), text.end(), &builder, nlohmann::detail::input_format_t::json, /*strict=*/true);
  return out;
}

json parse_json_or_text(std::string_view text, const std::string& source) {
  try {
    return parse_json(text, source);
  } catch (const JsonInputError&) {
    if (!text.empty() && std::string_view("{[-0123456789").find(text[0]) != std::string_view::npos) throw;
    return json(std::string(text));
  }
}

json read_json_file(const std::filesystem::path& path, const std::string& what, size_t max_bytes,
                    const JsonLimits& limits) {
  return parse_json(read_regular_file(path, what, max_bytes), path.string(), limits);
}

std::string json_excerpt(const json& value, size_t max_chars) {
  std::string out;
  excerpt_into(value, 0, max_chars, out);
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}

}  // namespace ropex::input
