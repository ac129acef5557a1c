// TFRecord framing with ISA-L's CRC32C, appended with write(2). See event_file.h.
#include "trainer/tensorboard/event_file.h"

#include "trainer/log.h"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace ropex::tensorboard {

uint32_t crc32c(const void* data, size_t n) {
  // ISA-L's crc32_iscsi neither inverts the initial value nor the result: CRC-32C is both inverted
  // (checked against the standard check value and TensorBoard's own crc32c in tests/test_tensorboard.cpp).
  // Its length is an int, so longer buffers go in pieces.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t crc = 0xffffffffu;
  while (n > 0) {
    const size_t piece = n < static_cast<size_t>(INT_MAX) ? n : static_cast<size_t>(INT_MAX);
    crc = crc32_iscsi(p, static_cast<int>(piece), crc);
    p += piece;
    n -= piece;
  }
  return crc ^ 0xffffffffu;
}

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

namespace {
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
}  // namespace

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, mask_crc(crc32c(out.data(), 8)), 4);
  out.append(data);
  put_le(out, mask_crc(crc32c(data.data(), data.size())), 4);
  return out;
}

EventFile::EventFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) report(cat("cannot open ", path_, " for appending: ", std::strerror(errno)));
}

EventFile::~EventFile() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFile::report(const std::string& what) {
  if (reported_) return;
  reported_ = true;
  log::warn(cat("TensorBoard events: ", what, "; training goes on (metrics.jsonl and checkpoints are unaffected), "
                "TensorBoard may miss later steps"));
}

bool EventFile::append(std::string_view data) {
  if (fd_ < 0) return false;
  const std::string rec = frame_record(data);
  struct stat st {};
  const off_t before = ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  size_t done = 0;
  while (done < rec.size()) {
    const ssize_t n = ::write(fd_, rec.data() + done, rec.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? std::strerror(errno) : "nothing written";
      // A cut record would end TensorBoard's reading of the file there: cut it off again, or, when the
      // file cannot be cut, write nothing more to it.
      if (done > 0 && (before < 0 || ::ftruncate(fd_, before) != 0)) {
        ::close(fd_);
        fd_ = -1;
      }
      report(cat("writing ", path_, " failed: ", reason));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace ropex::tensorboard
