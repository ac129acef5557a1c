// Opening files that came from a user: only regular files are read.
//
// A FIFO, socket or character device named where ropex expects a file (model.safetensors, tokens.bin,
// meta.json, a config) would block open() or read() forever, or stream without end. These helpers
// open without blocking, check with fstat that the file is a regular file (symlinks to one are
// fine), and refuse anything else with an error naming the path and what was expected.
// They do not parse anything, and they do not guard against a file changing after it was opened.
#pragma once

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace ropex::input {

// Thrown for a missing, unreadable, non-regular or over-long input file; what() names the path.
class InputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Opens `path` read-only (O_CLOEXEC, blocking mode restored after the check) and returns the
// descriptor; the caller closes it. `what` says what the file should be ("a Hugging Face
// config.json"), for the error messages.
int open_regular_file(const std::filesystem::path& path, const std::string& what);

// Throws unless `path` names a regular file (after following symlinks).
void require_regular_file(const std::filesystem::path& path, const std::string& what);

// The whole file, refused when it is larger than max_bytes (the limit is named in the error).
std::string read_regular_file(const std::filesystem::path& path, const std::string& what,
                              size_t max_bytes);

// "a FIFO", "a directory", ... for messages.
std::string file_kind(unsigned mode);

}  // namespace ropex::input
