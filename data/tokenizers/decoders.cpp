#include "data/tokenizers/decoders.h"

#include "data/tokenizers/byte_level.h"
#include "data/tokenizers/normalizers.h"
#include "data/tokenizers/onig_regex.h"
#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      size_t mark = bytes.size();
      bool all = true;
      for (size_t i = 0, n = 0; i < t.size() && all; i += n) {
        int b = char_to_byte(decode_utf8(t, i, &n));
        if (b < 0) all = false;
        else bytes.push_back(static_cast<char>(b));
      }
      if (!all) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, make_valid_utf8(bytes));
  }
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte of a "<0xXX>" token (Rust's u8::from_str_radix on the two characters), or -1.
int fallback_byte(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  if (t[3] == '+' && lo >= 0) return lo;
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    auto flush = [&] {
      if (run.empty()) return;
      if (is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        for (size_t k = 0; k < run.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
    };
    for (auto& t : tokens) {
      int b = fallback_byte(t);
      if (b >= 0) {
        run.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(const std::string& pattern, std::string content) : re_(pattern), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    for (auto& t : tokens) {
      re_.find_all(t, matches);
      if (matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (auto [s, e] : matches) {
        out.append(t, prev, s - prev);
        out += content_;
        prev = e;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  OnigRegex re_;
  std::string content_;
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // byte offset, code point
      for (size_t i = 0, n = 0; i < t.size(); i += n) chars.emplace_back(i, decode_utf8(t, i, &n));
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size(); ++i) {
        if (chars[i].second != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        size_t index = chars.size() - i - 1;
        if (chars[index].second != content_) break;
        stop_cut = index;
      }
      if (stop_cut <= start_cut) {
        t.clear();
        continue;
      }
      size_t b = start_cut < chars.size() ? chars[start_cut].first : t.size();
      size_t e = stop_cut < chars.size() ? chars[stop_cut].first : t.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepend) : replacement_(replacement), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      std::string out;
      out.reserve(t.size());
      for (size_t k = 0, n = 0; k < t.size(); k += n) {
        char32_t c = decode_utf8(t, k, &n);
        if (c == replacement_) {
          if (!(i == 0 && prepend_)) out.push_back(' ');
        } else {
          out.append(t, k, n);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool prepend_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

char32_t one_char(const nlohmann::json& j, const JsonPlace& at) {
  std::string s = as_string(j, at);
  size_t n = 0;
  if (s.empty() || (decode_utf8(s, 0, &n), n != s.size())) at.fail("expected one character");
  return decode_utf8(s, 0, &n);
}

size_t count(const nlohmann::json& j, const JsonPlace& at) {
  int64_t v = as_int(j, at);
  if (v < 0) at.fail("expected a count >= 0");
  return static_cast<size_t>(v);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const JsonPlace& at) {
  std::string type = type_of(j, at);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    std::string pattern = read_pattern(member(j, at, "pattern"), at.child("pattern"));
    try {
      return std::make_unique<ReplaceDecoder>(pattern, as_string(member(j, at, "content"), at.child("content")));
    } catch (const std::runtime_error& e) {
      at.child("pattern").fail(e.what());
    }
  }
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(one_char(member(j, at, "content"), at.child("content")),
                                          count(member(j, at, "start"), at.child("start")),
                                          count(member(j, at, "stop"), at.child("stop")));
  }
  if (type == "Metaspace") {
    char32_t r = one_char(member(j, at, "replacement"), at.child("replacement"));
    bool prepend = true;
    if (auto s = optional_member(j, "prepend_scheme")) {
      std::string v = as_string(*s, at.child("prepend_scheme"));
      if (v != "always" && v != "first" && v != "never") at.child("prepend_scheme").unsupported(v, "always, first, never");
      prepend = v != "never";
    } else if (auto a = optional_member(j, "add_prefix_space")) {
      prepend = as_bool(*a, at.child("add_prefix_space"));
    }
    return std::make_unique<MetaspaceDecoder>(r, prepend);
  }
  if (type == "Sequence") {
    const auto& list = member(j, at, "decoders");
    auto list_at = at.child("decoders");
    if (!list.is_array()) list_at.fail("expected a list");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.size(); ++i) parts.push_back(make_decoder(list[i], list_at.index(i)));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  at.child("type").unsupported(type, "ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence");
}

}  // namespace ropex::tok
