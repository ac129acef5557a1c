// The untrusted-input readers on their own: data/input (bounded JSON, regular files), the
// checkpoint state and folder names (trainer/checkpoint_state.h) and where the tokenizer cuts a
// long text (data/tokenizer.h). The same cases through the ropex binary: test_hostile_input.cpp.
#include "data/input/files.h"
#include "data/input/json.h"
#include "trainer/checkpoint_state.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using input::JsonInputError;

std::string error_text(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(InputJson, NestingIsBoundedAtTheLimitAndNotBelow) {
  const auto nested = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_NO_THROW(input::parse_json(nested(64), "s"));  // the limit itself is accepted
  EXPECT_TRUE(has(error_text([&] { input::parse_json(nested(65), "s"); }), "s: nested deeper than 64 levels"));
  EXPECT_TRUE(has(error_text([&] { input::parse_json(nested(1000000), "s"); }), "nested deeper than 64 levels"));
  const std::string objects = R"({"a": {"b": [)" + nested(70) + "]}}";
  EXPECT_TRUE(has(error_text([&] { input::parse_json(objects, "s"); }), "nested deeper than 64 levels"));
  input::JsonLimits loose;
  loose.max_depth = 200;
  EXPECT_NO_THROW(input::parse_json(nested(150), "s", loose));
}

TEST(InputJson, ErrorsNameThePlaceAndTheKeyPathInWords) {
  EXPECT_EQ(error_text([] { input::parse_json("{\"a\": 1, \"a\": 2}", "f.json"); }),
            "f.json: duplicate key 'a' in the top-level object (JSON keys must be unique)");
  EXPECT_TRUE(has(error_text([] { input::parse_json(R"({"x": [{"k": 1, "k": 1}]})", "f.json"); }), "duplicate key 'k' in 'x[0]'"));
  const std::string overflow = error_text([] { input::parse_json("{\n  \"optim\": {\"lr\": 1e400}}", "f.json"); });
  EXPECT_TRUE(has(overflow, "f.json:2:")) << overflow;
  EXPECT_TRUE(has(overflow, "the number 1e400 does not fit in a double")) << overflow;
  EXPECT_TRUE(has(overflow, "(under 'optim.lr')")) << overflow;
  EXPECT_FALSE(has(overflow, "json.exception")) << overflow;
  EXPECT_TRUE(has(error_text([] { input::parse_json("[1, 2, -1e999]", "f"); }), "(under '[2]')"));
  EXPECT_TRUE(has(error_text([] { input::parse_json("{\"a\": tru}", "f"); }), "f:1:"));
  EXPECT_TRUE(has(error_text([] { input::parse_json("", "empty"); }), "empty:1:1: invalid JSON"));
  EXPECT_TRUE(has(error_text([] { input::parse_json("{} x", "f"); }), "invalid JSON"));  // trailing text
  try {
    input::parse_json("{\"a\": 1, \"a\": 2}", "f.json");
  } catch (const JsonInputError& e) {
    EXPECT_EQ(e.reason(), "duplicate key 'a' in the top-level object (JSON keys must be unique)");
  }
  // Duplicates may be allowed by a caller; the last one wins then, as in nlohmann.
  input::JsonLimits lenient;
  lenient.reject_duplicate_keys = false;
  EXPECT_EQ(input::parse_json("{\"a\": 1, \"a\": 2}", "f", lenient)["a"], 2);
}

TEST(InputJson, ExcerptsAreBoundedInDepthAndLength) {
  json deep = json::array();
  for (int i = 0; i < 50; ++i) deep = json::array({deep});
  EXPECT_EQ(input::json_excerpt(deep), "[[[...]]]");
  const std::string excerpt = input::json_excerpt(json(std::string(10000, 'x')), 40);
  EXPECT_LE(excerpt.size(), 43u);
  EXPECT_EQ(input::json_excerpt(json{{"a", 1}}), "{\"a\": 1}");
  EXPECT_EQ(input::json_excerpt(json(std::string("\xff"))), "\"\xEF\xBF\xBD\"");  // invalid UTF-8 replaced, no throw
}

TEST(InputJson, FlagValuesAreJsonOrTheirText) {
  EXPECT_EQ(input::parse_json_or_text("3e-4", "--set"), json(3e-4));
  EXPECT_EQ(input::parse_json_or_text("abc", "--set"), json("abc"));
  EXPECT_EQ(input::parse_json_or_text("{\"a\": [1]}", "--set"), json({{"a", {1}}}));
  EXPECT_THROW(input::parse_json_or_text("1e400", "--set"), JsonInputError);  // meant as a number
  EXPECT_THROW(input::parse_json_or_text("[1, 2", "--set"), JsonInputError);
}

TEST(InputFiles, OnlyRegularFilesOfASaneSizeAreRead) {
  TempDir dir("input");
  const std::string fifo = dir.str() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_TRUE(has(error_text([&] { input::read_regular_file(fifo, "a config", 1 << 20); }), "is a FIFO (named pipe), not a regular file"));
  EXPECT_TRUE(has(error_text([&] { input::require_regular_file(dir.path, "a config"); }), "is a directory"));
  EXPECT_TRUE(has(error_text([&] { input::read_regular_file(dir.str() + "/none", "a config", 1 << 20); }),
                  "none: cannot open: No such file or directory (expected a config)"));
  const std::string big = dir.str() + "/big.json";
  std::ofstream(big) << std::string(2000, ' ') << "{}";
  EXPECT_TRUE(has(error_text([&] { input::read_json_file(big, "a config", 1000); }), "is 2002 bytes, more than the 1000 bytes"));
  EXPECT_EQ(input::read_json_file(big, "a config", 4096), json::object());
}

TEST(CheckpointState, FieldsAreCheckedAndVersionOneGetsItsDefaults) {
  const json v2 = {{"format", "ropex-checkpoint"}, {"version", 2}, {"step", 4}, {"optimizer_steps", 3}, {"tokens_seen", 512},
                   {"world_size", 2}, {"seed", 18446744073709551615ull}, {"skipped_steps", 1}, {"consecutive_skips", 0}};
  const TrainerState s = trainer_state_from_json(v2, "ts.json", 4);
  EXPECT_EQ(s.step, 4);
  EXPECT_EQ(s.optimizer_steps, 3);
  EXPECT_EQ(s.seed, 18446744073709551615ull);  // every uint64 seed is valid
  const TrainerState back = trainer_state_from_json(trainer_state_to_json(s), "ts.json", std::nullopt);
  EXPECT_EQ(back.skipped_steps, 1);
  const json v1 = {{"format", "ropex-checkpoint"}, {"version", 1}, {"step", 4}, {"tokens_seen", 512}, {"world_size", 1}, {"seed", 0}};
  const TrainerState old = trainer_state_from_json(v1, "ts.json", 4);
  EXPECT_EQ(old.optimizer_steps, 4);
  EXPECT_EQ(old.skipped_steps, 0);
  json missing = v2;
  missing.erase("optimizer_steps");  // only version 1 may lack it
  EXPECT_TRUE(has(error_text([&] { trainer_state_from_json(missing, "ts.json", 4); }), "ts.json: key 'optimizer_steps' is missing"));
  EXPECT_TRUE(has(error_text([&] { trainer_state_from_json(v2, "ts.json", 5); }), "is 4 but the folder's name says step 5"));
  json consecutive = v2;
  consecutive["consecutive_skips"] = 2;  // more in a row than in all
  EXPECT_TRUE(has(error_text([&] { trainer_state_from_json(consecutive, "ts.json", 4); }), "key 'consecutive_skips' must be an integer in [0, 1]"));
}

TEST(CheckpointState, FolderNamesGiveStepsOnlyInTheirRange) {
  EXPECT_EQ(step_of_checkpoint_name("step_00000100"), 100);
  EXPECT_EQ(step_of_checkpoint_name("step_1099511627776"), int64_t{1} << 40);
  EXPECT_EQ(step_of_checkpoint_name("step_1099511627777"), std::nullopt);
  EXPECT_EQ(step_of_checkpoint_name("step_99999999999999999999"), std::nullopt);
  EXPECT_EQ(step_of_checkpoint_name("step_100"), std::nullopt);  // fewer than 8 digits: not a name ropex writes
  EXPECT_EQ(step_of_checkpoint_name("step_0000010x"), std::nullopt);
  EXPECT_EQ(step_of_checkpoint_name("step_00000100.partial"), std::nullopt);
}

}  // namespace
}  // namespace ropex::test
