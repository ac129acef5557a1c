// See format.h.
#include "data/readers/format.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <filesystem>

#include "data/input/files.h"
#include "data/readers/reader.h"

namespace ropex::readers {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// Up to 4 bytes of the file from `offset` (fewer at its end).
std::string bytes_at(int fd, off_t offset) {
  std::array<char, 4> buf{};
  size_t have = 0;
  while (have < buf.size()) {
    const ssize_t n = ::pread(fd, buf.data() + have, buf.size() - have, offset + static_cast<off_t>(have));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += static_cast<size_t>(n);
  }
  return std::string(buf.data(), have);
}

// The file's first 4 bytes, and its last 4 when it is at least 8 bytes long ("" otherwise).
struct Ends {
  std::string head, tail;
};
Ends file_ends(const std::string& path) {
  const int fd = input::open_regular_file(path, "a corpus file (" + accepted_formats() + ")");
  struct stat st {};
  Ends e;
  e.head = bytes_at(fd, 0);
  if (::fstat(fd, &st) == 0 && st.st_size >= 8) e.tail = bytes_at(fd, st.st_size - 4);
  ::close(fd);
  return e;
}

// Parquet files begin and end with "PAR1".
bool is_parquet(const Ends& e) { return e.head == "PAR1" && e.tail == "PAR1"; }

Compression compression_of_bytes(const std::string& head) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(head[i]); };
  if (head.size() >= 2 && b(0) == 0x1f && b(1) == 0x8b) return Compression::gzip;
  if (head.size() >= 4 && b(0) == 0x28 && b(1) == 0xb5 && b(2) == 0x2f && b(3) == 0xfd) return Compression::zstd;
  // zstd skippable frames: magic 0x184D2A50..0x184D2A5F, little-endian
  if (head.size() >= 4 && (b(0) & 0xf0) == 0x50 && b(1) == 0x2a && b(2) == 0x4d && b(3) == 0x18) return Compression::zstd;
  return Compression::none;
}

const char* compression_suffix(Compression c) {
  switch (c) {
    case Compression::gzip: return ".gz";
    case Compression::zstd: return ".zst";
    case Compression::none: break;
  }
  return "";
}

}  // namespace

const std::string& accepted_formats() {
  static const std::string s = ".jsonl and .txt (plain, or compressed as .gz / .zst) and .parquet";
  return s;
}

InputFormat format_from_name(const std::string& path) {
  std::string name = lower(std::filesystem::path(path).filename().string());
  InputFormat f;
  if (ends_with(name, ".gz")) f.compression = Compression::gzip, name.resize(name.size() - 3);
  else if (ends_with(name, ".zst")) f.compression = Compression::zstd, name.resize(name.size() - 4);
  else if (ends_with(name, ".zstd")) f.compression = Compression::zstd, name.resize(name.size() - 5);  // named .zst in messages
  for (const std::string other : {".bz2", ".xz", ".zip", ".lz4", ".7z", ".tar", ".br", ".lzma"}) {
    if (ends_with(name, other)) {
      throw ReadError("input " + in_quotes(path) + " is compressed as " + other + ", which prepare does not read; " +
                      "decompress it first, or recompress it with gzip or zstd. Accepted: " + accepted_formats());
    }
  }
  if (ends_with(name, ".jsonl")) f.records = RecordFormat::jsonl;
  else if (ends_with(name, ".txt")) f.records = RecordFormat::txt;
  else if (ends_with(name, ".parquet")) f.records = RecordFormat::parquet;
  else {
    const std::string ext = std::filesystem::path(name).extension().string();
    throw ReadError("input " + in_quotes(path) + ": unsupported file type " + in_quotes(ext.empty() ? name : ext) +
                    (ext == ".json" ? " (a .json file is one document; prepare reads .jsonl, one JSON object per line)" : "") +
                    "; accepted: " + accepted_formats());
  }
  if (f.records == RecordFormat::parquet && f.compression != Compression::none) {
    throw ReadError("input " + in_quotes(path) + ": a compressed Parquet file; Parquet compresses its own pages, " +
                    "so decompress the file to .parquet first");
  }
  return f;
}

InputFormat detect_format(const std::string& path) {
  InputFormat f = format_from_name(path);
  const Ends ends = file_ends(path);
  const std::string& head = ends.head;
  const Compression seen = compression_of_bytes(head);
  if (f.records == RecordFormat::parquet) {
    if (head != "PAR1")
      throw ReadError("input " + in_quotes(path) + " is named .parquet but does not start with Parquet's magic bytes \"PAR1\"" +
                      (seen != Compression::none ? std::string(" (it is ") + (seen == Compression::gzip ? "gzip" : "zstd") +
                                                       "-compressed: decompress it first)"
                                                 : " (not a Parquet file, or an encrypted one, which prepare does not read)"));
    return f;
  }
  if (is_parquet(ends))
    throw ReadError("input " + in_quotes(path) + " is a Parquet file (it starts and ends with \"PAR1\") named as " +
                    format_name(f) + ": rename it to .parquet");
  if (f.compression != Compression::none && seen != f.compression) {
    throw ReadError("input " + in_quotes(path) + " is named " + compression_suffix(f.compression) + " but its first bytes are " +
                    (seen == Compression::none ? std::string(head.empty() ? "absent (the file is empty)" : "not compressed data")
                                               : std::string("those of ") + (seen == Compression::gzip ? "gzip" : "zstd")) +
                    "; expected " + (f.compression == Compression::gzip ? "gzip (1f 8b)" : "zstd (28 b5 2f fd)"));
  }
  f.compression = seen;  // a compressed file without its suffix is read decompressed
  return f;
}

std::string format_name(const InputFormat& f) {
  const std::string records = f.records == RecordFormat::jsonl ? "jsonl" : f.records == RecordFormat::txt ? "txt" : "parquet";
  return records + compression_suffix(f.compression);
}

}  // namespace ropex::readers
