// See line_reader.h.
#include "data/readers/line_reader.h"

#include <cstring>

#include "data/readers/reader.h"

namespace ropex::readers {

bool is_blank_line(std::string_view line) { return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos; }

LineReader::LineReader(std::unique_ptr<ByteStream> stream) : stream_(std::move(stream)), buf_(size_t{1} << 20) {}

bool LineReader::next(std::string& line) {
  line.clear();
  bool any = false;
  for (;;) {
    if (pos_ == len_) {
      if (eof_) break;
      try {
        len_ = stream_->read(buf_.data(), buf_.size());
      } catch (const ReadError& e) {
        throw ReadError(std::string(e.what()) + " (in line " + std::to_string(line_number_ + 1) + ")");
      }
      pos_ = 0;
      if (len_ == 0) {
        eof_ = true;
        break;
      }
    }
    any = true;
    const char* start = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
    if (nl) {
      line.append(start, static_cast<size_t>(nl - start));
      pos_ += static_cast<size_t>(nl - start) + 1;
      ++line_number_;
      return true;
    }
    line.append(start, len_ - pos_);
    pos_ = len_;
  }
  if (!any) return false;
  ++line_number_;
  return true;
}

}  // namespace ropex::readers
