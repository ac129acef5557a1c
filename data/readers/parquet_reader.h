// .parquet records: one document per row, from one column, read a batch of rows at a time (memory
// does not grow with the file: the column is streamed page by page, never a row group at once).
// Text mode: options.text_field must be a string column (string, large_string, string_view, or a
// dictionary of strings). Ids mode (options.ids_field set): a list, large_list or fixed_size_list
// column of integers (int8..int64, uint8..uint64). A null text, an invalid UTF-8 text, a null list,
// a null id or an id outside [0, 2^31) is a malformed Record at its row (1-based over the whole
// file). A file that is not Parquet, a missing column or a column of another type throws ReadError
// naming the file. Arrow's own threads are off: `prepare` parallelises elsewhere.
// Built on Apache Arrow/Parquet C++ (the pyarrow wheel's libraries, CMakeLists.txt); only
// parquet_reader.cpp sees Arrow's headers. Without Arrow at build time, parquet_unavailable.cpp
// stands in and every open throws ReadError saying how to get it.
#pragma once

#include <memory>
#include <string>

#include "data/readers/reader.h"

namespace ropex::readers {

std::unique_ptr<RecordReader> open_parquet_reader(const std::string& path, const ReaderOptions& options);

// Whether this build reads Parquet (false: built without Arrow, open_parquet_reader throws).
bool parquet_available();

}  // namespace ropex::readers
