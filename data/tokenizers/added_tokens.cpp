#include "data/tokenizers/added_tokens.h"

#include <algorithm>

#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

std::vector<AddedToken> read_added_tokens(const nlohmann::json& j, const JsonPlace& at) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) at.fail("expected a list");
  for (size_t i = 0; i < j.size(); ++i) {
    auto t_at = at.index(i);
    const auto& t = j[i];
    AddedToken a;
    int64_t id = as_int(member(t, t_at, "id"), t_at.child("id"));
    if (id < 0 || id > INT32_MAX) t_at.child("id").fail("id " + std::to_string(id) + " out of range");
    a.id = static_cast<int32_t>(id);
    a.content = as_string(member(t, t_at, "content"), t_at.child("content"));
    if (a.content.empty()) t_at.child("content").fail("an added token cannot be empty");
    auto flag = [&](const char* key, bool fallback) {
      auto v = optional_member(t, key);
      return v ? as_bool(*v, t_at.child(key)) : fallback;
    };
    a.special = flag("special", false);
    a.normalized = flag("normalized", !a.special);
    a.lstrip = flag("lstrip", false);
    a.rstrip = flag("rstrip", false);
    a.single_word = flag("single_word", false);
    out.push_back(std::move(a));
  }
  return out;
}

void TokenMatcher::build(const std::vector<std::string>& patterns, const std::vector<const AddedToken*>& tokens) {
  nodes_.assign(1, Node{});
  tokens_ = tokens;
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  for (size_t t = 0; t < patterns.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    first_byte_[static_cast<unsigned char>(p[0])] = true;
    int32_t node = 0;
    for (char ch : p) {
      auto c = static_cast<unsigned char>(ch);
      int32_t next = -1;
      for (auto& [b, child] : nodes_[node].children) {
        if (b == c) next = child;
      }
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(c, next);
        nodes_.push_back(Node{});
      }
      node = next;
    }
    // The first of two equal patterns wins, as in the Aho-Corasick automaton.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
}

namespace {

char32_t last_char(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t n = 0;
  return decode_utf8(s, start, &n);
}

bool is_word_char(char32_t c) { return is_alphanumeric(c) || c == '_'; }

}  // namespace

void TokenMatcher::split(std::string_view text, std::vector<Part>& out) const {
  out.clear();
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost position where some pattern matches, longest pattern there.
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = pos; k < text.size(); ++k) {
      auto c = static_cast<unsigned char>(text[k]);
      int32_t next = -1;
      for (auto& [b, child] : nodes_[node].children) {
        if (b == c) next = child;
      }
      if (next < 0) break;
      node = next;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = k + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = best_end;
    pos = best_end;
    const AddedToken* token = tokens_[best];
    if (token->single_word) {
      bool start_space = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      size_t n = 0;
      bool stop_space = stop == text.size() || !is_word_char(decode_utf8(text, stop, &n));
      if (!start_space || !stop_space) continue;
    }
    if (token->lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t b = s - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
        size_t n = 0;
        if (!is_whitespace(decode_utf8(text, b, &n))) break;
        s = b;
      }
      start = std::max(s, start_offset);
    }
    if (token->rstrip) {
      size_t n = 0;
      while (stop < text.size() && is_whitespace(decode_utf8(text, stop, &n))) stop += n;
    }
    if (start_offset < start) out.push_back({nullptr, start_offset, start});
    out.push_back({token, start, stop});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({nullptr, start_offset, text.size()});
}

}  // namespace ropex::tok
