// safetensors IO for ropex, without LibTorch: validated mmap reader, atomic writer, sharded
// checkpoints. See safetensors.h for the rules this enforces and what it leaves out.
#include "models/safetensors.h"

#include "data/input/files.h"
#include "data/input/json.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts are not supported");

namespace ropex::st {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // same limit as the Rust crate
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

std::string errno_text() { return std::error_code(errno, std::system_category()).message(); }

std::string file_ctx(const std::string& path) { return "safetensors file '" + path + "'"; }

std::string tensor_ctx(const std::string& path, const std::string& name) {
  return file_ctx(path) + ", tensor '" + name + "'";
}

std::string range_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// ---------------------------------------------------------------------------------------------
// dtypes

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 1},       {DType::U8, "U8", 1},           {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},         {DType::U16, "U16", 2},         {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},         {DType::I64, "I64", 8},         {DType::U64, "U64", 8},
    {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},       {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},         {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeEntry& dtype_entry(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e;
  fail("invalid DType value " + std::to_string(static_cast<int>(d)));
}

// ---------------------------------------------------------------------------------------------
// checked arithmetic

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

// Bytes of a tensor whose dims are already known to be non-negative; false on overflow.
bool checked_nbytes(DType dtype, const std::vector<int64_t>& shape, uint64_t* out) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape)
    if (mul_overflows(n, static_cast<uint64_t>(d), &n)) return false;
  *out = n;
  return true;
}

// ---------------------------------------------------------------------------------------------
// JSON

// Parses [p, p+n) as JSON (depth-bounded, duplicate keys refused at any depth: input/json.h);
// `ctx` prefixes every error.
json parse_json_strict(const char* p, size_t n, const std::string& ctx) {
  try {
    return input::parse_json(std::string_view(p, n), ctx);
  } catch (const input::JsonInputError& e) {
    fail(e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// header entries

const json& required_field(const json& entry, const char* key, const std::string& ctx) {
  auto it = entry.find(key);
  if (it == entry.end()) fail(ctx + ": missing \"" + key + "\" (expected dtype, shape and data_offsets)");
  return *it;
}

std::vector<int64_t> parse_shape(const json& j, const std::string& ctx) {
  if (!j.is_array()) fail(ctx + ": \"shape\" must be an array of non-negative integers, got " + input::json_excerpt(j));
  std::vector<int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(ctx + ": \"shape\" must be an array of non-negative integers, got " + input::json_excerpt(j));
    shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }
  return shape;
}

std::pair<uint64_t, uint64_t> parse_offsets(const json& j, const std::string& ctx) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_number_unsigned() || !j[1].is_number_unsigned())
    fail(ctx + ": \"data_offsets\" must be [begin, end] with two unsigned integers, got " + input::json_excerpt(j));
  const uint64_t begin = j[0].get<uint64_t>(), end = j[1].get<uint64_t>();
  if (begin > end) fail(ctx + ": \"data_offsets\" " + range_text(begin, end) + " has begin > end");
  return {begin, end};
}

TensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry,
                       uint64_t data_size) {
  const std::string ctx = tensor_ctx(path, name);
  if (!entry.is_object()) fail(ctx + ": entry must be a JSON object, got " + input::json_excerpt(entry));
  const json& dtype = required_field(entry, "dtype", ctx);
  if (!dtype.is_string()) fail(ctx + ": \"dtype\" must be a string, got " + input::json_excerpt(dtype));

  TensorInfo t;
  t.name = name;
  t.dtype = parse_dtype(dtype.get<std::string>(), ctx);
  t.shape = parse_shape(required_field(entry, "shape", ctx), ctx);
  std::tie(t.begin, t.end) = parse_offsets(required_field(entry, "data_offsets", ctx), ctx);

  uint64_t bytes = 0;
  if (!checked_nbytes(t.dtype, t.shape, &bytes))
    fail(ctx + ": shape " + input::json_excerpt(entry.at("shape")) + " x " + dtype_name(t.dtype) +
         " overflows 64 bits");
  if (bytes != t.end - t.begin)
    fail(ctx + ": shape " + input::json_excerpt(entry.at("shape")) + " x " + dtype_name(t.dtype) + " needs " +
         std::to_string(bytes) + " bytes but data_offsets " + range_text(t.begin, t.end) + " span " +
         std::to_string(t.end - t.begin));
  if (t.end > data_size)
    fail(ctx + ": data_offsets " + range_text(t.begin, t.end) + " go beyond the data section (" +
         std::to_string(data_size) + " bytes; file truncated?)");
  return t;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& j) {
  const std::string ctx = file_ctx(path) + ", \"__metadata__\"";
  if (!j.is_object()) fail(ctx + ": must be an object of strings, got " + input::json_excerpt(j));
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) fail(ctx + ": value of '" + k + "' must be a string, got " + input::json_excerpt(v));
    out[k] = v.get<std::string>();
  }
  return out;
}

// Regions, sorted by offsets, must tile the data section exactly: no gap, no overlap, no tail.
void check_layout(const std::string& path, const std::vector<TensorInfo>& sorted, uint64_t data_size) {
  uint64_t covered = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : sorted) {
    if (t.begin < covered)
      fail(tensor_ctx(path, t.name) + ": data_offsets " + range_text(t.begin, t.end) +
           " overlap tensor '" + prev->name + "' " + range_text(prev->begin, prev->end));
    if (t.begin > covered)
      fail(tensor_ctx(path, t.name) + ": data_offsets " + range_text(t.begin, t.end) +
           " leave a gap after byte " + std::to_string(covered) +
           " (regions must be contiguous from 0, as the safetensors crate requires)");
    covered = t.end;
    prev = &t;
  }
  if (covered != data_size)
    fail(file_ctx(path) + ": data section has " + std::to_string(data_size) +
         " bytes but the tensors cover " + std::to_string(covered) + " (trailing bytes)");
}

// ---------------------------------------------------------------------------------------------
// files

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

uint64_t read_le_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void write_all(int fd, const void* data, uint64_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
    const ssize_t w = ::write(fd, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("writing '" + path + "': " + errno_text());
    p += w;
    n -= static_cast<uint64_t>(w);
  }
}

std::string parent_dir(const std::string& path) {
  const std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

void fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) fail("fsync of directory '" + dir + "': " + errno_text());
}

// PATH.tmp-<pid>, written then fsync'ed and renamed over PATH by commit(); removed if not committed.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path)
      : path_(path), tmp_(path + ".tmp-" + std::to_string(::getpid())), fd_(open_tmp(path, tmp_)) {}
  ~AtomicFile() {
    if (!committed_) {
      if (fd_.get() >= 0) ::close(fd_.release());
      ::unlink(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, uint64_t n) { write_all(fd_.get(), data, n, tmp_); }

 private:
  static int open_tmp(const std::string& path, const std::string& tmp) {
    if (path.empty()) fail("cannot write a file with an empty path");
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("creating '" + tmp + "': " + errno_text());
    return fd;
  }

 public:

  void commit() {
    if (::fsync(fd_.get()) != 0) fail("fsync of '" + tmp_ + "': " + errno_text());
    if (::close(fd_.release()) != 0) fail("closing '" + tmp_ + "': " + errno_text());
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail("renaming '" + tmp_ + "' to '" + path_ + "': " + errno_text());
    committed_ = true;
    fsync_dir(parent_dir(path_));
  }

 private:
  std::string path_, tmp_;
  Fd fd_;
  bool committed_ = false;
};

// Reads a small text file (an index), refusing anything absurdly large or not a regular file.
std::string read_text_file(const std::string& path) {
  return input::read_regular_file(path, "a safetensors index (JSON)", kMaxHeaderSize);
}

// ---------------------------------------------------------------------------------------------
// writing

// Checks names (unique, non-empty, not "__metadata__"), shapes, data pointers and that the total
// fits 64 bits; returns the byte size of each tensor.
std::vector<uint64_t> check_views(const std::vector<TensorView>& tensors, const std::string& ctx, bool need_data = true) {
  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    const std::string tctx = ctx + ", tensor '" + t.name + "'";
    if (t.name.empty() || t.name == "__metadata__") fail(tctx + ": invalid tensor name");
    if (!names.insert(t.name).second) fail(tctx + ": duplicate tensor name");
    uint64_t n = 0;
    try {
      n = nbytes(t.dtype, t.shape);
    } catch (const std::exception& e) {
      fail(tctx + ": " + e.what());
    }
    if (need_data && n > 0 && t.data == nullptr) fail(tctx + ": null data pointer");
    if (__builtin_add_overflow(total, n, &total)) fail(tctx + ": total size overflows 64 bits");
    sizes.push_back(n);
  }
  return sizes;
}

std::string build_header(const std::vector<TensorView>& tensors, const std::vector<uint64_t>& sizes,
                         const std::map<std::string, std::string>& extra, const std::string& ctx) {
  nlohmann::ordered_json h;
  h["__metadata__"]["format"] = "pt";
  for (const auto& [k, v] : extra) {
    if (k == "format" && v != "pt") fail(ctx + ": metadata \"format\" must be \"pt\", got '" + v + "'");
    h["__metadata__"][k] = v;
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& e = h[tensors[i].name];
    e["dtype"] = dtype_name(tensors[i].dtype);
    e["shape"] = tensors[i].shape;
    e["data_offsets"] = {offset, offset + sizes[i]};
    offset += sizes[i];
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(ctx + ": cannot encode the header (" + e.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// Greedy plan: consecutive tensors, a new shard when the next one would overflow a non-empty one.
std::vector<std::vector<size_t>> plan_shards(const std::vector<uint64_t>& sizes, uint64_t limit) {
  std::vector<std::vector<size_t>> shards;
  uint64_t current = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (shards.empty() || (!shards.back().empty() && current + sizes[i] > limit)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += sizes[i];
  }
  return shards;
}

// "model-NNNNN-of-NNNNN.safetensors", N a decimal digit.
bool is_shard_file_name(const std::string& name) {
  const std::string pattern = "model-#####-of-#####.safetensors";
  if (name.size() != pattern.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const bool ok = pattern[i] == '#' ? std::isdigit(static_cast<unsigned char>(name[i])) != 0
                                      : name[i] == pattern[i];
    if (!ok) return false;
  }
  return true;
}

bool is_checkpoint_file_name(const std::string& name) {
  return name == kSingleFile || name == kIndexFile || is_shard_file_name(name);
}

// Removes checkpoint files of an older layout: those matching is_checkpoint_file_name, not in keep.
void remove_stale(const std::string& dir, const std::set<std::string>& keep) {
  bool removed = false;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && is_checkpoint_file_name(name) && !keep.count(name)) {
      fs::remove(e.path());
      removed = true;
    }
  }
  if (removed) fsync_dir(dir);
}

bool is_plain_file_name(const std::string& f) {
  return !f.empty() && f.find('/') == std::string::npos && f.find('\\') == std::string::npos &&
         f.find("..") == std::string::npos && f != "." && f.find('\0') == std::string::npos;
}

}  // namespace

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

// -------------------------------------------------------------------------------------------------
// dtypes

size_t dtype_size(DType d) { return dtype_entry(d).size; }

const char* dtype_name(DType d) { return dtype_entry(d).name; }

DType parse_dtype(const std::string& s, const std::string& context) {
  std::string allowed;
  for (const auto& e : kDTypes) {
    if (s == e.name) return e.dtype;
    allowed += (allowed.empty() ? "" : ", ") + std::string(e.name);
  }
  fail(context + ": unknown dtype '" + s + "' (allowed: " + allowed + ")");
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t nbytes(DType dtype, const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d < 0) fail("negative dimension " + std::to_string(d) + " in shape");
  uint64_t n = 0;
  if (!checked_nbytes(dtype, shape, &n)) fail("shape x dtype size overflows 64 bits");
  return n;
}

// -------------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  if (path.empty()) fail("safetensors file: empty path");
  Fd fd(input::open_regular_file(path, "a .safetensors file"));  // a FIFO is refused, not waited on
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(file_ctx(path) + ": cannot stat: " + errno_text());
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    fail(file_ctx(path) + ": " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");

  map_ = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(file_ctx(path) + ": mmap failed: " + errno_text());
  }
  map_size_ = file_size;
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    header_size_ = read_le_u64(bytes);
    if (header_size_ > kMaxHeaderSize)
      fail(file_ctx(path) + ": header length " + std::to_string(header_size_) + " is larger than the " +
           std::to_string(kMaxHeaderSize) + "-byte limit (corrupt file?)");
    if (8 + header_size_ > file_size)
      fail(file_ctx(path) + ": header length " + std::to_string(header_size_) + " goes beyond the file (" +
           std::to_string(file_size) + " bytes)");
    const uint64_t data_size = file_size - 8 - header_size_;

    const json header =
        parse_json_strict(reinterpret_cast<const char*>(bytes + 8), header_size_, file_ctx(path) + " header");
    if (!header.is_object()) fail(file_ctx(path) + ": header must be a JSON object, got " + header.type_name());
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__")
        metadata_ = parse_metadata(path, entry);
      else
        tensors_.push_back(parse_entry(path, name, entry, data_size));
    }
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    check_layout(path, tensors_, data_size);
    for (size_t i = 0; i < tensors_.size(); ++i) by_name_[tensors_[i].name] = i;
  } catch (...) {
    release();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { release(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      header_size_(other.header_size_),
      tensors_(std::move(other.tensors_)),
      by_name_(std::move(other.by_name_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    header_size_ = other.header_size_;
    tensors_ = std::move(other.tensors_);
    by_name_ = std::move(other.by_name_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsFile::release() noexcept {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  if (const TensorInfo* t = find(name)) return *t;
  fail(tensor_ctx(path_, name) + ": no such tensor in the file");
}

const void* SafetensorsFile::data(const TensorInfo& t) const {
  const uint64_t data_start = 8 + header_size_;
  if (!map_ || t.begin > t.end || t.end > map_size_ - data_start)
    fail(tensor_ctx(path_, t.name) + ": offsets " + range_text(t.begin, t.end) + " do not belong to this file");
  return static_cast<const char*>(map_) + data_start + t.begin;
}

void SafetensorsFile::drop_pages(const void* p, size_t n) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

// -------------------------------------------------------------------------------------------------
// writing

namespace {
std::string encode_header_in(const std::vector<TensorView>& tensors, const std::map<std::string, std::string>& extra_metadata,
                             const std::string& ctx) {
  const std::vector<uint64_t> sizes = check_views(tensors, ctx, false);
  const std::string header = build_header(tensors, sizes, extra_metadata, ctx);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(uint64_t(header.size()) >> (8 * i));
  return out + header;
}
}  // namespace

std::string encode_header(const std::vector<TensorView>& tensors, const std::map<std::string, std::string>& extra_metadata) {
  return encode_header_in(tensors, extra_metadata, "safetensors header");
}

void write_file_streamed(const std::string& path, const std::vector<TensorView>& tensors, const TensorSource& source,
                         const std::map<std::string, std::string>& extra_metadata) {
  const std::string ctx = "writing " + file_ctx(path);
  const std::vector<uint64_t> sizes = check_views(tensors, ctx, false);
  const std::string header = encode_header_in(tensors, extra_metadata, ctx);
  AtomicFile f(path);
  f.write(header.data(), header.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const void* data = sizes[i] ? source(i) : nullptr;
    if (sizes[i] && !data) fail(ctx + ", tensor '" + tensors[i].name + "': no data");
    f.write(data, sizes[i]);
  }
  f.commit();
}

void write_file(const std::string& path, const std::vector<TensorView>& tensors,
                const std::map<std::string, std::string>& extra_metadata) {
  check_views(tensors, "writing " + file_ctx(path));
  write_file_streamed(path, tensors, [&](size_t i) { return tensors[i].data; }, extra_metadata);
}

std::string shard_file_name(size_t index_1based, size_t count) {
  if (count > 99999 || index_1based < 1 || index_1based > count)
    fail("shard " + std::to_string(index_1based) + " of " + std::to_string(count) + ": out of range");
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", index_1based, count);
  return buf;
}

void write_checkpoint(const std::string& dir, const std::vector<TensorView>& tensors,
                      uint64_t max_shard_bytes, const std::map<std::string, std::string>& extra_metadata) {
  check_views(tensors, "writing checkpoint '" + dir + "'");
  write_checkpoint_streamed(dir, tensors, max_shard_bytes, [&](size_t i) { return tensors[i].data; }, extra_metadata);
}

void write_checkpoint_streamed(const std::string& dir, const std::vector<TensorView>& tensors, uint64_t max_shard_bytes,
                               const TensorSource& source, const std::map<std::string, std::string>& extra_metadata) {
  if (dir.empty()) fail("write_checkpoint: empty directory path");
  const std::vector<uint64_t> sizes = check_views(tensors, "writing checkpoint '" + dir + "'", false);
  uint64_t total = 0;
  for (uint64_t s : sizes) total += s;  // check_views made sure this fits
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("writing checkpoint '" + dir + "': cannot create the directory: " + ec.message());

  std::set<std::string> keep;
  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    write_file_streamed((fs::path(dir) / kSingleFile).string(), tensors, source, extra_metadata);
    keep.insert(kSingleFile);
  } else {
    const auto shards = plan_shards(sizes, max_shard_bytes);
    json weight_map = json::object();
    for (size_t k = 0; k < shards.size(); ++k) {
      const std::string name = shard_file_name(k + 1, shards.size());
      std::vector<TensorView> part;
      for (size_t i : shards[k]) {
        part.push_back(tensors[i]);
        weight_map[tensors[i].name] = name;
      }
      write_file_streamed((fs::path(dir) / name).string(), part, [&](size_t j) { return source(shards[k][j]); },
                          extra_metadata);
      keep.insert(name);
    }
    const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_text_file((fs::path(dir) / kIndexFile).string(), index.dump(2) + "\n");
    keep.insert(kIndexFile);
  }
  remove_stale(dir, keep);
}

// -------------------------------------------------------------------------------------------------
// CheckpointReader

CheckpointReader::CheckpointReader(const std::string& dir) : dir_(dir) {
  if (dir.empty()) fail("checkpoint: empty directory path");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("checkpoint '" + dir + "': not an existing directory");
  const bool single = fs::exists(fs::path(dir) / kSingleFile, ec);
  const bool index = fs::exists(fs::path(dir) / kIndexFile, ec);
  if (single && index)
    fail("checkpoint '" + dir + "': both " + kSingleFile + " and " + kIndexFile +
         " exist; remove the stale one");
  if (single)
    open_single(kSingleFile);
  else if (index)
    open_sharded((fs::path(dir) / kIndexFile).string());
  else
    fail("checkpoint '" + dir + "': neither " + kSingleFile + " nor " + kIndexFile + " found");
}

void CheckpointReader::add_file(const std::string& file_name) {
  file_names_.push_back(file_name);
  files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir_) / file_name).string()));
}

void CheckpointReader::open_single(const std::string& file) {
  add_file(file);
  for (const auto& t : files_[0]->tensors()) entries_[t.name] = {0, &t};
}

void CheckpointReader::open_sharded(const std::string& index_path) {
  sharded_ = true;
  const std::string ctx = "checkpoint index '" + index_path + "'";
  const std::string text = read_text_file(index_path);
  const json index = parse_json_strict(text.data(), text.size(), ctx);
  if (!index.is_object()) fail(ctx + ": must be a JSON object, got " + index.type_name());
  if (index.contains("metadata") && !index["metadata"].is_object())
    fail(ctx + ": \"metadata\" must be an object, got " + input::json_excerpt(index["metadata"]));
  if (!index.contains("weight_map") || !index["weight_map"].is_object())
    fail(ctx + ": \"weight_map\" must be an object of tensor name -> shard file name");

  // Open every named shard once.
  std::map<std::string, size_t> shard_of_file;
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, file] : index["weight_map"].items()) {
    const std::string tctx = ctx + ", tensor '" + name + "'";
    if (!file.is_string()) fail(tctx + ": shard must be a file name string, got " + input::json_excerpt(file));
    const std::string f = file.get<std::string>();
    if (!is_plain_file_name(f)) fail(tctx + ": shard '" + f + "' is not a plain file name (no '/', no '..')");
    weight_map[name] = f;
    if (shard_of_file.count(f)) continue;
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(dir_) / f, ec))
      fail(tctx + ": shard '" + f + "' does not exist in '" + dir_ + "'");
    shard_of_file[f] = files_.size();
    add_file(f);
  }

  // Every tensor of every shard: in one shard only, and indexed.
  for (size_t s = 0; s < files_.size(); ++s) {
    for (const auto& t : files_[s]->tensors()) {
      const std::string tctx = ctx + ", tensor '" + t.name + "'";
      auto [it, inserted] = entries_.try_emplace(t.name, Entry{s, &t});
      if (!inserted)
        fail(tctx + ": present in two shards, '" + file_names_[it->second.shard] + "' and '" + file_names_[s] + "'");
      if (!weight_map.count(t.name))
        fail(tctx + ": present in shard '" + file_names_[s] + "' but missing from weight_map");
    }
  }
  // Every indexed tensor: in the shard the index names.
  for (const auto& [name, f] : weight_map) {
    auto it = entries_.find(name);
    if (it == entries_.end() || file_names_[it->second.shard] != f)
      fail(ctx + ", tensor '" + name + "': weight_map says shard '" + f + "' but the tensor is not in it");
  }
}

const CheckpointReader::Entry& CheckpointReader::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("checkpoint '" + dir_ + "', tensor '" + name + "': no such tensor");
  return it->second;
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

bool CheckpointReader::contains(const std::string& name) const { return entries_.count(name) > 0; }

const TensorInfo& CheckpointReader::info(const std::string& name) const { return *entry(name).info; }

const void* CheckpointReader::data(const std::string& name) const {
  const Entry& e = entry(name);
  return files_[e.shard]->data(*e.info);
}

void CheckpointReader::drop_pages(const std::string& name) const {
  const Entry& e = entry(name);
  files_[e.shard]->drop_pages(files_[e.shard]->data(*e.info), static_cast<size_t>(e.info->end - e.info->begin));
}

const std::string& CheckpointReader::file_of(const std::string& name) const {
  return file_names_[entry(name).shard];
}

// -------------------------------------------------------------------------------------------------
// parse_size

uint64_t parse_size(const std::string& s) {
  const std::string ctx = "size '" + s + "'";
  const std::string expected =
      "expected a non-negative number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 5GB, 0.5GB or 500MB";
  // Digits, then an optional fraction: value = whole + fraction / 10^fraction_digits.
  size_t i = 0;
  uint64_t whole = 0, fraction = 0, scale = 1;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (mul_overflows(whole, 10, &whole) || __builtin_add_overflow(whole, uint64_t(s[i] - '0'), &whole)) fail(ctx + ": too large");
    ++i;
  }
  const size_t whole_digits = i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t first = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (i - first >= 12) fail(ctx + ": more than 12 decimals");
      fraction = fraction * 10 + uint64_t(s[i] - '0');
      scale *= 10;
      ++i;
    }
    if (i == first && whole_digits == 0) fail(ctx + ": " + expected);
  }
  if (i == 0) fail(ctx + ": " + expected);
  while (i < s.size() && s[i] == ' ') ++i;
  std::string unit;
  for (; i < s.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(s[i])));

  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},           {"B", 1},          {"KB", 1000},      {"MB", 1000'000},    {"GB", 1000'000'000},
      {"TB", 1000'000'000'000}, {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30}, {"TIB", 1ull << 40},
  };
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) fail(ctx + ": unknown unit '" + unit + "' (" + expected + ")");
  uint64_t bytes = 0, part = 0;
  if (mul_overflows(whole, it->second, &bytes)) fail(ctx + ": too large");
  // fraction x unit (< 10^12 x 2^40) can exceed 64 bits: computed in 128.
  const unsigned __int128 frac_bytes = static_cast<unsigned __int128>(fraction) * it->second;
  if (frac_bytes % scale != 0) fail(ctx + ": not a whole number of bytes");
  part = static_cast<uint64_t>(frac_bytes / scale);
  if (__builtin_add_overflow(bytes, part, &bytes)) fail(ctx + ": too large");
  return bytes;
}

}  // namespace ropex::st
