// Checkpoint file IO at the byte level: files written with every write checked and an xxh3-64
// checksum computed while writing (no second pass), files verified against a recorded checksum by a
// streaming read, free-space checks, and the storage-fault injection the tests use.
//
// What this does not do: no tensors, no layout, no communication (trainer/checkpoint_format.h and
// trainer/checkpoint.h). Errors are StorageError naming the path and the system's reason; a failed
// fsync is never retried (after a failed fsync Linux may drop the dirty pages, so a retry can
// falsely succeed).
//
// Fault injection (tests only), ROPEX_FAULT_INJECT=...:
//   storage-fault:ERR:STEP[:N]  the N-th write (default 1) of this process's part of the save of
//                               step STEP fails with ERR (ENOSPC | EIO), or its fsync with EIO when
//                               ERR is EIO-fsync, or the free-space check finds none when ERR
//                               is FREE
//   storage-fault:ENOSPC-manifest:STEP   the commit's manifest.json write fails (rank 0's phase)
//   short-writes                every write() is asked for at most half of what is left (the loop
//                               must still write every byte)
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace ropex {

struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What a checkpoint manifest records of one file.
struct FileRecord {
  std::string name;  // relative to the checkpoint folder
  uint64_t bytes = 0;
  std::string xxh3;  // 16 lowercase hex digits
};

// The save now being written (for storage-fault injection): set by the checkpoint writer.
void set_fault_context(int64_t step);

// A new file, written sequentially; every byte passes through the checksum. finish() fsyncs and
// closes it and returns its record. Destroying an unfinished file closes it (the caller removes the
// partial folder).
class CheckedFile {
 public:
  CheckedFile(const std::string& path, std::string record_name);
  ~CheckedFile();
  CheckedFile(const CheckedFile&) = delete;
  CheckedFile& operator=(const CheckedFile&) = delete;
  void write(const void* data, uint64_t n);
  FileRecord finish();
  const std::string& path() const { return path_; }

 private:
  struct Hash;
  std::string path_, name_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  std::unique_ptr<Hash> hash_;
};

// Writes `text` as one checked file.
FileRecord write_checked(const std::string& path, const std::string& record_name, const std::string& text);
// Copies `src` into a checked file.
FileRecord copy_checked(const std::string& src, const std::string& dst, const std::string& record_name);

// Reads the file through in bounded blocks (the page cache is told to drop them; never more than
// the recorded size + 1 bytes) and returns "" if it is a regular file whose size and checksum match
// the record, else what is wrong, naming the file. *unreadable is set when the file could not be
// opened or read (a system error, which says nothing of its contents) rather than found different.
std::string verify_file(const std::string& dir, const FileRecord& expected, bool* unreadable = nullptr);

// Short writes the short-writes injection has made this process complete (for its test).
int64_t injected_short_writes();

// Throws StorageError when the filesystem holding `dir` has fewer than `needed` bytes available.
void require_free_space(const std::string& dir, uint64_t needed, const std::string& what);

// fsync a file or directory; throws StorageError naming the path.
void fsync_path(const std::string& path);

std::string xxh3_hex(uint64_t h);

}  // namespace ropex
