// Fuzz target: data/input/json.h, the depth-bounded JSON parser every other reader goes through
// (parse_json with the default limits), and the helpers that turn a value or an offset into an
// error message (json_excerpt, line_and_column). The input is the document's bytes.
// Rejections (JsonInputError and other std::exception) are fine; an accepted document is walked and
// printed, which must not recurse past the depth limit.
#include "data/input/json.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ropex_fuzz::guard([&] {
    (void)ropex::input::line_and_column(text, size / 2);
    const nlohmann::json j = ropex::input::parse_json(text, "fuzz.json");
    (void)ropex::input::json_excerpt(j);
    (void)ropex::input::json_excerpt(j, 10);
    (void)j.dump();
    const nlohmann::json copy = j;  // copying and comparing recurse over the value
    if (!(copy == j) && !j.is_discarded()) {
      // NaN cannot appear (JSON has no NaN), so a copy equals its source.
      __builtin_trap();
    }
  });
  return 0;
}
