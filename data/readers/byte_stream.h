// The bytes of an input file, decompressed when it is gzip or zstd, a fixed-size piece at a time.
//
// Gzip files may hold several members one after another (pigz, bgzip, cat a.gz b.gz) and zstd files
// several frames: all are read, in order. A stream that ends before its end marker (a file cut
// short by an interrupted download or copy), corrupt data, a checksum mismatch and bytes after the
// last member that are not another member are ReadErrors naming the file, the compressed offset and
// how much was decompressed before: nothing is silently dropped. Memory is the zlib / zstd state
// (zstd: up to its 128 MiB default window limit, which a frame's header may ask for; a frame asking
// for more is refused saying so) and a 1 MiB input buffer, whatever the file's size. It does not
// split lines or parse anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "data/readers/format.h"

namespace ropex::readers {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Fills up to `n` bytes of `buf`; returns how many, 0 only at the end. Throws ReadError.
  virtual size_t read(char* buf, size_t n) = 0;
  // Bytes of the file consumed so far (compressed bytes for a compressed file).
  virtual uint64_t consumed() const = 0;
};

// Opens a regular file (input/files.h) and reads it as `compression` says.
std::unique_ptr<ByteStream> open_byte_stream(const std::string& path, Compression compression);

}  // namespace ropex::readers
