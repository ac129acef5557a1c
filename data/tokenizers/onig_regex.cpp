#include "data/tokenizers/onig_regex.h"

#include <cctype>
#include <mutex>
#include <stdexcept>

#include <oniguruma.h>

#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

namespace {

void init_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

struct RegionGuard {
  OnigRegion* region = onig_region_new();
  ~RegionGuard() { onig_region_free(region, 1); }
};

}  // namespace

OnigRegex::OnigRegex(const std::string& pattern) {
  init_oniguruma();
  regex_t* reg = nullptr;
  OnigErrorInfo info;
  auto p = reinterpret_cast<const OnigUChar*>(pattern.data());
  int rc = onig_new(&reg, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
  if (rc != ONIG_NORMAL) {
    OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(message, rc, &info);
    throw std::runtime_error("invalid regular expression: " + std::string(reinterpret_cast<char*>(message)));
  }
  regex_ = reg;
}

OnigRegex::~OnigRegex() { onig_free(static_cast<regex_t*>(regex_)); }

void OnigRegex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  out.clear();
  auto reg = static_cast<regex_t*>(regex_);
  RegionGuard guard;
  auto begin = reinterpret_cast<const OnigUChar*>(text.data());
  auto end = begin + text.size();
  size_t pos = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (pos <= text.size()) {
    onig_region_clear(guard.region);
    int r = onig_search(reg, begin, end, begin + pos, end, guard.region, ONIG_OPTION_NONE);
    if (r == ONIG_MISMATCH) break;
    if (r < 0) {
      OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
      onig_error_code_to_str(message, r);
      throw std::runtime_error("regular expression search failed: " + std::string(reinterpret_cast<char*>(message)));
    }
    auto s = static_cast<size_t>(guard.region->beg[0]);
    auto e = static_cast<size_t>(guard.region->end[0]);
    if (s == e && have_last && last_end == e) {
      pos += pos < text.size() ? utf8_len(static_cast<unsigned char>(text[pos])) : 1;
      continue;
    }
    pos = e;
    have_last = true;
    last_end = e;
    out.emplace_back(s, e);
  }
}

std::string OnigRegex::escape(std::string_view literal) {
  // In Oniguruma a backslash before ASCII punctuation always means the character itself.
  std::string out;
  for (char c : literal) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && std::ispunct(u)) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace ropex::tok
