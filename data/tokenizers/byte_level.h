// GPT-2's byte-to-character map, used by the ByteLevel pre-tokenizer and decoder.
//
// Every byte value maps to one visible code point: '!'..'~', '¡'..'¬', '®'..'ÿ' to themselves, the
// other 68 bytes to U+0100, U+0101, ... in byte order (a space is 'Ġ', a newline 'Ċ'). Knows
// nothing of regexes or vocabularies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ropex::tok {

// The UTF-8 text of the character byte `b` maps to.
const std::string& byte_to_char_utf8(unsigned char b);
// The code point byte `b` maps to.
char32_t byte_to_char(unsigned char b);
// The byte a code point stands for, or -1 when it is not one of the 256.
int char_to_byte(char32_t c);
// Appends the mapped characters of every byte of `bytes` to `out`.
void append_byte_level(std::string& out, std::string_view bytes);

}  // namespace ropex::tok
