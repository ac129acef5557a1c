// Corpus readers: one record stream over every input format `ropex prepare` takes.
//
// A reader turns one input file into a stream of Records, in file order: a document's text, a
// document's token ids (pre-tokenized inputs), or a malformed record (what is wrong, and where).
// Formats (data/readers/format.h decides which one a file is, by its name and its first bytes):
//   - .jsonl, plain or compressed (.jsonl.gz, .jsonl.zst): one JSON object per line, the text in
//     ReaderOptions::text_field, or token ids (an array of integers) in ReaderOptions::ids_field;
//   - .txt, plain or compressed: one document per file, or split at blank lines;
//   - .parquet: the text (a string column) or ids (a list-of-integers column) in the named column.
// Memory does not grow with the file: compressed inputs are decompressed in fixed-size pieces,
// lines and Parquet rows are read a batch at a time. It grows with the largest record, which is
// held whole: a .jsonl line, a Parquet value, and for .txt a paragraph or (one document per file)
// the whole file.
//
// What readers report, and how:
//   - a record that cannot be a document (bad JSON, missing field, wrong type, invalid UTF-8, an id
//     that is not an integer in [0, 2^31)) is a Record of kind `malformed`, and the stream goes on;
//   - input that cannot be read further (a corrupt or truncated compressed stream, a Parquet file
//     without the column, an I/O error) throws ReadError naming the file and the place.
// Readers do not tokenize, check ids against a vocabulary, or decide what malformed records mean
// (skip or stop): `prepare` does (data/prepare.h).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ropex::readers {

// Input that cannot be read further; what() names the file and the place.
class ReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class TxtSplit { file, blank_line };

struct ReaderOptions {
  std::string text_field = "text";  // .jsonl / .parquet: the field or column holding the text
  std::string ids_field;            // non-empty: inputs are pre-tokenized, ids in this field or column
  TxtSplit txt_split = TxtSplit::file;
};

struct Record {
  enum class Kind { text, ids, malformed };
  Kind kind = Kind::text;
  std::string text;           // kind text: the document; kind malformed: what is wrong
  std::vector<int32_t> ids;   // kind ids: the document's token ids, as stored
  int64_t number = 0;         // where it starts: 1-based line (jsonl, txt) or row (parquet)
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // The next record, false at the end of the file. Throws ReadError when the input cannot be read
  // further.
  virtual bool next(Record& out) = 0;
  // Bytes of the file on disk consumed so far (compressed bytes for compressed inputs): progress.
  virtual uint64_t bytes_consumed() const = 0;
  // "FILE:LINE" or "FILE: row N", for messages about the record at `number`.
  virtual std::string place(int64_t number) const = 0;
};

// Opens `path` with the reader its format needs (format.h). Throws ReadError (or
// input::InputFileError for a missing or non-regular file) naming the path.
std::unique_ptr<RecordReader> open_reader(const std::string& path, const ReaderOptions& options);

}  // namespace ropex::readers
