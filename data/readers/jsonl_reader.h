// .jsonl records (plain, .gz or .zst): one JSON object per line, blank lines skipped.
// Text mode: the document is the string in options.text_field. Ids mode (options.ids_field set):
// the document is the array of integers in that field, each in [0, 2^31). A line that is not such an
// object (invalid JSON or UTF-8, not an object, the field missing or of another type, an id that is
// not an integer or out of range) is a malformed Record saying which, at its line.
#pragma once

#include <memory>
#include <string>

#include "data/readers/format.h"
#include "data/readers/reader.h"

namespace ropex::readers {

std::unique_ptr<RecordReader> open_jsonl_reader(const std::string& path, Compression compression,
                                                const ReaderOptions& options);

}  // namespace ropex::readers
