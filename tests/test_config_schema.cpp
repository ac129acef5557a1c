// Tests for trainer/config_schema: defaults, files, nested and dotted keys,
// the wording of every kind of error (unknown key with suggestion, wrong type,
// range, enum, malformed JSON with line), --set overrides of each type,
// atomic apply, to_json round trip and the markdown table.
// It does not test any real ropex key set (run_config's tests do).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "trainer/config_schema.h"

namespace fs = std::filesystem;
using nlohmann::json;
using ropex::ConfigError;
using ropex::ConfigSchema;

namespace {

struct Settings {
  bool compile = false;
  int64_t steps = 1000;
  int64_t max_positions = 4096;
  double lr = 3e-4;
  double warmup_fraction = 0.01;
  std::string schedule = "cosine";
  std::string name = "run";
  std::vector<int64_t> eval_lengths = {4096, 8192};
  json rope_scaling;  // null: no scaling
};

void bind_settings(ConfigSchema& schema, Settings& s) {
  schema.add("train.compile", &s.compile, "Compile the model.");
  schema.add("train.steps", &s.steps, "Optimizer steps.", 1);
  schema.add("model.max_position_embeddings", &s.max_positions, "Context length.", 1, 1 << 20);
  schema.add("optim.lr", &s.lr, "Peak learning rate.", 0.0);
  schema.add("optim.warmup_fraction", &s.warmup_fraction, "Warmup share of steps.", 0.0, 1.0);
  schema.add("optim.schedule", &s.schedule, "LR schedule.", {"cosine", "linear", "constant"});
  schema.add("run.name", &s.name, "Run name | used in paths.");
  schema.add("eval.lengths", &s.eval_lengths, "Eval context lengths.");
  schema.add("model.rope_scaling", &s.rope_scaling, "HF rope_scaling dict.");
}

class ConfigSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bind_settings(schema, settings);
    const char* root = std::getenv("ROPEX_TEST_TMP");  // ctest sets it
    const fs::path base = (root != nullptr && *root != '\0') ? fs::path(root) : fs::temp_directory_path();
    fs::create_directories(base);
    std::string templ = (base / "ropex-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir = templ;
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // The message of the ConfigError `fn` throws; fails the test if none.
  template <class Fn>
  std::string error_of(Fn&& fn) {
    try {
      fn();
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a ConfigError";
    return "";
  }

  std::string apply_error(const json& doc) {
    return error_of([&] { schema.apply_json(doc, "cfg.json"); });
  }

  Settings settings;
  ConfigSchema schema;
  fs::path dir;
};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

}  // namespace

TEST_F(ConfigSchemaTest, DefaultsAreTheFieldValues) {
  const json expected = {
      {"train", {{"compile", false}, {"steps", 1000}}},
      {"model", {{"max_position_embeddings", 4096}, {"rope_scaling", nullptr}}},
      {"optim", {{"lr", 3e-4}, {"warmup_fraction", 0.01}, {"schedule", "cosine"}}},
      {"run", {{"name", "run"}}},
      {"eval", {{"lengths", {4096, 8192}}}},
  };
  EXPECT_EQ(schema.to_json(), expected);
  EXPECT_EQ(schema.keys(),
            (std::vector<std::string>{"train.compile", "train.steps", "model.max_position_embeddings",
                                      "optim.lr", "optim.warmup_fraction", "optim.schedule", "run.name",
                                      "eval.lengths", "model.rope_scaling"}));
}

TEST_F(ConfigSchemaTest, AppliesNestedFile) {
  const std::string path = write("run.json", R"({
    "train": {"compile": true, "steps": 20},
    "optim": {"lr": 1e-3, "schedule": "linear"},
    "model": {"rope_scaling": {"rope_type": "linear", "factor": 4.0}},
    "eval": {"lengths": [128, 256, 512]}
  })");
  schema.apply_file(path);
  EXPECT_TRUE(settings.compile);
  EXPECT_EQ(settings.steps, 20);
  EXPECT_DOUBLE_EQ(settings.lr, 1e-3);
  EXPECT_EQ(settings.schedule, "linear");
  EXPECT_EQ(settings.rope_scaling, json({{"rope_type", "linear"}, {"factor", 4.0}}));
  EXPECT_EQ(settings.eval_lengths, (std::vector<int64_t>{128, 256, 512}));
  EXPECT_EQ(settings.max_positions, 4096);  // untouched keys keep defaults
}

TEST_F(ConfigSchemaTest, DottedKeysAndEmptySectionsAreAccepted) {
  schema.apply_json({{"optim.lr", 0.5}, {"train", json::object()}}, "cfg.json");
  EXPECT_DOUBLE_EQ(settings.lr, 0.5);
}

TEST_F(ConfigSchemaTest, UnknownKeyNamesSourceKeyAndSuggestion) {
  EXPECT_CONTAINS(apply_error({{"optim", {{"lrr", 1}}}}),
                  "cfg.json: unknown key 'optim.lrr' (did you mean 'optim.lr'?)");
  EXPECT_CONTAINS(apply_error({{"lr", 1}}), "unknown key 'lr' (did you mean 'optim.lr'?)");
  EXPECT_CONTAINS(apply_error({{"optimizer", {{"schedule", "linear"}}}}),
                  "unknown key 'optimizer.schedule' (did you mean 'optim.schedule'?)");
  EXPECT_CONTAINS(apply_error({{"model", {{"rope_scalling", nullptr}}}}),
                  "did you mean 'model.rope_scaling'?");
}

// Suggestions look in the key's own section first (a misspelt section is matched, then the key in
// it), then for the same key in another section, then at registered aliases; a far guess is not
// offered (the section's keys are listed instead).
TEST_F(ConfigSchemaTest, SuggestionsLookInTheKeysOwnSectionFirst) {
  EXPECT_CONTAINS(apply_error({{"optimm", {{"lr", 1}}}}), "unknown key 'optimm.lr' (did you mean 'optim.lr'?)");
  EXPECT_CONTAINS(apply_error({{"optim", {{"steps", 3}}}}), "unknown key 'optim.steps' (did you mean 'train.steps'?)");
  EXPECT_CONTAINS(apply_error({{"optim", {{"zzzzzzzzzz", 1}}}}),
                  "unknown key 'optim.zzzzzzzzzz' (keys of 'optim': lr, warmup_fraction, schedule)");
  EXPECT_CONTAINS(apply_error({{"qqqqqqq", {{"zzzzzzzzzz", 1}}}}),
                  "unknown key 'qqqqqqq.zzzzzzzzzz' (sections: train, model, optim, run, eval)");
  schema.hint_key("learning_rate", "optim.lr");
  EXPECT_CONTAINS(apply_error({{"optim", {{"learning_rate", 1}}}}), "(did you mean 'optim.lr'?)");
  EXPECT_CONTAINS(apply_error({{"learning_rate", 1}}), "(did you mean 'optim.lr'?)");
  // Values: the nearest allowed one only when close; a registered hint otherwise.
  const std::string far = apply_error({{"optim", {{"schedule", "exponential"}}}});
  EXPECT_CONTAINS(far, "must be one of \"cosine\", \"linear\", \"constant\", got \"exponential\"");
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
  schema.hint_value("optim.schedule", "exponential", "ropex has no exponential decay: use \"cosine\"");
  EXPECT_CONTAINS(apply_error({{"optim", {{"schedule", "exponential"}}}}),
                  "got \"exponential\" (ropex has no exponential decay: use \"cosine\")");
  EXPECT_THROW(schema.hint_key("x", "optim.nothing"), std::logic_error);
}

TEST_F(ConfigSchemaTest, NumbersMustBeFinite) {
  EXPECT_CONTAINS(apply_error({{"optim", {{"lr", std::numeric_limits<double>::infinity()}}}}),
                  "key 'optim.lr' must be a finite number, got");
  EXPECT_CONTAINS(apply_error({{"optim", {{"lr", std::nan("")}}}}), "key 'optim.lr' must be a finite number");
}

TEST_F(ConfigSchemaTest, WrongTypeNamesKeyExpectedTypeAndValue) {
  EXPECT_CONTAINS(apply_error({{"optim", {{"lr", "fast"}}}}),
                  "cfg.json: key 'optim.lr' expects float, got \"fast\" (string)");
  EXPECT_CONTAINS(apply_error({{"train", {{"compile", 1}}}}),
                  "key 'train.compile' expects bool, got 1 (number)");
  EXPECT_CONTAINS(apply_error({{"train", {{"steps", true}}}}),
                  "key 'train.steps' expects int, got true (boolean)");
  EXPECT_CONTAINS(apply_error({{"train", {{"steps", 2.5}}}}), "got 2.5 (number), which is not an integer");
  EXPECT_CONTAINS(apply_error({{"run", {{"name", 7}}}}), "key 'run.name' expects string, got 7 (number)");
  EXPECT_CONTAINS(apply_error({{"eval", {{"lengths", {1, "x"}}}}}),
                  "key 'eval.lengths[1]' expects int, got \"x\"");
  EXPECT_CONTAINS(apply_error({{"eval", {{"lengths", 5}}}}), "expects list of int, got 5 (number)");
  EXPECT_CONTAINS(apply_error({{"model", {{"rope_scaling", "linear"}}}}), "expects an object or null");
  EXPECT_CONTAINS(apply_error({{"optim", 3}}),
                  "key 'optim' expects an object (it is a section), got 3 (number)");
  EXPECT_CONTAINS(apply_error(json::array({1, 2})), "cfg.json: expected a JSON object at the top level");
  EXPECT_CONTAINS(apply_error({{"train", {{"steps", 18446744073709551615ULL}}}}), "does not fit in 64 bits");
}

TEST_F(ConfigSchemaTest, IntegralFloatsForIntsAndIntsForFloats) {
  schema.apply_json({{"train", {{"steps", 3.0}}}, {"optim", {{"lr", 1}}}}, "cfg.json");
  EXPECT_EQ(settings.steps, 3);
  EXPECT_DOUBLE_EQ(settings.lr, 1.0);
  schema.apply_json({{"eval", {{"lengths", {16.0, 32}}}}}, "cfg.json");
  EXPECT_EQ(settings.eval_lengths, (std::vector<int64_t>{16, 32}));
}

TEST_F(ConfigSchemaTest, RangeAndEnumErrorsNameTheAllowedValues) {
  EXPECT_CONTAINS(apply_error({{"train", {{"steps", 0}}}}),
                  "cfg.json: key 'train.steps' must be >= 1, got 0");
  EXPECT_CONTAINS(apply_error({{"optim", {{"warmup_fraction", 1.5}}}}),
                  "key 'optim.warmup_fraction' must be in [0.0, 1.0], got 1.5");
  EXPECT_CONTAINS(apply_error({{"optim", {{"lr", -1e-3}}}}), "must be >= 0.0, got -0.001");
  EXPECT_CONTAINS(apply_error({{"model", {{"max_position_embeddings", 1 << 21}}}}),
                  "must be in [1, 1048576], got 2097152");
  EXPECT_CONTAINS(apply_error({{"optim", {{"schedule", "cosin"}}}}),
                  "key 'optim.schedule' must be one of \"cosine\", \"linear\", \"constant\", got \"cosin\" "
                  "(did you mean \"cosine\"?)");
}

TEST_F(ConfigSchemaTest, FailedApplyChangesNothing) {
  apply_error({{"optim", {{"lr", 0.5}}}, {"train", {{"steps", 0}}}});
  EXPECT_DOUBLE_EQ(settings.lr, 3e-4);
  EXPECT_EQ(settings.steps, 1000);
}

TEST_F(ConfigSchemaTest, KeyGivenTwiceInOneDocumentIsAnError) {
  EXPECT_CONTAINS(apply_error({{"optim", {{"lr", 0.1}}}, {"optim.lr", 0.2}}),
                  "key 'optim.lr' is given more than once");
}

TEST_F(ConfigSchemaTest, OverridesParseEachType) {
  schema.apply_override("train.compile=true");
  schema.apply_override("train.steps=42");
  schema.apply_override("model.max_position_embeddings=8192.0");
  schema.apply_override("optim.lr=1e-3");
  schema.apply_override("optim.schedule=linear");
  schema.apply_override("eval.lengths=[1, 2, 3]");
  schema.apply_override(R"(model.rope_scaling={"rope_type":"yarn","factor":8})");
  EXPECT_TRUE(settings.compile);
  EXPECT_EQ(settings.steps, 42);
  EXPECT_EQ(settings.max_positions, 8192);
  EXPECT_DOUBLE_EQ(settings.lr, 1e-3);
  EXPECT_EQ(settings.schedule, "linear");
  EXPECT_EQ(settings.eval_lengths, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(settings.rope_scaling, json({{"rope_type", "yarn"}, {"factor", 8}}));

  schema.apply_override("model.rope_scaling=null");
  EXPECT_TRUE(settings.rope_scaling.is_null());
  schema.apply_override("optim={\"lr\": 0.25}");  // a whole section
  EXPECT_DOUBLE_EQ(settings.lr, 0.25);
}

TEST_F(ConfigSchemaTest, OverridesOfStringKeysTakeTheText) {
  schema.apply_override("run.name=my run");
  EXPECT_EQ(settings.name, "my run");
  schema.apply_override("run.name=\"quoted\"");
  EXPECT_EQ(settings.name, "quoted");
  schema.apply_override("run.name=123");
  EXPECT_EQ(settings.name, "123");
  schema.apply_override("run.name=");
  EXPECT_EQ(settings.name, "");
}

TEST_F(ConfigSchemaTest, OverrideErrorsNameTheAssignment) {
  auto override_error = [&](const std::string& a) { return error_of([&] { schema.apply_override(a); }); };
  EXPECT_CONTAINS(override_error("train.steps"), "--set train.steps: expected section.key=value");
  EXPECT_CONTAINS(override_error("=3"), "expected section.key=value");
  EXPECT_CONTAINS(override_error("train.step=3"),
                  "--set train.step=3: unknown key 'train.step' (did you mean 'train.steps'?)");
  EXPECT_CONTAINS(override_error("train.steps=abc"),
                  "--set train.steps=abc: key 'train.steps' expects int, got \"abc\" (string)");
  EXPECT_CONTAINS(override_error("train.compile=yes"), "expects bool, got \"yes\" (string)");
  EXPECT_CONTAINS(override_error("optim.schedule=step"), "must be one of");
  EXPECT_CONTAINS(override_error("train.steps=-5"), "must be >= 1, got -5");
  EXPECT_CONTAINS(override_error("train.steps=\xff"), "expects int, got \"\xEF\xBF\xBD\" (string)");
}

TEST_F(ConfigSchemaTest, ToJsonRoundTripsThroughAFreshSchema) {
  schema.apply_override("optim.lr=0.1234567890123456789");
  schema.apply_override("eval.lengths=[]");
  schema.apply_override(R"(model.rope_scaling={"rope_type":"llama3","factor":8.0,"low_freq_factor":1})");
  schema.apply_override("run.name=héllo ✓");
  Settings fresh_settings;
  ConfigSchema fresh;
  bind_settings(fresh, fresh_settings);
  fresh.apply_json(schema.to_json(), "round trip");
  EXPECT_EQ(fresh.to_json(), schema.to_json());
  EXPECT_EQ(fresh_settings.lr, settings.lr);  // bit-exact
  EXPECT_EQ(fresh_settings.name, "héllo ✓");
  EXPECT_EQ(fresh_settings.rope_scaling, settings.rope_scaling);
}

TEST_F(ConfigSchemaTest, MalformedJsonFileNamesFileLineAndColumn) {
  const std::string path = write("bad.json", "{\n  \"train\": {\n    \"steps\": 10,\n  }\n}\n");
  const std::string msg = error_of([&] { schema.apply_file(path); });
  EXPECT_CONTAINS(msg, path + ":4:3: invalid JSON");
  EXPECT_CONTAINS(msg, "unexpected '}'");
  EXPECT_EQ(msg.find("[json.exception"), std::string::npos) << msg;

  const std::string truncated = write("truncated.json", "{\"train\": {\"steps\": 1");
  EXPECT_CONTAINS(error_of([&] { schema.apply_file(truncated); }), truncated + ":1:");
  const std::string empty = write("empty.json", "");
  EXPECT_CONTAINS(error_of([&] { schema.apply_file(empty); }), empty + ":1:1: invalid JSON");
}

TEST_F(ConfigSchemaTest, FileErrorsNameThePath) {
  const std::string missing = (dir / "missing.json").string();
  EXPECT_CONTAINS(error_of([&] { schema.apply_file(missing); }), missing + ": cannot open: No such file or directory");
  EXPECT_CONTAINS(error_of([&] { schema.apply_file(dir.string()); }), dir.string() + ": is a directory, not a regular file");
  const std::string path = write("typo.json", R"({"optim": {"lr": "x"}})");
  EXPECT_CONTAINS(error_of([&] { schema.apply_file(path); }), path + ": key 'optim.lr' expects float");
}

TEST_F(ConfigSchemaTest, MarkdownTableShowsRegisteredDefaults) {
  schema.apply_override("optim.lr=0.5");  // must not change the table
  const std::string table = schema.markdown_table();
  EXPECT_EQ(table.rfind("| key | type | default | description |\n|---|---|---|---|\n", 0), 0u) << table;
  EXPECT_CONTAINS(table, "| `optim.lr` | float >= 0.0 | `0.0003` | Peak learning rate. |\n");
  EXPECT_CONTAINS(table, "| `train.steps` | int >= 1 | `1000` | Optimizer steps. |\n");
  EXPECT_CONTAINS(
      table, "| `optim.schedule` | string, one of \"cosine\", \"linear\", \"constant\" | `\"cosine\"` |");
  EXPECT_CONTAINS(table, "| `run.name` | string | `\"run\"` | Run name \\| used in paths. |\n");
  EXPECT_CONTAINS(table, "| `eval.lengths` | list of int | `[4096,8192]` |");
  EXPECT_CONTAINS(table, "| `model.rope_scaling` | object | `null` |");
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2 + 9);
}

TEST_F(ConfigSchemaTest, RegistrationMistakesAreLogicErrors) {
  int64_t x = 0;
  EXPECT_THROW(schema.add("train.steps", &x, "duplicate"), std::logic_error);
  EXPECT_THROW(schema.add("train", &x, "a section already"), std::logic_error);
  EXPECT_THROW(schema.add("train.steps.inner", &x, "under a key"), std::logic_error);
  EXPECT_THROW(schema.add("bad key", &x, "space"), std::logic_error);
  EXPECT_THROW(schema.add("a..b", &x, "empty segment"), std::logic_error);
  EXPECT_THROW(schema.add("ok.key", static_cast<int64_t*>(nullptr), "null"), std::logic_error);
}
