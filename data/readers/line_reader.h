// Lines of a ByteStream, one at a time, without their '\n' (a '\r' before it is kept: JSON parsing
// treats it as whitespace and .txt documents keep what the file has). A last line without '\n' is
// still a line. Memory is the stream's buffers plus the longest line. A stream that cannot be read
// further (a cut or corrupt compressed file) throws its ReadError with the line it stopped in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/readers/byte_stream.h"

namespace ropex::readers {

// Whether a line holds only whitespace (space, tab, CR, FF, VT): a blank line.
bool is_blank_line(std::string_view line);

class LineReader {
 public:
  explicit LineReader(std::unique_ptr<ByteStream> stream);
  // The next line into `line`; false at the end. Throws the stream's ReadError.
  bool next(std::string& line);
  int64_t line_number() const { return line_number_; }  // of the line last returned, 1-based
  uint64_t consumed() const { return stream_->consumed(); }

 private:
  std::unique_ptr<ByteStream> stream_;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
  int64_t line_number_ = 0;
};

}  // namespace ropex::readers
