// See reader.h: open_reader picks the reader a file's format needs (format.h).
#include "data/readers/reader.h"

#include "data/readers/format.h"
#include "data/readers/jsonl_reader.h"
#include "data/readers/parquet_reader.h"
#include "data/readers/txt_reader.h"

namespace ropex::readers {

std::unique_ptr<RecordReader> open_reader(const std::string& path, const ReaderOptions& options) {
  const InputFormat format = detect_format(path);
  switch (format.records) {
    case RecordFormat::jsonl: return open_jsonl_reader(path, format.compression, options);
    case RecordFormat::parquet: return open_parquet_reader(path, options);
    case RecordFormat::txt: break;
  }
  if (!options.ids_field.empty()) {
    throw ReadError("input '" + path + "' is a text file, which holds no token ids; with --ids-field every input must be " +
                    ".jsonl (plain, .gz or .zst) or .parquet");
  }
  return open_txt_reader(path, format.compression, options.txt_split);
}

}  // namespace ropex::readers
