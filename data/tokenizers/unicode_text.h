// UTF-8 and Unicode helpers for the tokenizer.json pipeline: stepping through code points, the
// Unicode properties Rust's `char` methods test (is_whitespace, is_alphanumeric, is_numeric), the
// four normalization forms (via utf8proc) and lowercasing.
//
// Everything works on valid UTF-8; make_valid_utf8 is how the pipeline gets there (invalid bytes
// become U+FFFD the way Rust's String::from_utf8_lossy and Python's errors="replace" do it). It
// does not know about tokens, vocabularies or regexes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ropex::tok {

// Length in bytes of the UTF-8 sequence starting with lead byte `b` (1 for a stray byte).
inline size_t utf8_len(unsigned char b) {
  return b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
}

// The code point at s[i] (valid UTF-8 assumed) and its length.
char32_t decode_utf8(std::string_view s, size_t i, size_t* len);
void append_utf8(std::string& out, char32_t cp);

// Whether `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);
// `s` with every maximal invalid subsequence replaced by U+FFFD (Rust's from_utf8_lossy rule).
std::string make_valid_utf8(std::string_view s);

// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t c);
// Rust's char::is_numeric (general categories Nd, Nl, No).
bool is_numeric(char32_t c);
// Rust's char::is_alphanumeric (Alphabetic or Numeric).
bool is_alphanumeric(char32_t c);
// A combining mark (categories Mn, Mc, Me), what tokenizers' StripAccents removes.
bool is_combining_mark(char32_t c);
// `\w` of Rust's regex crate (Alphabetic, marks, decimal digits, connector punctuation,
// Join_Control), which tokenizers' Whitespace pre-tokenizer uses rather than Oniguruma.
bool is_regex_word(char32_t c);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string unicode_normalize(std::string_view s, NormalForm form);
// tokenizers' Lowercase: each character's lowercase mapping (İ -> i̇, no final-sigma rule).
std::string to_lowercase(std::string_view s);

}  // namespace ropex::tok
