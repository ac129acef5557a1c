// TensorBoard event files at the byte level: TFRecord framing and one append-only file of records.
//
// A record is its length (uint64, little-endian), the masked CRC32C of those 8 bytes, the data, and
// the masked CRC32C of the data; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8. CRC32C is ISA-L's
// (crc32_iscsi). EventFile appends each record with one write(2), unbuffered, so a run that is
// killed keeps every record it wrote. A write that fails (a full disk) is reported once with the
// file and the reason, and training goes on (as metrics.jsonl does, trainer/metrics_log.h): the
// partial record is cut off again when the file allows it, else the file takes no more records.
//
// It does NOT know what the records hold (scalar_log builds the events), name the file, or read
// event files back (the tests use TensorBoard's own reader).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ropex::tensorboard {

uint32_t crc32c(const void* data, size_t n);  // CRC-32C (Castagnoli), crc32c("123456789") = 0xe3069283
uint32_t mask_crc(uint32_t crc);              // the TFRecord mask above
std::string frame_record(std::string_view data);  // length, its masked CRC, data, their masked CRC

class EventFile {
 public:
  // Opens `path` for appending (created if missing). Never throws: a file that cannot be opened is
  // reported (warn) and every append() returns false.
  explicit EventFile(std::string path);
  ~EventFile();
  EventFile(const EventFile&) = delete;
  EventFile& operator=(const EventFile&) = delete;

  // Frames `data` and appends it; false when it was not written (the first failure is reported).
  bool append(std::string_view data);
  const std::string& path() const { return path_; }

 private:
  void report(const std::string& what);
  std::string path_;
  int fd_ = -1;
  bool reported_ = false;
};

}  // namespace ropex::tensorboard
