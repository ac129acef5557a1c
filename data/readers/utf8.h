// UTF-8 validation for corpus text: where the first byte is that is not part of valid UTF-8.
// Valid means no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no cut
// sequences. It does not normalize or repair anything.
#pragma once

#include <cstddef>
#include <string_view>

namespace ropex::readers {

// Offset of the first byte of `s` that is not part of valid UTF-8, or std::string_view::npos.
size_t first_invalid_utf8(std::string_view s);

}  // namespace ropex::readers
