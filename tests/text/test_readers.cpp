// data/readers: format detection (name and first bytes), gzip / zstd streams against one-shot
// compression by zlib and libzstd themselves (several members / frames, lines crossing the 1 MiB
// buffers), .jsonl text and ids records, .txt documents, and the errors: truncated and corrupt
// streams, trailing garbage, mislabelled files, malformed records with their line numbers.
// Parquet is tested in test_parquet_reader.cpp; prepare's use of readers in tests/test_corpus_formats.cpp.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/readers/format.h"
#include "data/readers/reader.h"
#include "data/readers/utf8.h"

namespace fs = std::filesystem;
using namespace ropex::readers;

namespace {

struct Dir {
  Dir() {
    path = fs::path(ROPEX_TEST_TMP_DIR) / ("readers-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& bytes) const {
    const fs::path p = path / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  fs::path path;
};

// One gzip member of `data`, by zlib's deflate (windowBits 31: gzip wrapper).
std::string gzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// One zstd frame of `data`, by libzstd's one-shot compressor; with a content checksum (as the zstd
// command line writes by default) when `checksum`.
std::string zstd(const std::string& data, bool checksum = false) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  const size_t n = ZSTD_compress2(ctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(ctx);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// Lines of random printable text and multi-byte UTF-8, ~`bytes` in all, some long (over 1 MiB
// together, so lines cross the readers' 1 MiB buffers).
std::vector<std::string> random_lines(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> pieces = {"a", "b", "c", " ", "é", "ΣΟΦΟΣ", "你好", "👩‍💻", "\\\"", "x y z", "0123"};
  std::vector<std::string> lines;
  size_t total = 0;
  while (total < bytes) {
    std::string line;
    const size_t len = rng() % 5 == 0 ? 20000 + rng() % 200000 : rng() % 300;
    while (line.size() < len) line += pieces[rng() % pieces.size()];
    total += line.size() + 1;
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string as_jsonl(const std::vector<std::string>& texts) {
  std::string out;
  for (const auto& t : texts) out += "{\"text\": \"" + t + "\"}\n";
  return out;
}

ReaderOptions paragraphs() {
  ReaderOptions o;
  o.txt_split = TxtSplit::blank_line;
  return o;
}

// Every record of `path`.
std::vector<Record> read_all(const std::string& path, const ReaderOptions& options = {}) {
  const auto reader = open_reader(path, options);
  std::vector<Record> out;
  Record r;
  while (reader->next(r)) out.push_back(r);
  EXPECT_EQ(reader->bytes_consumed(), fs::file_size(path)) << path;
  return out;
}

std::vector<std::string> texts_of(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) {
    EXPECT_EQ(r.kind, Record::Kind::text) << r.text;
    // The jsonl writer above escapes `"` as \" and the reader unescapes it: undo for comparison.
    std::string t;
    for (size_t i = 0; i < r.text.size(); ++i) t += r.text[i] == '"' ? std::string("\\\"") : std::string(1, r.text[i]);
    out.push_back(t);
  }
  return out;
}

void expect_throw_with(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one saying " << needles.front();
  } catch (const std::exception& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  }
}

TEST(Readers, FormatFromNameAndBytes) {
  Dir d;
  const std::string jl = as_jsonl({"a"});
  EXPECT_EQ(format_name(detect_format(d.file("a.jsonl", jl))), "jsonl");
  EXPECT_EQ(format_name(detect_format(d.file("a.JSONL.GZ", gzip(jl)))), "jsonl.gz");
  EXPECT_EQ(format_name(detect_format(d.file("a.jsonl.zst", zstd(jl)))), "jsonl.zst");
  EXPECT_EQ(format_name(detect_format(d.file("a.txt.zst", zstd("text")))), "txt.zst");
  // Compressed bytes under a plain name are read decompressed: the first bytes decide.
  EXPECT_EQ(format_name(detect_format(d.file("saved-without-suffix.jsonl", gzip(jl)))), "jsonl.gz");
  EXPECT_EQ(format_name(detect_format(d.file("b.jsonl", zstd(jl)))), "jsonl.zst");
  // A name that promises what the bytes are not, or formats prepare does not read.
  expect_throw_with([&] { detect_format(d.file("c.jsonl.gz", jl)); }, {"c.jsonl.gz", "named .gz", "not compressed data", "gzip (1f 8b)"});
  expect_throw_with([&] { detect_format(d.file("c.jsonl.zst", gzip(jl))); }, {"c.jsonl.zst", "those of gzip", "zstd"});
  expect_throw_with([&] { detect_format(d.file("e.jsonl.gz", "")); }, {"e.jsonl.gz", "the file is empty"});
  expect_throw_with([&] { format_from_name("x.jsonl.bz2"); }, {"x.jsonl.bz2", ".bz2", "decompress it first", ".parquet"});
  expect_throw_with([&] { format_from_name("x.json"); }, {"x.json", "unsupported file type '.json'", "one JSON object per line"});
  expect_throw_with([&] { format_from_name("x.parquet.gz"); }, {"x.parquet.gz", "Parquet compresses its own pages"});
  expect_throw_with([&] { detect_format(d.file("p.jsonl", "PAR1....PAR1")); }, {"p.jsonl", "is a Parquet file", "rename it to .parquet"});
  // Text that merely starts with those letters is text.
  EXPECT_EQ(format_name(detect_format(d.file("par.txt", "PAR1 of the report\n"))), "txt");
  expect_throw_with([&] { detect_format(d.file("q.parquet", jl)); }, {"q.parquet", "PAR1"});
  expect_throw_with([&] { detect_format((d.path / "missing.jsonl").string()); }, {"missing.jsonl"});
  expect_throw_with([&] { detect_format(d.path.string() + "/sub.jsonl"); }, {"sub.jsonl"});
}

// The same lines as plain, gzip (one member, several members) and zstd (one frame, several
// frames) .jsonl: equal records, equal line numbers.
TEST(Readers, CompressedJsonlEqualsPlain) {
  Dir d;
  const std::vector<std::string> lines = random_lines(3u << 20, 1);
  const std::string jl = as_jsonl(lines);
  const size_t half = jl.find('\n', jl.size() / 2) + 1;  // members / frames split at a line boundary...
  const size_t odd = jl.size() / 3;                       // ...and inside a line
  const std::vector<Record> plain = read_all(d.file("p.jsonl", jl));
  ASSERT_EQ(texts_of(plain), lines);
  for (size_t i = 0; i < plain.size(); ++i) ASSERT_EQ(plain[i].number, static_cast<int64_t>(i + 1));
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"one.jsonl.gz", gzip(jl)},
      {"members.jsonl.gz", gzip(jl.substr(0, half)) + gzip(jl.substr(half, odd)) + gzip(jl.substr(half + odd))},
      {"one.jsonl.zst", zstd(jl)},
      {"frames.jsonl.zst", zstd(jl.substr(0, odd)) + zstd(jl.substr(odd, half)) + zstd(jl.substr(odd + half))},
      {"empty-member.jsonl.gz", gzip("") + gzip(jl)},
  };
  for (const auto& [name, bytes] : variants) {
    SCOPED_TRACE(name);
    const std::vector<Record> got = read_all(d.file(name, bytes));
    ASSERT_EQ(got.size(), plain.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].text, plain[i].text) << "record " << i;
      ASSERT_EQ(got[i].number, plain[i].number);
    }
  }
}

TEST(Readers, TruncatedCorruptAndTrailingDataAreErrors) {
  Dir d;
  const std::string jl = as_jsonl(random_lines(1u << 20, 2));
  const std::string gz = gzip(jl), zs = zstd(jl, /*checksum=*/true);
  auto drain = [](const std::string& path) { return [path] { read_all(path); }; };
  expect_throw_with(drain(d.file("cut.jsonl.gz", gz.substr(0, gz.size() / 2))), {"cut.jsonl.gz", "cut short", "compressed byte", "(in line "});
  expect_throw_with(drain(d.file("cut2.jsonl.gz", gz.substr(0, gz.size() - 4))), {"cut2.jsonl.gz", "cut short"});  // no length trailer
  expect_throw_with(drain(d.file("cut.jsonl.zst", zs.substr(0, zs.size() / 2))), {"cut.jsonl.zst", "cut short"});
  std::string bad = gz;
  bad[bad.size() - 6] ^= 0x55;  // the CRC32 of the member's data
  expect_throw_with(drain(d.file("crc.jsonl.gz", bad)), {"crc.jsonl.gz", "corrupt gzip data"});
  bad = gz;
  for (size_t i = 100; i < 200; ++i) bad[i] = static_cast<char>(i * 7);
  expect_throw_with(drain(d.file("bits.jsonl.gz", bad)), {"bits.jsonl.gz", "corrupt gzip data"});
  // zstd finds changed bytes through the frame's content checksum (a frame written without one
  // cannot be checked: zstd's format, not ropex's choice).
  bad = zs;
  for (size_t i = 100; i < 200; ++i) bad[i] = static_cast<char>(i * 7);
  expect_throw_with(drain(d.file("bits.jsonl.zst", bad)), {"bits.jsonl.zst", "corrupt zstd data"});
  bad = zs;
  bad[bad.size() - 2] ^= 0x01;  // the checksum itself
  expect_throw_with(drain(d.file("sum.jsonl.zst", bad)), {"sum.jsonl.zst", "corrupt zstd data", "checksum"});
  expect_throw_with(drain(d.file("tail.jsonl.gz", gz + "garbage")), {"tail.jsonl.gz", "not another gzip member"});
  // A frame asking for a 256 MiB window (zstd --long=28), over libzstd's default 128 MiB limit: the
  // size is not given up front (ZSTD_e_continue first), so the frame header carries the window.
  {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 28);
    std::string frame(1 << 16, '\0');
    ZSTD_outBuffer out{frame.data(), frame.size(), 0};
    ZSTD_inBuffer in{jl.data(), 1000, 0};
    ZSTD_compressStream2(c, &out, &in, ZSTD_e_continue);
    ZSTD_inBuffer none{nullptr, 0, 0};
    EXPECT_EQ(ZSTD_compressStream2(c, &out, &none, ZSTD_e_end), 0u);
    ZSTD_freeCCtx(c);
    frame.resize(out.pos);
    expect_throw_with(drain(d.file("long.jsonl.zst", frame)), {"long.jsonl.zst", "window larger than libzstd's 128 MiB", "--long"});
  }
  expect_throw_with(drain(d.file("tail.jsonl.zst", zs + "garbage")), {"tail.jsonl.zst", "corrupt zstd data"});
}

TEST(Readers, JsonlTextAndIdsRecords) {
  Dir d;
  const std::string path = d.file("r.jsonl",
                                  "{\"text\": \"one\", \"ids\": [1, 2, 3]}\n"
                                  "\n"
                                  "   \n"
                                  "{\"text\": 5, \"ids\": []}\n"
                                  "not json\n"
                                  "[1]\n"
                                  "{\"other\": 1}\n"
                                  "{\"text\": \"two\\u00e9\", \"ids\": [0, 2147483647]}\n"
                                  "{\"ids\": [1, -1]}\n"
                                  "{\"ids\": [1, 2.5]}\n"
                                  "{\"ids\": [2147483648]}\n"
                                  "{\"ids\": \"1 2 3\"}\n"
                                  "{\"text\": [1, 2]}");  // last line without '\n'
  const std::vector<Record> text = read_all(path);
  ASSERT_EQ(text.size(), 11u);
  EXPECT_EQ(text[0].kind, Record::Kind::text);
  EXPECT_EQ(text[0].text, "one");
  EXPECT_EQ(text[0].number, 1);
  EXPECT_EQ(text[1].kind, Record::Kind::malformed);
  EXPECT_EQ(text[1].number, 4);
  EXPECT_EQ(text[1].text, "field \"text\" is number, expected a string");
  EXPECT_EQ(text[2].number, 5);
  EXPECT_NE(text[2].text.find("invalid JSON"), std::string::npos) << text[2].text;
  EXPECT_EQ(text[3].text, "expected a JSON object, got array");
  EXPECT_EQ(text[4].text, "no \"text\" field (keys: other)");
  EXPECT_EQ(text[5].text, "two\xc3\xa9");
  EXPECT_EQ(text[5].number, 8);
  EXPECT_EQ(text[10].number, 13);
  EXPECT_NE(text[10].text.find("pass --ids-field text"), std::string::npos) << text[10].text;

  const std::vector<Record> ids = read_all(path, {.ids_field = "ids"});
  ASSERT_EQ(ids.size(), 11u);
  EXPECT_EQ(ids[0].kind, Record::Kind::ids);
  EXPECT_EQ(ids[0].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ids[1].kind, Record::Kind::ids);
  EXPECT_TRUE(ids[1].ids.empty());
  EXPECT_EQ(ids[5].ids, (std::vector<int32_t>{0, 2147483647}));
  EXPECT_EQ(ids[6].kind, Record::Kind::malformed);
  EXPECT_EQ(ids[6].text, "\"ids\"[1] = -1 is not a token id (expected an integer in [0, 2^31))");
  EXPECT_EQ(ids[7].text, "\"ids\"[1] is 2.5, expected an integer token id");
  EXPECT_EQ(ids[8].text, "\"ids\"[0] = 2147483648 is not a token id (expected an integer in [0, 2^31))");
  EXPECT_NE(ids[9].text.find("expected an array of token ids (text? pass --text-field ids without --ids-field)"), std::string::npos)
      << ids[9].text;
  EXPECT_EQ(ids[10].text, "no \"ids\" field (keys: text)");
  EXPECT_EQ(open_reader(path, {})->place(7), path + ":7");
  expect_throw_with([&] { open_reader(d.file("t.txt", "x"), {.ids_field = "ids"}); }, {"t.txt", "holds no token ids"});
}

TEST(Readers, TxtDocumentsPlainAndCompressed) {
  Dir d;
  const std::string text = "first para\r\nline two\n\n  \n\nsecond\n\nbad \xff byte\nx\n\nlast";
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"t.txt", text}, {"t.txt.gz", gzip(text)}, {"t.txt.zst", zstd(text.substr(0, 9)) + zstd(text.substr(9))}}) {
    SCOPED_TRACE(name);
    const std::string path = d.file(name, bytes);
    const std::vector<Record> paras = read_all(path, paragraphs());
    ASSERT_EQ(paras.size(), 4u);
    EXPECT_EQ(paras[0].text, "first para\r\nline two");
    EXPECT_EQ(paras[0].number, 1);
    EXPECT_EQ(paras[1].text, "second");
    EXPECT_EQ(paras[1].number, 6);
    EXPECT_EQ(paras[2].kind, Record::Kind::malformed);
    EXPECT_EQ(paras[2].text, "invalid UTF-8 (byte 255)");
    EXPECT_EQ(paras[2].number, 8);
    EXPECT_EQ(paras[3].text, "last");
    EXPECT_EQ(paras[3].number, 11);
    const std::vector<Record> whole = read_all(path);
    ASSERT_EQ(whole.size(), 1u);
    EXPECT_EQ(whole[0].kind, Record::Kind::malformed);
    EXPECT_EQ(whole[0].number, 8);  // the line of the first bad byte
  }
  const std::vector<Record> good = read_all(d.file("g.txt.gz", gzip("all\n\none")));
  ASSERT_EQ(good.size(), 1u);
  EXPECT_EQ(good[0].text, "all\n\none");
}

TEST(Readers, Utf8Validation) {
  EXPECT_EQ(first_invalid_utf8("plain ascii é 你 👩"), std::string_view::npos);
  EXPECT_EQ(first_invalid_utf8("ab\xc0\xaf"), 2u);          // overlong '/'
  EXPECT_EQ(first_invalid_utf8("a\xed\xa0\x80"), 1u);       // surrogate U+D800
  EXPECT_EQ(first_invalid_utf8("\xf4\x90\x80\x80"), 0u);    // above U+10FFFF
  EXPECT_EQ(first_invalid_utf8("abc\xe4\xbd"), 3u);         // cut sequence
  EXPECT_EQ(first_invalid_utf8("\x80"), 0u);                // lone continuation byte
}

}  // namespace
