// The Parquet reader against pyarrow: tests/text/make_parquet.py writes Parquet files (several row
// groups and batches, every codec, dictionary, large_string, string_view, nulls, invalid UTF-8,
// every list and integer type for ids, out-of-range and null ids) and what pyarrow reads back from
// each, row by row; every record the reader produces must be equal, numbered the same. Plus the
// errors at open: a missing column, a column of another type, files that are not (whole) Parquet.
// In a build without Arrow (parquet_available() false) only the refusal is tested.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/readers/parquet_reader.h"

namespace fs = std::filesystem;
using ropex::readers::open_parquet_reader;
using ropex::readers::parquet_available;
using ropex::readers::ReaderOptions;
using ropex::readers::ReadError;
using ropex::readers::Record;

namespace {

const fs::path& out_dir() {
  static const fs::path dir = fs::path(ROPEX_TEST_TMP_DIR) / "parquet_reader";
  return dir;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The fixtures, made once per script version and Python by whichever test process comes first (ctest
// runs each test in its own process): a stamp holds a hash of both, a lock serialises the writers.
// The Python (with pyarrow) is the configured ROPEX_PYTHON unless ROPEX_TEST_PYTHON is set in the
// environment (a build that found Arrow in a dependency bundle may have a Python without pyarrow).
const nlohmann::json& expected() {
  static const nlohmann::json data = []() -> nlohmann::json {
    const char* env = std::getenv("ROPEX_TEST_PYTHON");
    const std::string python = env && *env ? env : ROPEX_TEST_PYTHON;
    if (python.empty() || !fs::exists(python)) {
      ADD_FAILURE() << "no Python for the fixtures ('" << python << "'): configure with -DROPEX_PYTHON=.venv/bin/python";
      return nlohmann::json::object();
    }
    const fs::path script = fs::path(ROPEX_SOURCE_DIR) / "tests/text/make_parquet.py";
    const std::string stamp = std::to_string(std::hash<std::string>{}(read_all(script) + "\n" + python));
    fs::create_directories(out_dir().parent_path());
    int lock = ::open((out_dir().string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    const bool fresh = read_all(out_dir() / "stamp") == stamp && fs::exists(out_dir() / "expected.json");
    int rc = 0;
    const std::string cmd = "'" + python + "' '" + script.string() + "' '" + out_dir().string() + "' >/dev/null";
    if (!fresh) {
      fs::remove_all(out_dir());
      fs::create_directories(out_dir());
      rc = std::system(cmd.c_str());
      if (rc == 0) std::ofstream(out_dir() / "stamp") << stamp;
    }
    if (lock >= 0) ::close(lock);  // releases the lock
    if (rc != 0) {
      ADD_FAILURE() << "make_parquet.py failed (" << rc << "; does " << python << " have pyarrow?): " << cmd;
      return nlohmann::json::object();
    }
    return nlohmann::json::parse(read_all(out_dir() / "expected.json"));
  }();
  return data;
}

ReaderOptions options_for(const nlohmann::json& spec) {
  ReaderOptions options;
  if (spec.at("ids").get<bool>()) options.ids_field = spec.at("field").get<std::string>();
  else options.text_field = spec.at("field").get<std::string>();
  return options;
}

const char* kind_name(Record::Kind kind) {
  switch (kind) {
    case Record::Kind::text: return "text";
    case Record::Kind::ids: return "ids";
    case Record::Kind::malformed: return "malformed";
  }
  return "?";
}

// Reads every record of `name` and compares it with pyarrow's reading; returns the records compared.
size_t check_file(const std::string& name, const nlohmann::json& spec) {
  SCOPED_TRACE(name);
  const fs::path path = out_dir() / name;
  auto reader = open_parquet_reader(path.string(), options_for(spec));
  const auto& want = spec.at("records");
  Record record;
  size_t n = 0;
  uint64_t consumed = 0;
  while (reader->next(record)) {
    if (n >= want.size()) {
      ADD_FAILURE() << "more records than pyarrow reads (" << want.size() << ")";
      return n;
    }
    const auto& w = want[n++];
    const std::string kind = w[0].get<std::string>();
    EXPECT_EQ(record.number, w[2].get<int64_t>()) << "record " << n;
    if (kind_name(record.kind) != kind) {
      ADD_FAILURE() << reader->place(record.number) << ": " << kind_name(record.kind) << " '" << record.text
                    << "', expected " << kind << " " << w[1].dump().substr(0, 200);
      continue;
    }
    if (kind == "ids") {
      EXPECT_EQ(record.ids, w[1].get<std::vector<int32_t>>()) << reader->place(record.number);
      EXPECT_TRUE(record.text.empty());
    } else {
      EXPECT_EQ(record.text, w[1].get<std::string>()) << reader->place(record.number);
      EXPECT_TRUE(record.ids.empty());
    }
    const uint64_t now = reader->bytes_consumed();
    EXPECT_GE(now, consumed) << "bytes_consumed went back at " << reader->place(record.number);
    EXPECT_LE(now, fs::file_size(path));
    consumed = now;
  }
  EXPECT_EQ(n, want.size()) << "records read";
  EXPECT_EQ(reader->bytes_consumed(), fs::file_size(path)) << "at the end";
  EXPECT_FALSE(reader->next(record)) << "next after the end";
  return n;
}

class ParquetReader : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!parquet_available()) GTEST_SKIP() << "built without Arrow/Parquet";
    ASSERT_TRUE(expected().contains("files")) << "no fixtures";
  }
  static void check_prefix(const std::string& prefix, size_t min_files) {
    size_t files = 0;
    for (const auto& [name, spec] : expected().at("files").items()) {
      if (name.rfind(prefix, 0) != 0) continue;
      ++files;
      EXPECT_GT(check_file(name, spec), 0u) << name;
    }
    EXPECT_GE(files, min_files) << "fixtures named " << prefix << "*";
  }
};

TEST_F(ParquetReader, CodecsRowGroupsAndNullsMatchPyarrow) {
  for (const char* codec : {"snappy", "zstd", "gzip", "none"}) {
    const std::string name = std::string("text_") + codec + ".parquet";
    EXPECT_EQ(check_file(name, expected().at("files").at(name)), 2500u);
  }
  // Nulls at rows 8, 701 (a row group's first) and 2500 (the last): malformed there, numbered so.
  auto reader = open_parquet_reader((out_dir() / "text_zstd.parquet").string(), {});
  Record record;
  std::vector<int64_t> malformed;
  while (reader->next(record)) {
    if (record.kind == Record::Kind::malformed) {
      EXPECT_EQ(record.text, "null text");
      malformed.push_back(record.number);
    }
  }
  EXPECT_EQ(malformed, (std::vector<int64_t>{8, 701, 2500}));
  EXPECT_EQ(reader->place(701), (out_dir() / "text_zstd.parquet").string() + ": row 701");
}

TEST_F(ParquetReader, PagesAndLargeRowsOverManyBatchesMatchPyarrow) {
  for (const char* name : {"text_plain_pages.parquet", "text_small_pages.parquet", "text_big_rows.parquet"}) {
    check_file(name, expected().at("files").at(name));
  }
}

TEST_F(ParquetReader, DictionaryLargeStringAndStringViewMatchPyarrow) {
  for (const char* name : {"text_dictionary.parquet", "text_large_string.parquet", "text_string_view.parquet"}) {
    check_file(name, expected().at("files").at(name));
  }
}

TEST_F(ParquetReader, InvalidUtf8IsMalformedAtItsByte) {
  const std::string name = "text_invalid_utf8.parquet";
  check_file(name, expected().at("files").at(name));
  auto reader = open_parquet_reader((out_dir() / name).string(), {});
  Record record;
  ASSERT_TRUE(reader->next(record));
  EXPECT_EQ(record.kind, Record::Kind::text);
  ASSERT_TRUE(reader->next(record));
  EXPECT_EQ(record.kind, Record::Kind::malformed);
  EXPECT_EQ(record.text, "invalid UTF-8 at byte 0");
  EXPECT_EQ(record.number, 2);
}

TEST_F(ParquetReader, IdsOfEveryListAndIntegerTypeMatchPyarrow) {
  check_prefix("ids_", 6);
  // The out-of-range and null cases are there and malformed (list<int64>: rows 4, 11, 12, 701).
  auto reader = open_parquet_reader((out_dir() / "ids_list_int64.parquet").string(), {.text_field = "", .ids_field = "ids"});
  Record record;
  std::vector<std::string> malformed;
  while (reader->next(record)) {
    if (record.kind == Record::Kind::malformed) malformed.push_back(std::to_string(record.number) + " " + record.text);
  }
  EXPECT_EQ(malformed, (std::vector<std::string>{"4 id -1 at index 3 is not in [0, 2^31)", "11 null list (no token ids)",
                                                 "12 null id at index 1", "701 id 2147483648 at index 0 is not in [0, 2^31)"}));
}

TEST_F(ParquetReader, EmptyFileHasNoRecords) {
  EXPECT_EQ(check_file("text_empty.parquet", expected().at("files").at("text_empty.parquet")), 0u);
}

TEST_F(ParquetReader, OpenErrorsNameTheFileAndWhatIsWrong) {
  size_t cases = 0;
  for (const auto& [label, spec] : expected().at("errors").items()) {
    SCOPED_TRACE(label);
    ++cases;
    const std::string path = (out_dir() / spec.at("file").get<std::string>()).string();
    try {
      auto reader = open_parquet_reader(path, options_for(spec));
      Record record;
      while (reader->next(record)) {
      }
      ADD_FAILURE() << "no ReadError";
    } catch (const ReadError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      for (const auto& part : spec.at("contains")) EXPECT_NE(what.find(part.get<std::string>()), std::string::npos) << what;
    }
  }
  EXPECT_GE(cases, 13u);
  EXPECT_THROW(open_parquet_reader((out_dir() / "no_such_file.parquet").string(), {}), ReadError);
}

// Damaged data pages behind an intact footer: ReadError (or, where the damage still decodes, records),
// never a crash. Every byte of the middle of the file is flipped in turn over a stride.
TEST_F(ParquetReader, DamagedPagesNeverCrash) {
  const std::string good = read_all(out_dir() / "text_snappy.parquet");
  const fs::path path = out_dir() / "damaged.parquet";
  size_t errors = 0, trials = 0;
  for (size_t at = 4; at + 2000 < good.size(); at += 997) {
    std::string bad = good;
    for (size_t k = 0; k < 16; ++k) bad[at + k] = static_cast<char>(bad[at + k] ^ 0x5A);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    ++trials;
    try {
      auto reader = open_parquet_reader(path.string(), {});
      Record record;
      while (reader->next(record)) {
      }
    } catch (const ReadError& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(trials, 10u);
  EXPECT_GT(errors, 0u) << "no damage was detected at all";
}

}  // namespace

// The stub build's refusal (and the real build's acceptance) of the same file.
// Built with Arrow: the file is opened (a missing one is refused for what it is); the stub: refused
// saying how to get Parquet support. Either build runs one branch; neither skips.
TEST(ParquetAvailability, StubRefusesWithHowToGetIt) {
  try {
    open_parquet_reader("/nonexistent-dir/x.parquet", {});
    ADD_FAILURE() << "no ReadError";
  } catch (const ReadError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/nonexistent-dir/x.parquet"), std::string::npos) << what;
    if (parquet_available()) {
      EXPECT_EQ(what.find("pip install pyarrow"), std::string::npos) << what;
    } else {
      EXPECT_NE(what.find("pip install pyarrow==26.0.1"), std::string::npos) << what;
    }
  }
}
