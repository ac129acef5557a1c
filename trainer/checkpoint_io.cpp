// Checked, checksummed checkpoint files. See checkpoint_io.h.
#include "trainer/checkpoint_io.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace ropex {
namespace {

std::string reason(int err) { return std::error_code(err, std::system_category()).message(); }

// ROPEX_FAULT_INJECT, read once.
struct Faults {
  bool short_writes = false;
  int err = 0;             // ENOSPC or EIO on a write
  bool fsync_err = false;  // EIO on an fsync
  bool no_space = false;   // the free-space check sees 0 bytes available
  bool manifest = false;   // ENOSPC on writing manifest.json
  int64_t step = -1, nth = 1;
  Faults() {
    const char* f = std::getenv("ROPEX_FAULT_INJECT");
    if (!f) return;
    const std::string s(f);
    if (s == "short-writes") short_writes = true;
    const std::string prefix = "storage-fault:";
    if (s.rfind(prefix, 0) != 0) return;
    char kind[32] = {0};
    long long st = -1, n = 1;
    if (std::sscanf(s.c_str() + prefix.size(), "%31[^:]:%lld:%lld", kind, &st, &n) < 2) return;
    const std::string k(kind);
    if (k == "ENOSPC") err = ENOSPC;
    else if (k == "EIO") err = EIO;
    else if (k == "EIO-fsync") fsync_err = true;
    else if (k == "FREE") no_space = true;
    else if (k == "ENOSPC-manifest") manifest = true;
    step = st;
    nth = n;
  }
};
const Faults& faults() {
  static const Faults f;
  return f;
}
int64_t g_step = -2;   // the save being written
int64_t g_writes = 0;  // writes and fsyncs of it so far (this process)
std::atomic<int64_t> g_short_writes{0};

// Whether the next write or fsync of this save is the one to fail; sets errno.
bool injected(bool is_fsync) {
  const Faults& f = faults();
  if (g_step != f.step || (is_fsync ? !f.fsync_err : f.err == 0)) return false;
  if (++g_writes != f.nth) return false;
  errno = is_fsync ? EIO : f.err;
  return true;
}

}  // namespace

int64_t injected_short_writes() { return g_short_writes.load(); }

void set_fault_context(int64_t step) {
  g_step = step;
  g_writes = 0;
}

std::string xxh3_hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

struct CheckedFile::Hash {
  XXH3_state_t state;
};

CheckedFile::CheckedFile(const std::string& path, std::string record_name) : path_(path), name_(std::move(record_name)) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw StorageError("cannot create " + path + ": " + reason(errno));
  hash_ = std::make_unique<Hash>();
  XXH3_64bits_reset(&hash_->state);
}

CheckedFile::~CheckedFile() {
  if (fd_ >= 0) ::close(fd_);
}

void CheckedFile::write(const void* data, uint64_t n) {
  if (fd_ < 0) throw std::logic_error("CheckedFile::write after finish: " + path_);
  XXH3_64bits_update(&hash_->state, data, n);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    size_t ask = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
    if (faults().short_writes && ask > 1) {
      ask /= 2;
      ++g_short_writes;
    }
    const bool manifest_fault = faults().manifest && g_step == faults().step && name_ == "manifest.json";
    if (manifest_fault) errno = ENOSPC;
    const ssize_t w = manifest_fault || injected(false) ? -1 : ::write(fd_, p, ask);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw StorageError("writing " + path_ + ": " + reason(errno));
    if (w == 0) throw StorageError("writing " + path_ + ": the device accepted no bytes (full?)");
    p += w;  // a short write: go on with the rest
    n -= static_cast<uint64_t>(w);
    bytes_ += static_cast<uint64_t>(w);
  }
}

FileRecord CheckedFile::finish() {
  if (injected(true) || ::fsync(fd_) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw StorageError("fsync of " + path_ + " failed: " + reason(err) + " (not retried: the data may be lost)");
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw StorageError("closing " + path_ + ": " + reason(errno));
  }
  fd_ = -1;
  return {name_, bytes_, xxh3_hex(XXH3_64bits_digest(&hash_->state))};
}

FileRecord write_checked(const std::string& path, const std::string& record_name, const std::string& text) {
  CheckedFile f(path, record_name);
  f.write(text.data(), text.size());
  return f.finish();
}

namespace {
struct ReadFd {  // closes on every path
  int fd;
  explicit ReadFd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~ReadFd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

FileRecord copy_checked(const std::string& src, const std::string& dst, const std::string& record_name) {
  const ReadFd in(src);
  if (in.fd < 0) throw StorageError("cannot open " + src + ": " + reason(errno));
  CheckedFile out(dst, record_name);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t r = ::read(in.fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw StorageError("reading " + src + ": " + reason(errno));
    if (r == 0) break;
    out.write(buf.data(), static_cast<uint64_t>(r));
  }
  return out.finish();
}

std::string verify_file(const std::string& dir, const FileRecord& expected, bool* unreadable) {
  const std::string path = (std::filesystem::path(dir) / expected.name).string();
  if (unreadable) *unreadable = false;
  const ReadFd in(path);
  struct stat st {};
  if (in.fd < 0 || ::fstat(in.fd, &st) != 0) {
    if (unreadable) *unreadable = errno != ENOENT;  // a missing file is a checkpoint's defect
    return path + ": cannot open (" + reason(errno) + ")";
  }
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  std::vector<char> buf(8 << 20);
  uint64_t total = 0;
  off_t dropped = 0;
  std::string problem;
  while (total <= expected.bytes) {  // one byte past the record tells a longer file
    const size_t ask = static_cast<size_t>(std::min<uint64_t>(buf.size(), expected.bytes + 1 - total));
    const ssize_t r = ::read(in.fd, buf.data(), ask);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      if (unreadable) *unreadable = true;
      problem = path + ": read error (" + reason(errno) + ")";
      break;
    }
    if (r == 0) break;
    XXH3_64bits_update(&state, buf.data(), static_cast<size_t>(r));
    total += static_cast<uint64_t>(r);
    if (static_cast<off_t>(total) - dropped >= (off_t{64} << 20)) {  // keep the page cache from filling with it
      ::posix_fadvise(in.fd, dropped, static_cast<off_t>(total) - dropped, POSIX_FADV_DONTNEED);
      dropped = static_cast<off_t>(total);
    }
  }
  ::posix_fadvise(in.fd, 0, 0, POSIX_FADV_DONTNEED);
  if (!problem.empty()) return problem;
  if (total != expected.bytes)
    return path + ": " + (total > expected.bytes ? "more than " : "") + std::to_string(total) +
           " bytes, the manifest records " + std::to_string(expected.bytes) + " (truncated or overwritten)";
  const std::string h = xxh3_hex(XXH3_64bits_digest(&state));
  if (h != expected.xxh3) return path + ": checksum xxh3 " + h + " differs from the manifest's " + expected.xxh3 + " (corrupt)";
  return "";
}

void require_free_space(const std::string& dir, uint64_t needed, const std::string& what) {
  struct statvfs s;
  if (::statvfs(dir.c_str(), &s) != 0) throw StorageError("cannot query free space of " + dir + ": " + reason(errno));
  const bool injected_full = faults().no_space && g_step == faults().step;
  const uint64_t available = injected_full ? 0 : static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  if (available < needed)
    throw StorageError(what + " needs " + std::to_string(needed) + " bytes but the filesystem of " + dir + " has " +
                       std::to_string(available) + " available; free space (or lower checkpoint.keep_last) and resume");
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw StorageError(path + ": cannot open for fsync: " + reason(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw StorageError(path + ": fsync failed: " + reason(err));
}

}  // namespace ropex
