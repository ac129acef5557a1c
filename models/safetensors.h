// safetensors IO for ropex, without LibTorch.
//
// What this does:
//   * SafetensorsFile: memory-maps one .safetensors file read-only and validates its header as
//     untrusted input. Every failure is a std::runtime_error naming the file, the tensor or key
//     where there is one, and what was expected.
//   * write_file / write_checkpoint: write one file, or a transformers-style sharded checkpoint
//     (model-0000k-of-0000K.safetensors + model.safetensors.index.json), each file atomically.
//   * CheckpointReader: opens a checkpoint directory (single file or index + shards) and
//     validates the index against the shards.
//
// What this does not do:
//   * No dtype conversion and no at::Tensor: callers wrap data() pointers themselves
//     (at::from_blob). Data is little-endian; only little-endian hosts are supported.
//   * Pointers are only as aligned as the file makes them: the data section starts at
//     8 + header length, and regions are packed back to back, so a tensor can sit at an
//     offset that is not a multiple of its element size.
//   * A mapped file that is truncated or rewritten by someone else while mapped raises SIGBUS;
//     that is outside what a reader can guard against.
//
// Validation rules (as strict as the Rust `safetensors` crate, so whatever we accept, the
// Python/Rust reader accepts too):
//   * 8-byte little-endian header length N, N <= 100'000'000, 8 + N <= file size.
//   * The header is UTF-8 JSON, a JSON object, with no duplicate key at any depth.
//   * "__metadata__", if present, is an object of string values.
//   * Every other entry is an object with "dtype" (known name), "shape" (array of non-negative
//     integers) and "data_offsets" ([begin, end], unsigned integers, begin <= end). Other keys
//     in an entry are ignored, as the Rust crate does.
//   * product(shape) * dtype_size == end - begin, with overflow detected.
//   * Sorted by offsets, regions are contiguous from 0 (no gap, no overlap) and the last one
//     ends exactly at the end of the file: no trailing bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ropex::st {

enum class DType { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 };

size_t dtype_size(DType);       // bytes per element
const char* dtype_name(DType);  // "F32", "BF16", ... as in safetensors headers
// Throws "<context>: unknown dtype '<s>' (allowed: BOOL, U8, ...)".
DType parse_dtype(const std::string& s, const std::string& context);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the start of the data section
  int64_t numel() const;
};

// Memory-mapped, fully validated read-only view of one .safetensors file. Move-only.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // sorted by data offset
  const TensorInfo* find(const std::string& name) const;               // nullptr if absent
  const TensorInfo& at(const std::string& name) const;                 // throws naming file + tensor
  const void* data(const TensorInfo&) const;  // pointer into the mapping (begin offset applied)
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  uint64_t header_size() const { return header_size_; }  // N, the JSON header's length in bytes
  // Tells the kernel the mapped bytes [p, p + n) will not be read again soon (the whole pages inside
  // them leave this process's resident set; a later read faults them in again).
  void drop_pages(const void* p, size_t n) const;

 private:
  void release() noexcept;

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  uint64_t header_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;  // index into tensors_
  std::map<std::string, std::string> metadata_;
};

// What the writer takes: a name, dtype, shape and a pointer to contiguous little-endian bytes.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // may be null only when the tensor has no element
};

// Bytes a tensor of this dtype and shape takes. Throws on a negative dim or on overflow.
uint64_t nbytes(DType dtype, const std::vector<int64_t>& shape);

// A small text file (an index, a JSON report), written as atomically as write_file below.
void write_text_file(const std::string& path, const std::string& text);

// Writes atomically: PATH.tmp-<pid>, write, fsync, rename, fsync the directory. Always writes
// "__metadata__": {"format": "pt", ...extra} (an extra "format" other than "pt" is an error).
// Tensors are laid out back to back in the given order; the header is padded with spaces to a
// multiple of 8 bytes. Names must be unique, non-empty and not "__metadata__".
void write_file(const std::string& path, const std::vector<TensorView>& tensors,
                const std::map<std::string, std::string>& extra_metadata = {});

// Writers that never hold more than one tensor: `tensors` gives names, dtypes and shapes (data is
// ignored) and source(i) the bytes of tensor i when it is written: a pointer valid until the next
// call. Same files, checks and atomicity as write_file / write_checkpoint.
using TensorSource = std::function<const void*(size_t index)>;
void write_file_streamed(const std::string& path, const std::vector<TensorView>& tensors, const TensorSource& source,
                         const std::map<std::string, std::string>& extra_metadata = {});
// The bytes a file of these tensors starts with (8-byte length, JSON header padded with spaces to a
// multiple of 8), the data following back to back in this order; `data` is not read.
std::string encode_header(const std::vector<TensorView>& tensors, const std::map<std::string, std::string>& extra_metadata = {});

// Shard file name as transformers spells it: "model-00001-of-00003.safetensors".
std::string shard_file_name(size_t index_1based, size_t count);

// Sharded writing as transformers does. Creates DIR if needed.
//   * Total tensor bytes <= max_shard_bytes (or max_shard_bytes == 0): one file DIR/model.safetensors.
//   * Else shards DIR/model-0000k-of-0000K.safetensors, filled greedily in the given order (a new
//     shard starts when the next tensor would overflow a non-empty one; a tensor larger than the
//     limit thus sits alone), plus DIR/model.safetensors.index.json
//     {"metadata": {"total_size": <sum of tensor bytes>}, "weight_map": {name: file}}.
// Stale files: once the new files are written, any model.safetensors, model.safetensors.index.json
// or model-NNNNN-of-NNNNN.safetensors in DIR that is not part of the new layout is removed (as
// transformers' save_pretrained does), so a reader never sees two layouts. Other files are left
// alone. Each file is atomic; the set of files is not: write to a fresh directory and rename it
// if a crash must never leave a mix.
void write_checkpoint(const std::string& dir, const std::vector<TensorView>& tensors,
                      uint64_t max_shard_bytes,
                      const std::map<std::string, std::string>& extra_metadata = {});

void write_checkpoint_streamed(const std::string& dir, const std::vector<TensorView>& tensors, uint64_t max_shard_bytes,
                               const TensorSource& source, const std::map<std::string, std::string>& extra_metadata = {});

// Reads a directory holding either model.safetensors or model.safetensors.index.json + shards.
//   * Both present: error (ambiguous; write_checkpoint never leaves both).
//   * Index: a JSON object whose "weight_map" is an object of string -> string; "metadata", if
//     present, must be an object (its total_size is not checked: writers disagree on it).
//     Every shard name is a plain file name (no '/', no '\\', no ".."), exists and is a valid
//     safetensors file; every tensor of weight_map is in the shard it names.
//   * A tensor found in two shards: error. A tensor in a shard but absent from weight_map: error
//     (the index and the shards disagree; we refuse rather than guess which one is stale).
//   * Shard files present in DIR but not named by the index are ignored.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& dir);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // throws naming dir + tensor
  const void* data(const std::string& name) const;
  // Releases the resident pages of a tensor's bytes (after they have been copied out).
  void drop_pages(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;  // file name within dir
  const std::string& dir() const { return dir_; }
  bool sharded() const { return sharded_; }

 private:
  struct Entry {
    size_t shard;
    const TensorInfo* info;
  };
  const Entry& entry(const std::string& name) const;
  void open_single(const std::string& file);
  void open_sharded(const std::string& index_path);
  void add_file(const std::string& file_name);

  std::string dir_;
  bool sharded_ = false;
  std::vector<std::string> file_names_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> entries_;
};

// Parses a human size: "5GB" (10^9), "500MB", "2GiB" (2^30), "64KiB", "100B", "1048576" -> bytes.
// Units are case-insensitive, a space may separate number and unit; the number is non-negative and
// may have decimals ("0.5GB") when the result is a whole number of bytes. Throws on junk or overflow,
// naming the value.
uint64_t parse_size(const std::string& s);

}  // namespace ropex::st
