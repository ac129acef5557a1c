// .txt records (plain, .gz or .zst): the whole file as one document (TxtSplit::file), or runs of
// non-blank lines joined by '\n', separated by blank (whitespace-only) lines (TxtSplit::blank_line).
// A document that is not valid UTF-8 is a malformed Record at the line of its first bad byte.
// Ids mode does not apply to text files (open_reader refuses it).
#pragma once

#include <memory>
#include <string>

#include "data/readers/format.h"
#include "data/readers/reader.h"

namespace ropex::readers {

std::unique_ptr<RecordReader> open_txt_reader(const std::string& path, Compression compression, TxtSplit split);

}  // namespace ropex::readers
