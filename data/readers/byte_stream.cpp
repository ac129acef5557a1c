// See byte_stream.h. zlib (Debian zlib1g-dev) and libzstd (libzstd-dev) do the decompression.
#include "data/readers/byte_stream.h"

#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>  // ZSTD_getErrorCode, the error codes

#include <cerrno>
#include <cstring>
#include <vector>

#include "data/input/files.h"
#include "data/readers/reader.h"

namespace ropex::readers {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// The file's raw bytes through a descriptor.
class RawFile {
 public:
  explicit RawFile(const std::string& path)
      : path_(path), fd_(input::open_regular_file(path, "a corpus file (" + accepted_formats() + ")")) {}
  ~RawFile() { ::close(fd_); }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

  size_t read(char* buf, size_t n) {
    for (;;) {
      const ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) {
        consumed_ += static_cast<uint64_t>(got);
        return static_cast<size_t>(got);
      }
      if (errno != EINTR) throw ReadError("error reading input " + in_quotes(path_) + ": " + std::strerror(errno));
    }
  }
  uint64_t consumed() const { return consumed_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_;
  uint64_t consumed_ = 0;
};

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(const std::string& path) : file_(path) {}
  size_t read(char* buf, size_t n) override { return file_.read(buf, n); }
  uint64_t consumed() const override { return file_.consumed(); }

 private:
  RawFile file_;
};

// Compressed input buffered in `in_`; `pos_` is the next unread byte.
class CompressedInput {
 public:
  explicit CompressedInput(const std::string& path) : file_(path), in_(kChunk) {}
  // Refills when empty; false at the end of the file.
  bool fill() {
    if (pos_ < len_) return true;
    len_ = file_.read(in_.data(), in_.size());
    pos_ = 0;
    return len_ > 0;
  }
  const char* data() const { return in_.data() + pos_; }
  size_t available() const { return len_ - pos_; }
  void advance(size_t n) { pos_ += n; }
  // Offset in the file of the next unread byte.
  uint64_t offset() const { return file_.consumed() - (len_ - pos_); }
  const std::string& path() const { return file_.path(); }
  uint64_t consumed() const { return file_.consumed(); }
  // A stream that cannot be read further: the file, the compressed offset, what was decompressed.
  [[noreturn]] void fail(const std::string& what, uint64_t produced) const {
    throw ReadError("input " + in_quotes(path()) + ": " + what + " at compressed byte " + std::to_string(offset()) +
                    ", after " + std::to_string(produced) + " decompressed bytes");
  }

 private:
  RawFile file_;
  std::vector<char> in_;
  size_t pos_ = 0, len_ = 0;
};

class GzipStream final : public ByteStream {
 public:
  explicit GzipStream(const std::string& path) : in_(path) {
    std::memset(&z_, 0, sizeof z_);
    if (inflateInit2(&z_, 15 + 16) != Z_OK) throw ReadError("zlib could not start reading " + in_quotes(path));
  }
  ~GzipStream() override { inflateEnd(&z_); }

  size_t read(char* buf, size_t n) override {
    size_t out = 0;
    while (out < n && !done_) {
      if (!in_.fill()) {
        if (in_member_) fail("the gzip stream ends before its end marker (the file was cut short?)");
        done_ = true;
        break;
      }
      if (!in_member_) {  // between members: another member, or the end
        if (static_cast<uint8_t>(in_.data()[0]) != 0x1f) {
          fail("bytes after the last gzip member are not another gzip member");
        }
        inflateReset(&z_);
        in_member_ = true;
      }
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in_.data()));
      z_.avail_in = static_cast<uInt>(in_.available());
      z_.next_out = reinterpret_cast<Bytef*>(buf + out);
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - out, kChunk));
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const size_t used = in_.available() - z_.avail_in;
      const size_t made = std::min<size_t>(n - out, kChunk) - z_.avail_out;
      in_.advance(used);
      out += made;
      produced_ += made;
      if (rc == Z_STREAM_END) in_member_ = false;
      else if (rc == Z_BUF_ERROR && used == 0 && made == 0) fail("gzip data could not be decompressed (Z_BUF_ERROR)");
      else if (rc == Z_MEM_ERROR) fail("zlib ran out of memory");
      else if (rc != Z_OK) fail(std::string("corrupt gzip data (") + (z_.msg ? z_.msg : zError(rc)) + ")");
    }
    return out;
  }
  uint64_t consumed() const override { return in_.consumed(); }

 private:
  [[noreturn]] void fail(const std::string& what) const { in_.fail(what, produced_); }

  CompressedInput in_;
  z_stream z_;
  bool in_member_ = false, done_ = false;
  uint64_t produced_ = 0;
};

class ZstdStream final : public ByteStream {
 public:
  explicit ZstdStream(const std::string& path) : in_(path), ctx_(ZSTD_createDCtx()) {
    if (!ctx_) throw ReadError("libzstd could not start reading " + in_quotes(path));
  }
  ~ZstdStream() override { ZSTD_freeDCtx(ctx_); }

  size_t read(char* buf, size_t n) override {
    size_t out = 0;
    while (out < n && !done_) {
      if (!in_.fill()) {
        if (in_frame_) fail("the zstd stream ends inside a frame (the file was cut short?)");
        done_ = true;
        break;
      }
      ZSTD_inBuffer src{in_.data(), in_.available(), 0};
      ZSTD_outBuffer dst{buf + out, n - out, 0};
      const size_t rc = ZSTD_decompressStream(ctx_, &dst, &src);
      in_.advance(src.pos);
      out += dst.pos;
      produced_ += dst.pos;
      if (ZSTD_isError(rc)) {
        if (ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge)
          fail("a zstd frame needs a window larger than libzstd's 128 MiB default (written with zstd --long?); "
               "recompress it without --long");
        fail(std::string("corrupt zstd data (") + ZSTD_getErrorName(rc) + ")");
      }
      in_frame_ = rc != 0;  // 0: a frame ended exactly here
      if (src.pos == 0 && dst.pos == 0 && in_.available() > 0) fail("zstd made no progress");
    }
    return out;
  }
  uint64_t consumed() const override { return in_.consumed(); }

 private:
  [[noreturn]] void fail(const std::string& what) const { in_.fail(what, produced_); }

  CompressedInput in_;
  ZSTD_DCtx* ctx_;
  bool in_frame_ = false, done_ = false;
  uint64_t produced_ = 0;
};

}  // namespace

std::unique_ptr<ByteStream> open_byte_stream(const std::string& path, Compression compression) {
  switch (compression) {
    case Compression::gzip: return std::make_unique<GzipStream>(path);
    case Compression::zstd: return std::make_unique<ZstdStream>(path);
    case Compression::none: break;
  }
  return std::make_unique<PlainStream>(path);
}

}  // namespace ropex::readers
