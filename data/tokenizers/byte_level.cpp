#include "data/tokenizers/byte_level.h"

#include <array>

#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<int, 0x200> to_byte{};
  Tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool visible = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = visible ? static_cast<char32_t>(b) : next++;
      append_utf8(to_utf8[b], to_char[b]);
      to_byte[to_char[b]] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_char_utf8(unsigned char b) { return tables().to_utf8[b]; }
char32_t byte_to_char(unsigned char b) { return tables().to_char[b]; }
int char_to_byte(char32_t c) { return c < 0x200 ? tables().to_byte[c] : -1; }

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& t = tables();
  for (char c : bytes) out += t.to_utf8[static_cast<unsigned char>(c)];
}

}  // namespace ropex::tok
