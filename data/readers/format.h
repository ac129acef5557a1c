// Which reader an input file needs: its record format (.jsonl, .txt, .parquet) and its
// compression (none, gzip, zstd), from its name and its first bytes.
//
// The name gives the record format after any compression suffix is taken off (data.jsonl.zst is
// jsonl in zstd). The first bytes decide the compression: gzip (1f 8b) and zstd (28 b5 2f fd, or a
// skippable frame) are decompressed whatever the name says, so a shard saved without its suffix is
// still read; a name that promises compression the bytes do not have, a Parquet file ("PAR1")
// named as text, and formats ropex does not read (.bz2, .xz, .zip, .lz4, .7z, .json, ...) are
// errors naming the file and what is accepted. It does not open the records; the readers do.
#pragma once

#include <string>

namespace ropex::readers {

enum class RecordFormat { jsonl, txt, parquet };
enum class Compression { none, gzip, zstd };

struct InputFormat {
  RecordFormat records = RecordFormat::jsonl;
  Compression compression = Compression::none;
};

// From the name alone: throws ReadError (reader.h) for a name ropex does not read.
InputFormat format_from_name(const std::string& path);

// The name, then the first bytes (the file is opened: it must be a regular file). Throws
// ReadError when they disagree in a way that cannot be read (a .gz that is not gzip).
InputFormat detect_format(const std::string& path);

// "jsonl", "jsonl.gz", "parquet", ...: for messages and meta.json.
std::string format_name(const InputFormat& format);

// The accepted names, for messages: ".jsonl, .txt (plain, .gz or .zst) and .parquet".
const std::string& accepted_formats();

}  // namespace ropex::readers
