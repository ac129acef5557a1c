// Tests for models/safetensors.{h,cpp}: round trips (single file and sharded), stale-layout
// cleanup, parse_size/parse_dtype, and rejection of malformed files and indexes with errors that
// name the file and the tensor or key.
#include "models/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
using namespace ropex::st;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ropex-st-" + std::string(info->name()) + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// Bytes 0, 1, 2, ... offset by `seed`, so that every tensor's content differs.
std::vector<unsigned char> pattern_bytes(size_t n, unsigned seed) {
  std::vector<unsigned char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(i * 7 + seed);
  return v;
}

// A tensor plus the buffer it points into.
struct OwnedTensor {
  TensorView view;
  std::vector<unsigned char> bytes;
};

std::vector<OwnedTensor> make_tensors(
    const std::vector<std::tuple<std::string, DType, std::vector<int64_t>>>& specs) {
  std::vector<OwnedTensor> out;
  unsigned seed = 1;
  for (const auto& [name, dtype, shape] : specs) {
    OwnedTensor t{{name, dtype, shape, nullptr}, pattern_bytes(nbytes(dtype, shape), seed++)};
    out.push_back(std::move(t));
  }
  for (auto& t : out) t.view.data = t.bytes.data();
  return out;
}

std::vector<TensorView> views(const std::vector<OwnedTensor>& ts) {
  std::vector<TensorView> v;
  for (const auto& t : ts) v.push_back(t.view);
  return v;
}

bool bytes_equal(const void* p, const std::vector<unsigned char>& expected) {
  return expected.empty() || std::memcmp(p, expected.data(), expected.size()) == 0;
}

void write_bytes(const std::string& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// A raw safetensors file: the given header text, `data_len` data bytes; the length field is the
// header's size unless `length_field` overrides it.
void write_raw(const std::string& file, const std::string& header, size_t data_len,
               std::optional<uint64_t> length_field = std::nullopt) {
  write_bytes(file, le64(length_field.value_or(header.size())) + header + std::string(data_len, '\x01'));
}

// Expects fn() to throw std::runtime_error whose message contains every substring.
void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> substrings) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& s : substrings) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
    return;
  }
  ADD_FAILURE() << "expected std::runtime_error";
}

// Expects opening FILE (a raw file written with `header`) to fail naming the file and `keys`.
void expect_bad_header(const std::string& file, const std::string& header, size_t data_len,
                       std::initializer_list<std::string> keys) {
  write_raw(file, header, data_len);
  std::vector<std::string> want{file};
  want.insert(want.end(), keys);
  try {
    SafetensorsFile f(file);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& s : want) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
    return;
  }
  ADD_FAILURE() << "expected std::runtime_error for header " << header;
}

// ---------------------------------------------------------------------------------------------
// round trips

TEST_F(SafetensorsTest, RoundTripSeveralDtypes) {
  auto ts = make_tensors({{"w.f32", DType::F32, {2, 3}},
                          {"w.bf16", DType::BF16, {5}},
                          {"scalar", DType::I64, {}},
                          {"empty", DType::F16, {0, 4}},
                          {"bytes", DType::U8, {3, 1, 2}},
                          {"mask", DType::BOOL, {3}},
                          {"d", DType::F64, {2}},
                          {"f8", DType::F8_E4M3, {4}}});
  const std::string file = path("a.safetensors");
  write_file(file, views(ts), {{"step", "7"}});

  SafetensorsFile f(file);
  EXPECT_EQ(f.path(), file);
  EXPECT_EQ(f.header_size() % 8, 0u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("step"), "7");
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(f.tensors()[i].name, ts[i].view.name) << "laid out in the given order";
    const TensorInfo& t = f.at(ts[i].view.name);
    EXPECT_EQ(t.dtype, ts[i].view.dtype);
    EXPECT_EQ(t.shape, ts[i].view.shape);
    EXPECT_EQ(t.end - t.begin, ts[i].bytes.size());
    EXPECT_TRUE(bytes_equal(f.data(t), ts[i].bytes)) << t.name;
  }
  EXPECT_EQ(f.at("scalar").numel(), 1);
  EXPECT_EQ(f.at("empty").numel(), 0);
  EXPECT_EQ(f.find("absent"), nullptr);
  expect_error([&] { f.at("absent"); }, {file, "absent"});
  EXPECT_FALSE(fs::exists(file + ".tmp-" + std::to_string(::getpid())));
}

TEST_F(SafetensorsTest, EmptyDataSection) {
  const std::string none = path("none.safetensors");
  write_file(none, {});
  SafetensorsFile f(none);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.metadata().at("format"), "pt");

  const std::string zeros = path("zeros.safetensors");
  write_file(zeros, {{"a", DType::F32, {0}, nullptr}, {"b", DType::BF16, {3, 0}, nullptr}});
  SafetensorsFile g(zeros);
  ASSERT_EQ(g.tensors().size(), 2u);
  EXPECT_EQ(fs::file_size(zeros), 8 + g.header_size());
  EXPECT_NE(g.data(g.at("b")), nullptr);
}

TEST_F(SafetensorsTest, MoveKeepsMappingValid) {
  auto ts = make_tensors({{"x", DType::I32, {4}}});
  write_file(path("m.safetensors"), views(ts));
  SafetensorsFile a(path("m.safetensors"));
  SafetensorsFile b(std::move(a));
  EXPECT_TRUE(bytes_equal(b.data(b.at("x")), ts[0].bytes));
  SafetensorsFile c(path("m.safetensors"));
  c = std::move(b);
  EXPECT_TRUE(bytes_equal(c.data(c.at("x")), ts[0].bytes));
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  const std::string file = path("w.safetensors");
  float x = 0;
  expect_error([&] { write_file(file, {{"a", DType::F32, {1}, &x}, {"a", DType::F32, {1}, &x}}); },
               {file, "'a'", "duplicate"});
  expect_error([&] { write_file(file, {{"a", DType::F32, {-1}, &x}}); }, {file, "'a'", "negative"});
  expect_error([&] { write_file(file, {{"a", DType::F32, {1}, nullptr}}); }, {file, "'a'", "null"});
  expect_error([&] { write_file(file, {{"__metadata__", DType::F32, {1}, &x}}); }, {file, "__metadata__"});
  expect_error([&] { write_file(file, {}, {{"format", "np"}}); }, {file, "format"});
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::is_empty(dir_)) << "no temporary file left behind";
}

// Reads every tensor of `ts` back through a CheckpointReader on dir.
void expect_checkpoint_equals(const std::string& dir, const std::vector<OwnedTensor>& ts) {
  CheckpointReader r(dir);
  std::vector<std::string> expected;
  for (const auto& t : ts) expected.push_back(t.view.name);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(r.names(), expected);
  for (const auto& t : ts) {
    ASSERT_TRUE(r.contains(t.view.name));
    EXPECT_EQ(r.info(t.view.name).shape, t.view.shape);
    EXPECT_EQ(r.info(t.view.name).dtype, t.view.dtype);
    EXPECT_TRUE(bytes_equal(r.data(t.view.name), t.bytes)) << t.view.name;
  }
}

TEST_F(SafetensorsTest, ShardedRoundTrip) {
  // 400, 400, 400, 1600 (over the limit: alone), 400 bytes with a 1000-byte limit.
  auto ts = make_tensors({{"l0", DType::F32, {100}},
                          {"l1", DType::F32, {10, 10}},
                          {"l2", DType::BF16, {200}},
                          {"big", DType::F32, {400}},
                          {"l4", DType::U8, {400}}});
  const std::string dir = dir_.string();
  write_checkpoint(dir, views(ts), 1000, {{"note", "x"}});

  for (const char* f : {"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                        "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                        "model.safetensors.index.json"})
    EXPECT_TRUE(fs::exists(dir_ / f)) << f;
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors"));

  expect_checkpoint_equals(dir, ts);
  CheckpointReader r(dir);
  EXPECT_TRUE(r.sharded());
  EXPECT_EQ(r.file_of("l0"), "model-00001-of-00004.safetensors");
  EXPECT_EQ(r.file_of("l1"), "model-00001-of-00004.safetensors");
  EXPECT_EQ(r.file_of("l2"), "model-00002-of-00004.safetensors");
  EXPECT_EQ(r.file_of("big"), "model-00003-of-00004.safetensors");
  EXPECT_EQ(r.file_of("l4"), "model-00004-of-00004.safetensors");
  EXPECT_EQ(SafetensorsFile(path("model-00002-of-00004.safetensors")).metadata().at("note"), "x");
  expect_error([&] { r.info("nope"); }, {dir, "nope"});

  std::ifstream in(dir_ / "model.safetensors.index.json");
  const std::string index((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(index.find("\"total_size\": 3200"), std::string::npos) << index;
}

TEST_F(SafetensorsTest, SingleFileWhenLimitLargeAndStaleLayoutRemoved) {
  auto ts = make_tensors({{"a", DType::F32, {100}}, {"b", DType::F32, {100}}, {"c", DType::F32, {100}}});
  const std::string dir = dir_.string();
  write_bytes(path("config.json"), "{}");
  write_checkpoint(dir, views(ts), 500);  // 3 shards
  EXPECT_TRUE(fs::exists(dir_ / "model-00003-of-00003.safetensors"));

  write_checkpoint(dir, views(ts), 1200);  // fits exactly: single file, old shards + index go
  EXPECT_TRUE(fs::exists(dir_ / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir_ / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "config.json")) << "unrelated files are kept";
  expect_checkpoint_equals(dir, ts);
  EXPECT_FALSE(CheckpointReader(dir).sharded());
  EXPECT_EQ(CheckpointReader(dir).file_of("b"), "model.safetensors");

  write_checkpoint(dir, views(ts), 0);  // unlimited
  expect_checkpoint_equals(dir, ts);

  write_checkpoint(dir, views(ts), 800);  // back to 2 shards: model.safetensors goes
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "model-00002-of-00002.safetensors"));
  expect_checkpoint_equals(dir, ts);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 4) << "2 shards, index, config";
}

TEST_F(SafetensorsTest, ParseSize) {
  EXPECT_EQ(parse_size("5GB"), 5'000'000'000ull);
  EXPECT_EQ(parse_size("500MB"), 500'000'000ull);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("64kib"), 64ull << 10);
  EXPECT_EQ(parse_size("1048576"), 1048576ull);
  EXPECT_EQ(parse_size("10 MB"), 10'000'000ull);
  EXPECT_EQ(parse_size("0"), 0ull);
  EXPECT_EQ(parse_size("1.5GB"), 1'500'000'000ull);  // decimals, when they give whole bytes
  EXPECT_EQ(parse_size("0.25KiB"), 256ull);
  for (const char* bad : {"", "GB", "5XB", "-5GB", "1.5B", "0.1KiB", ".", "5GB ", "99999999999999999999", "20000000TB"})
    expect_error([&] { parse_size(bad); }, {std::string("'") + bad + "'"});
}

TEST_F(SafetensorsTest, DTypeNames) {
  for (DType d : {DType::BOOL, DType::U8, DType::I8, DType::I16, DType::U16, DType::I32, DType::U32, DType::I64,
                  DType::U64, DType::F16, DType::BF16, DType::F32, DType::F64, DType::F8_E4M3, DType::F8_E5M2})
    EXPECT_EQ(parse_dtype(dtype_name(d), "ctx"), d);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  expect_error([] { parse_dtype("float32", "my context"); }, {"my context", "float32", "BF16", "F8_E5M2"});
}

// ---------------------------------------------------------------------------------------------
// malformed files

TEST_F(SafetensorsTest, BadPaths) {
  expect_error([] { SafetensorsFile f(""); }, {"empty path"});
  expect_error([&] { SafetensorsFile f(path("missing.safetensors")); }, {path("missing.safetensors"), "cannot open"});
  expect_error([&] { SafetensorsFile f(dir_.string()); }, {dir_.string(), "not a regular file"});
  expect_error([&] { CheckpointReader r(path("nodir")); }, {path("nodir"), "directory"});
  expect_error([&] { CheckpointReader r(dir_.string()); }, {dir_.string(), "model.safetensors"});
}

TEST_F(SafetensorsTest, TruncatedInData) {
  auto ts = make_tensors({{"first", DType::F32, {16}}, {"last", DType::F32, {16}}});
  const std::string file = path("t.safetensors");
  write_file(file, views(ts));
  fs::resize_file(file, fs::file_size(file) - 70);  // cuts into "first", removes "last"
  expect_error([&] { SafetensorsFile f(file); }, {file, "beyond the data section"});

  write_file(file, views(ts));
  fs::resize_file(file, fs::file_size(file) - 10);  // cuts into "last" only
  expect_error([&] { SafetensorsFile f(file); }, {file, "'last'", "beyond the data section"});
}

TEST_F(SafetensorsTest, ShorterThanEightBytes) {
  const std::string file = path("s.safetensors");
  write_bytes(file, "abc");
  expect_error([&] { SafetensorsFile f(file); }, {file, "3 bytes"});
  write_bytes(file, "");
  expect_error([&] { SafetensorsFile f(file); }, {file, "0 bytes"});
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFileOrAbsurd) {
  const std::string file = path("h.safetensors");
  write_raw(file, "{}", 0, 1000);
  expect_error([&] { SafetensorsFile f(file); }, {file, "header length 1000", "beyond the file"});
  write_raw(file, "{}", 0, 200'000'000);
  expect_error([&] { SafetensorsFile f(file); }, {file, "limit"});
  write_raw(file, "{}", 0, ~0ull);  // 8 + N would wrap around
  expect_error([&] { SafetensorsFile f(file); }, {file, "header length"});
}

TEST_F(SafetensorsTest, HeaderNotJsonOrNotObject) {
  const std::string file = path("j.safetensors");
  expect_bad_header(file, "{\"a\": {\"dtype\"", 0, {"JSON"});
  expect_bad_header(file, "{\"a\xff\": 1}", 0, {"JSON"});  // invalid UTF-8
  expect_bad_header(file, "[1, 2, 3]", 0, {"JSON object", "array"});
  expect_bad_header(file, "\"str\"", 0, {"JSON object"});
}

TEST_F(SafetensorsTest, BadEntries) {
  const std::string f = path("e.safetensors");
  expect_bad_header(f, R"({"w": {"dtype": "F17", "shape": [1], "data_offsets": [0, 4]}})", 4, {"'w'", "F17", "BF16"});
  expect_bad_header(f, R"({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", 4, {"'w'", "dtype"});
  expect_bad_header(f, R"({"w": [1]})", 4, {"'w'", "object"});
  expect_bad_header(f, R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"'w'", "missing \"dtype\""});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, {"'w'", "missing \"shape\""});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [1]}})", 4, {"'w'", "missing \"data_offsets\""});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4, {"'w'", "non-negative"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4, {"'w'", "shape"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4, {"'w'", "shape"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 4, {"'w'", "data_offsets"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, -4]}})", 4, {"'w'", "data_offsets"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}})", 4, {"'w'", "begin > end"});
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  expect_bad_header(path("o.safetensors"), R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
                    {"'w'", "[0, 8]", "beyond the data section (4 bytes"});
}

TEST_F(SafetensorsTest, OverlapGapAndTrailingBytes) {
  const std::string f = path("l.safetensors");
  expect_bad_header(f,
                    R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                    12, {"'b'", "overlap", "'a'"});
  expect_bad_header(f,
                    R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                    12, {"'b'", "gap"});
  expect_bad_header(f, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8, {"'a'", "gap"});
  expect_bad_header(f, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8, {"trailing"});
}

TEST_F(SafetensorsTest, UnorderedRegionsAreFine) {
  const std::string f = path("u.safetensors");
  write_raw(f,
            R"({"b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},
                "z": {"dtype": "U8", "shape": [0], "data_offsets": [2, 2]},
                "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}})",
            4);
  SafetensorsFile file(f);
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.tensors()[0].name, "a");
  EXPECT_EQ(file.tensors()[2].name, "b");
  EXPECT_TRUE(file.metadata().empty());
}

TEST_F(SafetensorsTest, ShapeDtypeMismatchAndOverflow) {
  const std::string f = path("m.safetensors");
  expect_bad_header(f, R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 4]}})", 4,
                    {"'w'", "needs 6 bytes", "span 4"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4,
                    {"'w'", "overflow"});
  expect_bad_header(f, R"({"w": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 4]}})", 4,
                    {"'w'", "overflow"});
}

TEST_F(SafetensorsTest, DuplicateKeys) {
  const std::string f = path("d.safetensors");
  expect_bad_header(f,
                    R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                        "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                    8, {"duplicate key 'w'"});
  expect_bad_header(f, R"({"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})", 4,
                    {"duplicate key 'dtype'", "'w'"});
}

TEST_F(SafetensorsTest, BadMetadata) {
  const std::string f = path("md.safetensors");
  expect_bad_header(f, R"({"__metadata__": {"format": 1}})", 0, {"__metadata__", "'format'", "string"});
  expect_bad_header(f, R"({"__metadata__": ["pt"]})", 0, {"__metadata__", "object"});
}

// ---------------------------------------------------------------------------------------------
// malformed indexes

class IndexTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    ts_ = make_tensors({{"a", DType::F32, {100}}, {"b", DType::F32, {100}}, {"c", DType::F32, {100}}});
    write_checkpoint(dir_.string(), views(ts_), 500);  // 3 shards of one tensor each
  }
  void write_index(const std::string& weight_map) {
    write_bytes(path("model.safetensors.index.json"), "{\"metadata\": {}, \"weight_map\": " + weight_map + "}");
  }
  void expect_reader_error(std::initializer_list<std::string> substrings) {
    std::vector<std::string> want{dir_.string()};
    want.insert(want.end(), substrings);
    try {
      CheckpointReader r(dir_.string());
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      for (const auto& s : want) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
      return;
    }
    ADD_FAILURE() << "expected std::runtime_error";
  }
  std::vector<OwnedTensor> ts_;
};

constexpr const char* kS1 = "model-00001-of-00003.safetensors";
constexpr const char* kS2 = "model-00002-of-00003.safetensors";
constexpr const char* kS3 = "model-00003-of-00003.safetensors";

TEST_F(IndexTest, ValidIndexReads) { expect_checkpoint_equals(dir_.string(), ts_); }

TEST_F(IndexTest, MissingShard) {
  fs::remove(dir_ / kS2);
  expect_reader_error({"model.safetensors.index.json", "'b'", kS2, "does not exist"});
}

TEST_F(IndexTest, TensorAbsentFromItsShard) {
  write_index(std::string(R"({"a": ")") + kS1 + R"(", "b": ")" + kS2 + R"(", "c": ")" + kS3 + R"(", "x": ")" +
              kS1 + "\"}");
  expect_reader_error({"model.safetensors.index.json", "'x'", kS1, "not in it"});
  write_index(std::string(R"({"a": ")") + kS2 + R"(", "b": ")" + kS2 + R"(", "c": ")" + kS3 + "\"}");
  expect_reader_error({"'a'", kS2});
}

TEST_F(IndexTest, FileNameEscapingDir) {
  write_index(std::string(R"({"a": "../model-00001-of-00003.safetensors", "b": ")") + kS2 + R"(", "c": ")" +
              kS3 + "\"}");
  expect_reader_error({"'a'", "../model-00001-of-00003.safetensors", "plain file name"});
  write_index(R"({"a": "/etc/passwd"})");
  expect_reader_error({"'a'", "/etc/passwd"});
}

TEST_F(IndexTest, TensorInTwoShards) {
  std::vector<TensorView> dup = {ts_[0].view, ts_[1].view};  // shard 2 now holds "a" and "b"
  write_file(path(kS2), dup);
  write_index(std::string(R"({"a": ")") + kS1 + R"(", "b": ")" + kS2 + R"(", "c": ")" + kS3 + "\"}");
  expect_reader_error({"'a'", "two shards", kS1, kS2});
}

TEST_F(IndexTest, UnindexedTensorInShard) {
  write_index(std::string(R"({"a": ")") + kS1 + R"(", "b": ")" + kS2 + "\"}");  // shard 3 not named: ignored
  expect_checkpoint_equals(dir_.string(), {ts_[0], ts_[1]});
  write_file(path(kS2), {ts_[1].view, ts_[2].view});  // "c" hides in shard 2
  expect_reader_error({"'c'", kS2, "missing from weight_map"});
}

TEST_F(IndexTest, MalformedIndexJson) {
  write_bytes(path("model.safetensors.index.json"), "{\"weight_map\": ");
  expect_reader_error({"model.safetensors.index.json", "JSON"});
  write_bytes(path("model.safetensors.index.json"), "[]");
  expect_reader_error({"model.safetensors.index.json", "object"});
  write_bytes(path("model.safetensors.index.json"), R"({"weight_map": []})");
  expect_reader_error({"weight_map"});
  write_bytes(path("model.safetensors.index.json"), R"({"weight_map": {"a": 1}})");
  expect_reader_error({"'a'", "file name"});
  write_bytes(path("model.safetensors.index.json"), R"({"weight_map": {"a": "x", "a": "y"}})");
  expect_reader_error({"duplicate key 'a'"});
}

TEST_F(IndexTest, BadShardContentNamesShard) {
  write_bytes(path(kS3), "junk");
  expect_reader_error({kS3, "4 bytes"});
}

TEST_F(IndexTest, BothLayoutsPresent) {
  write_file(path("model.safetensors"), views(ts_));
  expect_reader_error({"both"});
}

}  // namespace
