#include "data/tokenizers/pre_tokenizers.h"

#include <algorithm>
#include <functional>

#include "data/tokenizers/byte_level.h"
#include "data/tokenizers/normalizers.h"
#include "data/tokenizers/onig_regex.h"
#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Span {
  size_t begin, end;
  bool is_match;
};

// The pieces of `text` covered by `spans` (which tile it) under `behavior`, as the `tokenizers`
// library's NormalizedString::split combines them.
void apply_behavior(const Piece& piece, std::vector<Span>& spans, Behavior behavior, std::vector<Piece>& out) {
  std::vector<Span> kept;
  kept.reserve(spans.size());
  switch (behavior) {
    case Behavior::Isolated:
      for (auto& s : spans) kept.push_back({s.begin, s.end, false});
      break;
    case Behavior::Removed:
      kept = spans;
      break;
    case Behavior::Contiguous: {
      bool previous = false;
      for (auto& s : spans) {
        if (s.is_match == previous && !kept.empty()) kept.back().end = s.end;
        else kept.push_back({s.begin, s.end, false});
        previous = s.is_match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool previous = false;
      for (auto& s : spans) {
        if (s.is_match && !previous && !kept.empty()) kept.back().end = s.end;
        else kept.push_back({s.begin, s.end, false});
        previous = s.is_match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous = false;
      for (size_t i = spans.size(); i-- > 0;) {
        const auto& s = spans[i];
        if (s.is_match && !previous && !kept.empty()) kept.back().begin = s.begin;
        else kept.push_back({s.begin, s.end, false});
        previous = s.is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  for (auto& k : kept) {
    if (k.is_match || k.end == k.begin) continue;  // removed, or empty
    out.push_back({piece.text.substr(k.begin, k.end - k.begin), piece.at_start && k.begin == 0});
  }
}

// Spans from regex matches (tokenizers' Pattern for a regex).
void regex_spans(const OnigRegex& re, std::string_view text, bool invert, std::vector<Span>& spans,
                 std::vector<std::pair<size_t, size_t>>& matches) {
  spans.clear();
  re.find_all(text, matches);
  size_t prev = 0;
  for (auto [s, e] : matches) {
    if (prev != s) spans.push_back({prev, s, invert});
    spans.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});
}

// Spans from a character predicate (tokenizers' Pattern for Fn(char) -> bool): each matching
// character is a match of its own.
template <class Pred>
void char_spans(std::string_view text, Pred pred, std::vector<Span>& spans) {
  spans.clear();
  size_t last = 0;
  for (size_t i = 0, n = 0; i < text.size(); i += n) {
    char32_t c = decode_utf8(text, i, &n);
    if (pred(c)) {
      if (last < i) spans.push_back({last, i, false});
      spans.push_back({i, i + n, true});
      last = i + n;
    }
  }
  if (text.size() > last) spans.push_back({last, text.size(), false});
}

class Split final : public PreTokenizer {
 public:
  Split(const std::string& pattern, Behavior behavior, bool invert) : re_(pattern), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 2);
    std::vector<Span> spans;
    std::vector<std::pair<size_t, size_t>> matches;
    for (const auto& p : pieces) {
      regex_spans(re_, p.text, invert_, spans, matches);
      apply_behavior(p, spans, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  OnigRegex re_;
  Behavior behavior_;
  bool invert_;
};

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) re_ = std::make_unique<OnigRegex>(kGpt2Pattern);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 2);
    std::vector<Span> spans;
    std::vector<std::pair<size_t, size_t>> matches;
    for (auto& p : pieces) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
      if (re_) {
        regex_spans(*re_, p.text, false, spans, matches);
        apply_behavior(p, spans, Behavior::Isolated, out);
      } else if (!p.text.empty()) {
        out.push_back(std::move(p));
      }
    }
    std::string mapped;
    for (auto& p : out) {
      mapped.clear();
      append_byte_level(mapped, p.text);
      p.text.swap(mapped);
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<OnigRegex> re_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    size_t n = 0;
    replacement_char_ = decode_utf8(replacement_, 0, &n);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    std::vector<Span> spans;
    for (auto& p : pieces) {
      std::string text;
      text.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ') text += replacement_;
        else text += c;
      }
      bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_start))) {
        text.insert(0, replacement_);
      }
      Piece q{std::move(text), p.at_start};
      if (split_) {
        char32_t r = replacement_char_;
        char_spans(q.text, [r](char32_t c) { return c == r; }, spans);
        apply_behavior(q, spans, Behavior::MergedWithNext, out);
      } else if (!q.text.empty()) {
        out.push_back(std::move(q));
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  char32_t replacement_char_;
  PrependScheme scheme_;
  bool split_;
};

// `\w+|[^\w\s]+` in Rust's regex crate (the library does not use Oniguruma here): runs of word
// characters and runs of other non-space characters; whitespace is dropped.
class Whitespace final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const auto& p : pieces) {
      const std::string& t = p.text;
      size_t run_start = 0;
      int run_kind = -1;  // 0 word, 1 other, -1 none
      for (size_t i = 0, n = 0; i <= t.size(); i += n) {
        int kind = -1;
        if (i < t.size()) {
          char32_t c = decode_utf8(t, i, &n);
          kind = is_regex_word(c) ? 0 : is_whitespace(c) ? -1 : 1;
        } else {
          n = 1;
        }
        if (kind != run_kind) {
          if (run_kind >= 0) out.push_back({t.substr(run_start, i - run_start), p.at_start && run_start == 0});
          run_start = i;
          run_kind = kind;
        }
      }
    }
    pieces = std::move(out);
  }
};

class CharSplit final : public PreTokenizer {
 public:
  CharSplit(std::function<bool(char32_t)> pred, Behavior behavior) : pred_(std::move(pred)), behavior_(behavior) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<Span> spans;
    for (const auto& p : pieces) {
      char_spans(p.text, pred_, spans);
      apply_behavior(p, spans, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  std::function<bool(char32_t)> pred_;
  Behavior behavior_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

bool optional_bool(const nlohmann::json& j, const JsonPlace& at, std::string_view key, bool fallback) {
  auto v = optional_member(j, key);
  return v ? as_bool(*v, at.child(key)) : fallback;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const JsonPlace& at) {
  std::string type = type_of(j, at);
  if (type == "Split") {
    std::string pattern = read_pattern(member(j, at, "pattern"), at.child("pattern"));
    std::string b = as_string(member(j, at, "behavior"), at.child("behavior"));
    Behavior behavior;
    if (b == "Removed") behavior = Behavior::Removed;
    else if (b == "Isolated") behavior = Behavior::Isolated;
    else if (b == "MergedWithPrevious") behavior = Behavior::MergedWithPrevious;
    else if (b == "MergedWithNext") behavior = Behavior::MergedWithNext;
    else if (b == "Contiguous") behavior = Behavior::Contiguous;
    else at.child("behavior").unsupported(b, "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
    bool invert = optional_bool(j, at, "invert", false);
    try {
      return std::make_unique<Split>(pattern, behavior, invert);
    } catch (const std::runtime_error& e) {
      at.child("pattern").fail(e.what());
    }
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(optional_bool(j, at, "add_prefix_space", true),
                                       optional_bool(j, at, "use_regex", true));
  }
  if (type == "Metaspace") {
    std::string replacement = as_string(member(j, at, "replacement"), at.child("replacement"));
    size_t n = 0;
    if (replacement.empty() || (decode_utf8(replacement, 0, &n), n != replacement.size())) {
      at.child("replacement").fail("expected one character");
    }
    PrependScheme scheme = PrependScheme::Always;
    if (auto s = optional_member(j, "prepend_scheme")) {
      std::string v = as_string(*s, at.child("prepend_scheme"));
      if (v == "always") scheme = PrependScheme::Always;
      else if (v == "first") scheme = PrependScheme::First;
      else if (v == "never") scheme = PrependScheme::Never;
      else at.child("prepend_scheme").unsupported(v, "always, first, never");
    } else if (!optional_bool(j, at, "add_prefix_space", true)) {
      scheme = PrependScheme::Never;
    }
    return std::make_unique<Metaspace>(replacement, scheme, optional_bool(j, at, "split", true));
  }
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "WhitespaceSplit") return std::make_unique<CharSplit>(is_whitespace, Behavior::Removed);
  if (type == "Digits") {
    bool individual = optional_bool(j, at, "individual_digits", false);
    return std::make_unique<CharSplit>(is_numeric, individual ? Behavior::Isolated : Behavior::Contiguous);
  }
  if (type == "Sequence") {
    const auto& list = member(j, at, "pretokenizers");
    auto list_at = at.child("pretokenizers");
    if (!list.is_array()) list_at.fail("expected a list");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) parts.push_back(make_pre_tokenizer(list[i], list_at.index(i)));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  at.child("type").unsupported(type, "Split, ByteLevel, Metaspace, Whitespace, WhitespaceSplit, Digits, Sequence");
}

}  // namespace ropex::tok
