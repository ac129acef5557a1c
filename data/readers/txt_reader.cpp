// See txt_reader.h.
#include "data/readers/txt_reader.h"

#include <algorithm>
#include <vector>

#include "data/readers/line_reader.h"
#include "data/readers/utf8.h"

namespace ropex::readers {
namespace {

// `text`, starting at line `first_line`, as a text Record, or a malformed one when not UTF-8.
void checked_text(std::string&& text, int64_t first_line, Record& out) {
  const size_t bad = first_invalid_utf8(text);
  if (bad == std::string_view::npos) {
    out.kind = Record::Kind::text;
    out.text = std::move(text);
    out.number = first_line;
    return;
  }
  out.kind = Record::Kind::malformed;
  out.number = first_line + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
  out.text = "invalid UTF-8 (byte " + std::to_string(static_cast<unsigned char>(text[bad])) + ")";
}

class WholeFileReader final : public RecordReader {
 public:
  WholeFileReader(const std::string& path, Compression compression) : path_(path), stream_(open_byte_stream(path, compression)) {}

  bool next(Record& out) override {
    if (done_) return false;
    done_ = true;
    std::string text;
    std::vector<char> buf(size_t{1} << 20);
    while (const size_t n = stream_->read(buf.data(), buf.size())) text.append(buf.data(), n);
    checked_text(std::move(text), 1, out);
    return true;
  }
  uint64_t bytes_consumed() const override { return stream_->consumed(); }
  std::string place(int64_t number) const override { return path_ + ":" + std::to_string(number); }

 private:
  std::string path_;
  std::unique_ptr<ByteStream> stream_;
  bool done_ = false;
};

class ParagraphReader final : public RecordReader {
 public:
  ParagraphReader(const std::string& path, Compression compression) : path_(path), lines_(open_byte_stream(path, compression)) {}

  bool next(Record& out) override {
    std::string doc;
    int64_t doc_line = 0;
    while (lines_.next(line_)) {
      if (is_blank_line(line_)) {
        if (!doc.empty()) break;
        continue;
      }
      if (doc.empty()) doc_line = lines_.line_number();
      else doc += '\n';
      doc += line_;
    }
    if (doc.empty()) return false;
    checked_text(std::move(doc), doc_line, out);
    return true;
  }
  uint64_t bytes_consumed() const override { return lines_.consumed(); }
  std::string place(int64_t number) const override { return path_ + ":" + std::to_string(number); }

 private:
  std::string path_;
  LineReader lines_;
  std::string line_;
};

}  // namespace

std::unique_ptr<RecordReader> open_txt_reader(const std::string& path, Compression compression, TxtSplit split) {
  if (split == TxtSplit::blank_line) return std::make_unique<ParagraphReader>(path, compression);
  return std::make_unique<WholeFileReader>(path, compression);
}

}  // namespace ropex::readers
