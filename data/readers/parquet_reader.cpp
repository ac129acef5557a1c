// See parquet_reader.h. The only file that includes Arrow's headers. Compiled to nothing without
// Arrow (ROPEX_WITH_PARQUET undefined): parquet_unavailable.cpp stands in then.
//
// How it streams: parquet::arrow::FileReader's RecordBatchReader over the leaves of the one column,
// with the file read through a buffered stream (ReaderProperties::enable_buffered_stream: a column
// chunk is read a page at a time, not whole), no pre-buffering (which would read whole column chunks
// ahead) and no threads; batches of about kBatchBytes of uncompressed column data, from the average
// row size in the footer. Arrow reports errors as Status; Parquet code may also throw
// ParquetException, so every call into it sits inside a catch that turns it into ReadError.
#ifdef ROPEX_WITH_PARQUET

#include "data/readers/parquet_reader.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string_view>
#include <type_traits>
#include <vector>

#include <arrow/array.h>
#include <arrow/io/file.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/status.h>
#include <arrow/type.h>
#include <arrow/type_traits.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/properties.h>

#include "data/readers/utf8.h"

namespace ropex::readers {
namespace {

constexpr int64_t kBatchBytes = 4 << 20;      // uncompressed column bytes per batch, about
constexpr int64_t kMaxBatchRows = 64 << 10;   // rows per batch at most (tiny rows)
constexpr int64_t kStreamBufferBytes = 1 << 20;  // the buffered stream's read size

// A malformed row: what is wrong (Record::text of a malformed Record).
struct Malformed {
  std::string what;
};

bool is_text_type(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW: return true;
    case arrow::Type::DICTIONARY:
      return is_text_type(*static_cast<const arrow::DictionaryType&>(type).value_type());
    default: return false;
  }
}

bool is_ids_type(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST:
      return arrow::is_integer(static_cast<const arrow::BaseListType&>(type).value_type()->id());
    default: return false;
  }
}

// The text of row `i` (not null) of a column whose type passed is_text_type.
std::string_view text_at(const arrow::Array& column, int64_t i) {
  switch (column.type_id()) {
    case arrow::Type::STRING: return static_cast<const arrow::StringArray&>(column).GetView(i);
    case arrow::Type::LARGE_STRING: return static_cast<const arrow::LargeStringArray&>(column).GetView(i);
    case arrow::Type::STRING_VIEW: return static_cast<const arrow::StringViewArray&>(column).GetView(i);
    case arrow::Type::DICTIONARY: {
      const auto& dict = static_cast<const arrow::DictionaryArray&>(column);
      const int64_t k = dict.GetValueIndex(i);
      if (k < 0 || k >= dict.dictionary()->length()) throw Malformed{"dictionary index " + std::to_string(k) + " out of range"};
      if (dict.dictionary()->IsNull(k)) throw Malformed{"null text"};
      return text_at(*dict.dictionary(), k);
    }
    default: throw Malformed{"not a string: " + column.type()->ToString()};  // excluded at open
  }
}

template <class ArrowInt>
void append_ids(const arrow::Array& values, int64_t offset, int64_t length, std::vector<int32_t>& ids) {
  using T = typename ArrowInt::c_type;
  const auto& v = static_cast<const arrow::NumericArray<ArrowInt>&>(values);
  for (int64_t k = 0; k < length; ++k) {
    if (v.IsNull(offset + k)) throw Malformed{"null id at index " + std::to_string(k)};
    const T id = v.Value(offset + k);
    bool negative = false;
    if constexpr (std::is_signed_v<T>) negative = id < 0;
    if (negative || static_cast<uint64_t>(id) > static_cast<uint64_t>(INT32_MAX)) {
      throw Malformed{"id " + std::to_string(id) + " at index " + std::to_string(k) + " is not in [0, 2^31)"};
    }
    ids.push_back(static_cast<int32_t>(id));
  }
}

// The ids of row `i` (not null) of a column whose type passed is_ids_type.
void ids_at(const arrow::Array& column, int64_t i, std::vector<int32_t>& ids) {
  int64_t offset = 0, length = 0;
  const arrow::Array* values = nullptr;
  switch (column.type_id()) {
    case arrow::Type::LIST: {
      const auto& l = static_cast<const arrow::ListArray&>(column);
      offset = l.value_offset(i), length = l.value_length(i), values = l.values().get();
      break;
    }
    case arrow::Type::LARGE_LIST: {
      const auto& l = static_cast<const arrow::LargeListArray&>(column);
      offset = l.value_offset(i), length = l.value_length(i), values = l.values().get();
      break;
    }
    case arrow::Type::FIXED_SIZE_LIST: {
      const auto& l = static_cast<const arrow::FixedSizeListArray&>(column);
      offset = l.value_offset(i), length = l.value_length(i), values = l.values().get();
      break;
    }
    default: throw Malformed{"not a list: " + column.type()->ToString()};  // excluded at open
  }
  if (offset < 0 || length < 0 || offset + length > values->length()) throw Malformed{"list out of its values' bounds"};
  ids.clear();
  ids.reserve(static_cast<size_t>(length));
  switch (values->type_id()) {
    case arrow::Type::INT8: return append_ids<arrow::Int8Type>(*values, offset, length, ids);
    case arrow::Type::INT16: return append_ids<arrow::Int16Type>(*values, offset, length, ids);
    case arrow::Type::INT32: return append_ids<arrow::Int32Type>(*values, offset, length, ids);
    case arrow::Type::INT64: return append_ids<arrow::Int64Type>(*values, offset, length, ids);
    case arrow::Type::UINT8: return append_ids<arrow::UInt8Type>(*values, offset, length, ids);
    case arrow::Type::UINT16: return append_ids<arrow::UInt16Type>(*values, offset, length, ids);
    case arrow::Type::UINT32: return append_ids<arrow::UInt32Type>(*values, offset, length, ids);
    case arrow::Type::UINT64: return append_ids<arrow::UInt64Type>(*values, offset, length, ids);
    default: throw Malformed{"ids of type " + values->type()->ToString()};  // excluded at open
  }
}

// The Parquet leaf columns under a top-level field (one for a string, one for a list of integers).
void collect_leaves(const parquet::arrow::SchemaField& field, std::vector<int>& leaves) {
  if (field.column_index >= 0) leaves.push_back(field.column_index);
  for (const auto& child : field.children) collect_leaves(child, leaves);
}

class ParquetReader final : public RecordReader {
 public:
  ParquetReader(const std::string& path, const ReaderOptions& options)
      : path_(path), ids_mode_(!options.ids_field.empty()),
        column_name_(ids_mode_ ? options.ids_field : options.text_field) {
    try {
      open();
    } catch (const ReadError&) {
      throw;
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

  bool next(Record& out) override {
    try {
      while (row_ == batch_rows_) {
        if (!read_batch()) return false;
      }
    } catch (const ReadError&) {
      throw;
    } catch (const std::exception& e) {
      throw ReadError(path_ + ": cannot read the rows after row " + std::to_string(rows_before_ + row_) + ": " + e.what());
    }
    const int64_t i = row_++;
    out.number = rows_before_ + i + 1;
    out.text.clear();
    out.ids.clear();
    try {
      if (column_->IsNull(i)) throw Malformed{ids_mode_ ? "null list (no token ids)" : "null text"};
      if (ids_mode_) {
        ids_at(*column_, i, out.ids);
        out.kind = Record::Kind::ids;
      } else {
        const std::string_view text = text_at(*column_, i);
        if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
          throw Malformed{"invalid UTF-8 at byte " + std::to_string(bad)};
        }
        out.text.assign(text);
        out.kind = Record::Kind::text;
      }
    } catch (const Malformed& m) {
      out.kind = Record::Kind::malformed;
      out.ids.clear();
      out.text = m.what;
    }
    return true;
  }

  uint64_t bytes_consumed() const override {
    if (done_ || total_rows_ <= 0) return done_ ? file_size_ : 0;
    const double part = static_cast<double>(rows_before_ + row_) / static_cast<double>(total_rows_);
    return std::min(file_size_, static_cast<uint64_t>(part * static_cast<double>(file_size_)));
  }

  std::string place(int64_t number) const override { return path_ + ": row " + std::to_string(number); }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw ReadError("cannot read Parquet file '" + path_ + "': " + why);
  }
  void check(const arrow::Status& status) const {
    if (!status.ok()) fail(status.ToString());
  }

  void open() {
    auto file = arrow::io::ReadableFile::Open(path_);
    check(file.status());
    auto size = (*file)->GetSize();
    check(size.status());
    file_size_ = static_cast<uint64_t>(*size);

    parquet::ReaderProperties properties(arrow::default_memory_pool());
    properties.enable_buffered_stream();
    properties.set_buffer_size(kStreamBufferBytes);
    parquet::arrow::FileReaderBuilder builder;
    check(builder.Open(*file, properties));
    const std::shared_ptr<parquet::FileMetaData> metadata = builder.raw_reader()->metadata();
    total_rows_ = metadata->num_rows();

    parquet::ArrowReaderProperties arrow_properties;
    arrow_properties.set_use_threads(false);
    arrow_properties.set_pre_buffer(false);
    auto reader = builder.properties(arrow_properties)->Build();
    check(reader.status());
    reader_ = std::move(*reader);

    std::shared_ptr<arrow::Schema> schema;
    check(reader_->GetSchema(&schema));
    const int field = schema->GetFieldIndex(column_name_);
    if (field < 0) missing_column(*schema);
    check_type(*schema->field(field)->type());

    std::vector<int> leaves;
    collect_leaves(reader_->manifest().schema_fields.at(static_cast<size_t>(field)), leaves);
    reader_->set_batch_size(batch_rows_for(*metadata, leaves));
    std::vector<int> row_groups(static_cast<size_t>(metadata->num_row_groups()));
    for (size_t g = 0; g < row_groups.size(); ++g) row_groups[g] = static_cast<int>(g);
    auto batches = reader_->GetRecordBatchReader(row_groups, leaves);
    check(batches.status());
    batches_ = std::move(*batches);
  }

  [[noreturn]] void missing_column(const arrow::Schema& schema) const {
    std::string names;
    for (const auto& f : schema.fields()) names += (names.empty() ? "'" : ", '") + f->name() + "'";
    if (schema.GetAllFieldIndices(column_name_).size() > 1) {
      fail("more than one column is named '" + column_name_ + "' (columns: " + names + ")");
    }
    fail("no column '" + column_name_ + "' (columns: " + (names.empty() ? "none" : names) + "): pass " +
         (ids_mode_ ? "--ids-field" : "--text-field") + " NAME");
  }

  void check_type(const arrow::DataType& type) const {
    const std::string what = "column '" + column_name_ + "' is " + type.ToString();
    if (!ids_mode_ && !is_text_type(type)) {
      fail(what + ", expected a string column" +
           (is_ids_type(type) ? " (token ids? pass --ids-field " + column_name_ + ")" : ""));
    }
    if (ids_mode_ && !is_ids_type(type)) {
      fail(what + ", expected a list of integers (token ids)" +
           (is_text_type(type) ? " (text? pass --text-field " + column_name_ + " without --ids-field)" : ""));
    }
  }

  // Rows per batch: kBatchBytes of the column's uncompressed data at its average row size.
  static int64_t batch_rows_for(const parquet::FileMetaData& metadata, const std::vector<int>& leaves) {
    int64_t bytes = 0;
    for (int g = 0; g < metadata.num_row_groups(); ++g) {
      const auto row_group = metadata.RowGroup(g);
      for (int leaf : leaves) bytes += row_group->ColumnChunk(leaf)->total_uncompressed_size();
    }
    const int64_t per_row = metadata.num_rows() > 0 ? std::max<int64_t>(1, bytes / metadata.num_rows()) : 1;
    return std::clamp<int64_t>(kBatchBytes / per_row, 1, kMaxBatchRows);
  }

  // The next batch into column_; false at the end of the file.
  bool read_batch() {
    if (done_) return false;
    rows_before_ += batch_rows_;
    row_ = batch_rows_ = 0;
    column_.reset();
    std::shared_ptr<arrow::RecordBatch> batch;
    const arrow::Status status = batches_->ReadNext(&batch);
    if (!status.ok()) {
      throw ReadError(path_ + ": cannot read the rows after row " + std::to_string(rows_before_) + ": " + status.ToString());
    }
    if (!batch) {
      done_ = true;
      batches_.reset();
      return false;
    }
    if (batch->num_columns() != 1) fail("expected one column in a batch, got " + std::to_string(batch->num_columns()));
    column_ = batch->column(0);
    // Structural checks (buffer sizes, offsets within their data), cheap: a damaged file must not
    // become an out-of-bounds read. Not ValidateFull, which would refuse a whole batch for one
    // row's invalid UTF-8 instead of reporting that row.
    if (const arrow::Status valid = column_->Validate(); !valid.ok())
      throw ReadError(path_ + ": the rows after row " + std::to_string(rows_before_) + " decode to a damaged column: " +
                      valid.ToString());
    batch_rows_ = batch->num_rows();
    return true;
  }

  std::string path_;
  bool ids_mode_;
  std::string column_name_;
  uint64_t file_size_ = 0;
  int64_t total_rows_ = 0;
  std::unique_ptr<parquet::arrow::FileReader> reader_;    // outlives batches_
  std::unique_ptr<arrow::RecordBatchReader> batches_;
  std::shared_ptr<arrow::Array> column_;  // the current batch's column
  int64_t rows_before_ = 0;  // rows of the file before the current batch
  int64_t batch_rows_ = 0;
  int64_t row_ = 0;          // the next row in the current batch
  bool done_ = false;
};

}  // namespace

std::unique_ptr<RecordReader> open_parquet_reader(const std::string& path, const ReaderOptions& options) {
  return std::make_unique<ParquetReader>(path, options);
}

bool parquet_available() { return true; }

}  // namespace ropex::readers

#endif  // ROPEX_WITH_PARQUET
