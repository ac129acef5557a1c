#include "data/tokenizers/normalizers.h"

#include <vector>

#include "data/tokenizers/byte_level.h"
#include "data/tokenizers/onig_regex.h"
#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

namespace {

class UnicodeForm final : public Normalizer {
 public:
  explicit UnicodeForm(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override { text = unicode_normalize(text, form_); }

 private:
  NormalForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = to_lowercase(text); }
};

class StripAccents final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0, n = 0; i < text.size(); i += n) {
      char32_t c = decode_utf8(text, i, &n);
      if (!is_combining_mark(c)) out.append(text, i, n);
    }
    text = std::move(out);
  }
};

class Replace final : public Normalizer {
 public:
  Replace(const std::string& pattern, std::string content) : regex_(pattern), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    regex_.find_all(text, matches);
    if (matches.empty()) return;
    std::string out;
    out.reserve(text.size());
    size_t prev = 0;
    for (auto [s, e] : matches) {
      out.append(text, prev, s - prev);
      out += content_;
      prev = e;
    }
    out.append(text, prev, std::string::npos);
    text = std::move(out);
  }

 private:
  OnigRegex regex_;
  std::string content_;
};

// Replace with a literal pattern: the same result as the regex, without the regex engine.
class ReplaceLiteral final : public Normalizer {
 public:
  ReplaceLiteral(std::string pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    size_t pos = text.find(pattern_);
    if (pos == std::string::npos) return;
    std::string out;
    out.reserve(text.size() + text.size() / 4);
    size_t prev = 0;
    while (pos != std::string::npos) {
      out.append(text, prev, pos - prev);
      out += content_;
      prev = pos + pattern_.size();
      pos = text.find(pattern_, prev);
    }
    out.append(text, prev, std::string::npos);
    text = std::move(out);
  }

 private:
  std::string pattern_, content_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      size_t n = 0;
      while (begin < end && is_whitespace(decode_utf8(text, begin, &n))) begin += n;
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t n = 0;
        if (!is_whitespace(decode_utf8(text, start, &n))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    append_byte_level(out, text);
    text = std::move(out);
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& p : parts_) p->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::string read_pattern(const nlohmann::json& j, const JsonPlace& at) {
  if (!j.is_object() || j.size() != 1) at.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  if (auto s = optional_member(j, "String")) return OnigRegex::escape(as_string(*s, at.child("String")));
  if (auto r = optional_member(j, "Regex")) return as_string(*r, at.child("Regex"));
  at.unsupported(j.begin().key(), "String and Regex patterns");
}

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const JsonPlace& at) {
  std::string type = type_of(j, at);
  if (type == "NFC") return std::make_unique<UnicodeForm>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeForm>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeForm>(NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Prepend") return std::make_unique<Prepend>(as_string(member(j, at, "prepend"), at.child("prepend")));
  if (type == "Strip") {
    return std::make_unique<Strip>(as_bool(member(j, at, "strip_left"), at.child("strip_left")),
                                   as_bool(member(j, at, "strip_right"), at.child("strip_right")));
  }
  if (type == "Replace") {
    const auto& p = member(j, at, "pattern");
    std::string content = as_string(member(j, at, "content"), at.child("content"));
    if (p.is_object() && p.contains("String") && p["String"].is_string() && !p["String"].get<std::string>().empty()) {
      return std::make_unique<ReplaceLiteral>(p["String"].get<std::string>(), content);
    }
    std::string pattern = read_pattern(p, at.child("pattern"));
    try {
      return std::make_unique<Replace>(pattern, content);
    } catch (const std::runtime_error& e) {
      at.child("pattern").fail(e.what());
    }
  }
  if (type == "Sequence") {
    const auto& list = member(j, at, "normalizers");
    auto list_at = at.child("normalizers");
    if (!list.is_array()) list_at.fail("expected a list");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) parts.push_back(make_normalizer(list[i], list_at.index(i)));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  at.child("type").unsupported(type, "NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Replace, Prepend, Strip, ByteLevel, Sequence");
}

}  // namespace ropex::tok
