// See parquet_reader.h: the stand-in compiled when CMake found no Arrow/Parquet (ROPEX_WITH_PARQUET
// undefined); parquet_reader.cpp is then empty. Both files are always compiled, so that a glob over
// data/readers/ picks up the right one.
#ifndef ROPEX_WITH_PARQUET

#include "data/readers/parquet_reader.h"

#ifndef ROPEX_PARQUET_PYTHON
#define ROPEX_PARQUET_PYTHON "the build's Python"
#endif

namespace ropex::readers {

std::unique_ptr<RecordReader> open_parquet_reader(const std::string& path, const ReaderOptions&) {
  throw ReadError("cannot read '" + path + "': this ropex was built without Parquet support (no pyarrow in " +
                  ROPEX_PARQUET_PYTHON " at build time): pip install pyarrow==26.0.1 and rebuild");
}

bool parquet_available() { return false; }

}  // namespace ropex::readers

#endif  // ROPEX_WITH_PARQUET
