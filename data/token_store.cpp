// Token store implementation: the crash-safe writer (partial folder, fsync, COMPLETE, rename)
// and the validating mmap reader. See token_store.h for the layout. It does not tokenize or log.
#include "data/token_store.h"

#include "data/input/files.h"
#include "data/input/json.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ropex {

static_assert(std::endian::native == std::endian::little,
              "the token store is written and mapped as little-endian; this host is not");

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kTokensFile = "tokens.bin";
constexpr const char* kIndexFile = "index.bin";
constexpr const char* kMetaFile = "meta.json";
constexpr const char* kCompleteFile = "COMPLETE";
constexpr const char* kOwnerFile = "OWNER";
constexpr const char* kPartialTag = ".partial-";
const char* const kReservedKeys[] = {"format", "version", "vocab_size", "token_bytes", "num_documents", "num_tokens"};

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }
std::string errno_text() { return std::strerror(errno); }

[[noreturn]] void fail_io(const std::string& path, const std::string& what) {
  throw std::runtime_error(what + " " + in_quotes(path) + ": " + errno_text());
}

// "out/" and "out" name the same store; the partial folder is a sibling of the last component.
std::string normalized(const std::string& dir) {
  if (dir.empty()) throw std::runtime_error("token store: empty directory name");
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

std::string this_host() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

bool process_alive(long pid) { return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

// ---- writing files durably ----

std::FILE* open_for_write(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail_io(path, "cannot create");
  return f;
}

void write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n > 0 && std::fwrite(data, 1, n, f) != n) fail_io(path, "cannot write");
}

// Flushes, fsyncs and closes; `f` is null afterwards even on error.
void sync_close(std::FILE*& f, const std::string& path) {
  std::FILE* file = std::exchange(f, nullptr);
  const bool ok = std::fflush(file) == 0 && fsync(fileno(file)) == 0;
  const int saved = errno;
  std::fclose(file);
  errno = saved;
  if (!ok) fail_io(path, "cannot flush to disk");
}

void write_small_file(const std::string& path, const std::string& contents) {
  std::FILE* f = open_for_write(path);
  try {
    write_all(f, contents.data(), contents.size(), path);
  } catch (...) {
    std::fclose(f);
    throw;
  }
  sync_close(f, path);
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail_io(dir, "cannot open directory");
  const bool ok = fsync(fd) == 0;
  ::close(fd);
  if (!ok) fail_io(dir, "cannot sync directory");
}

std::string parent_of(const std::string& dir) {
  const fs::path parent = fs::path(dir).parent_path();
  return parent.empty() ? "." : parent.string();
}

// ---- the destination folder ----

enum class Destination { absent, empty_dir, store, other };

bool is_complete_store(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(path_in(dir, kCompleteFile), ec)) return false;
  json meta;
  try {
    meta = input::read_json_file(path_in(dir, kMetaFile), "a token store's meta.json", size_t{1} << 20);
  } catch (const std::runtime_error&) {
    return false;
  }
  return meta.is_object() && meta.contains("format") && meta["format"] == kTokenStoreFormat;
}

Destination classify(const std::string& dir) {
  std::error_code ec;
  const auto status = fs::symlink_status(dir, ec);
  if (!fs::exists(status)) return Destination::absent;
  if (!fs::is_directory(status)) return Destination::other;
  if (fs::is_empty(dir, ec)) return Destination::empty_dir;
  return is_complete_store(dir) ? Destination::store : Destination::other;
}

void check_destination(const std::string& dir, bool overwrite) {
  switch (classify(dir)) {
    case Destination::absent:
    case Destination::empty_dir:
      return;
    case Destination::store:
      if (overwrite) return;
      throw std::runtime_error("token store " + in_quotes(dir) +
                               " already exists; pass --overwrite (overwrite = true) to replace it");
    case Destination::other:
      throw std::runtime_error(in_quotes(dir) + " exists and is not a ropex token store; refusing to replace it " +
                               "(choose another output directory or remove it yourself)");
  }
}

// Puts `partial` at `dir`. An existing store is swapped out atomically (renameat2 EXCHANGE)
// where the filesystem supports it, else moved aside first, then deleted.
void move_into_place(const std::string& partial, const std::string& dir) {
  if (classify(dir) != Destination::store) {
    if (std::rename(partial.c_str(), dir.c_str()) != 0) fail_io(dir, "cannot rename " + in_quotes(partial) + " to");
    return;
  }
  if (renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(partial);  // now holds the old store
    return;
  }
  if (errno != EINVAL && errno != ENOSYS) fail_io(dir, "cannot exchange " + in_quotes(partial) + " with");
  const std::string old = dir + ".old-" + std::to_string(getpid());
  if (std::rename(dir.c_str(), old.c_str()) != 0) fail_io(dir, "cannot move aside old store");
  if (std::rename(partial.c_str(), dir.c_str()) != 0) fail_io(dir, "cannot rename " + in_quotes(partial) + " to");
  fs::remove_all(old);
}

// ---- reading ----

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path) {
    const int fd = input::open_regular_file(path, "a file of a token store made by ropex prepare");
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      fail_io(path, "cannot stat");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        fail_io(path, "cannot mmap");
      }
      data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
  }
  MappedFile(MappedFile&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~MappedFile() {
    if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string missing_store_hint(const std::string& dir) {
  std::error_code ec;
  const std::string prefix = fs::path(dir).filename().string() + kPartialTag;
  for (const auto& entry : fs::directory_iterator(parent_of(dir), ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) {
      return " (" + in_quotes(entry.path().string()) + " is an unfinished or interrupted prepare; rerun ropex prepare)";
    }
  }
  return "";
}

void check_is_finished_store_dir(const std::string& dir) {
  if (fs::path(dir).filename().string().find(kPartialTag) != std::string::npos) {
    throw std::runtime_error(in_quotes(dir) + " is a partial token store (a prepare that is still running or was " +
                             "interrupted); it is never opened. Rerun ropex prepare.");
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw std::runtime_error("token store " + in_quotes(dir) + " does not exist" + missing_store_hint(dir));
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("token store " + in_quotes(dir) + " is not a directory");
  const std::string complete = path_in(dir, kCompleteFile);
  if (!fs::exists(complete, ec)) {
    throw std::runtime_error(in_quotes(complete) + " is missing: the token store was never finished (rerun ropex prepare)");
  }
}

// Counts are capped so that byte sizes (count x 8) cannot overflow.
int64_t meta_int(const json& meta, const char* key, int64_t min, const std::string& path) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 8 - 1;
  const auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error(in_quotes(path) + ": missing key '" + key + "'");
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > kMax) {
    throw std::runtime_error(in_quotes(path) + ": key '" + key + "' must be an integer in [" + std::to_string(min) + ", " +
                             std::to_string(kMax) + "], got " + input::json_excerpt(*it));
  }
  return it->get<int64_t>();
}

json read_meta(const std::string& dir) {
  const std::string path = path_in(dir, kMetaFile);
  json meta;
  try {
    // meta.json is a few hundred bytes (the document index is its own file).
    meta = input::read_json_file(path, "a token store's meta.json", size_t{1} << 20);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(in_quotes(path) + ": not valid JSON or unreadable (" + e.what() + ")");
  }
  if (!meta.is_object()) throw std::runtime_error(in_quotes(path) + ": expected a JSON object, got " + meta.type_name());
  if (meta.value("format", json()) != kTokenStoreFormat) {
    throw std::runtime_error(in_quotes(path) + ": key 'format' is " + input::json_excerpt(meta.value("format", json())) +
                             ", expected \"" + kTokenStoreFormat + "\"");
  }
  const int64_t version = meta_int(meta, "version", 0, path);
  if (version != kTokenStoreVersion) {
    throw std::runtime_error(in_quotes(path) + ": version " + std::to_string(version) + " is not supported (this ropex reads version " +
                             std::to_string(kTokenStoreVersion) + ")");
  }
  return meta;
}

void check_size(const MappedFile& file, uint64_t expected, const std::string& path, const std::string& why) {
  if (file.size() != expected) {
    throw std::runtime_error(in_quotes(path) + ": " + std::to_string(file.size()) + " bytes, expected " +
                             std::to_string(expected) + " (" + why + "); the store is truncated or corrupt");
  }
}

void check_offsets(const uint64_t* offsets, size_t num_documents, int64_t num_tokens, const std::string& path) {
  if (offsets[0] != 0) throw std::runtime_error(in_quotes(path) + ": offset[0] is " + std::to_string(offsets[0]) + ", expected 0");
  for (size_t i = 1; i <= num_documents; ++i) {
    if (offsets[i] < offsets[i - 1]) {
      throw std::runtime_error(in_quotes(path) + ": offset[" + std::to_string(i) + "] = " + std::to_string(offsets[i]) +
                               " is less than offset[" + std::to_string(i - 1) + "] = " +
                               std::to_string(offsets[i - 1]) + "; offsets must not decrease");
    }
  }
  if (offsets[num_documents] != static_cast<uint64_t>(num_tokens)) {
    throw std::runtime_error(in_quotes(path) + ": last offset is " + std::to_string(offsets[num_documents]) +
                             ", expected num_tokens = " + std::to_string(num_tokens) + " from meta.json");
  }
}

}  // namespace

// ---- free functions ----

int token_bytes_for_vocab(int64_t vocab_size) {
  if (vocab_size < 1) throw std::runtime_error("token store: vocab_size must be >= 1, got " + std::to_string(vocab_size));
  if (vocab_size > (int64_t{1} << 31)) {
    throw std::runtime_error("token store: vocab_size " + std::to_string(vocab_size) + " does not fit int32 ids");
  }
  return vocab_size <= 65536 ? 2 : 4;
}

std::string partial_dir_for(const std::string& dir, long pid) { return normalized(dir) + kPartialTag + std::to_string(pid); }

int remove_stale_partials(const std::string& dir) {
  const std::string d = normalized(dir);
  const std::string prefix = fs::path(d).filename().string() + kPartialTag;
  const std::string host = this_host();
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent_of(d), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !entry.is_directory(ec)) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || !std::all_of(pid_text.begin(), pid_text.end(), ::isdigit)) continue;
    std::string owner_host;
    std::ifstream(entry.path() / kOwnerFile) >> owner_host;  // empty when OWNER is missing
    if (!owner_host.empty() && owner_host != host) continue;  // another machine's run: not ours to judge
    if (process_alive(std::stol(pid_text))) continue;
    stale.push_back(entry.path());
  }
  for (const auto& p : stale) fs::remove_all(p);
  return static_cast<int>(stale.size());
}

// ---- TokenStoreWriter ----

TokenStoreWriter::TokenStoreWriter(std::string dir, int64_t vocab_size, json meta_extra, bool overwrite)
    : dir_(normalized(dir)), vocab_size_(vocab_size), token_bytes_(token_bytes_for_vocab(vocab_size)),
      meta_(json::object()), overwrite_(overwrite) {
  if (!meta_extra.is_object()) throw std::runtime_error("token store " + in_quotes(dir_) + ": meta_extra must be a JSON object");
  for (const auto& [key, value] : meta_extra.items()) set_meta(key, value);
  check_destination(dir_, overwrite_);
  partial_ = partial_dir_for(dir_, getpid());
  fs::remove_all(partial_);  // a dead run's folder whose pid we now reuse
  fs::create_directories(partial_);
  try {
    write_small_file(path_in(partial_, kOwnerFile), this_host() + " " + std::to_string(getpid()) + "\n");
    tokens_ = open_for_write(path_in(partial_, kTokensFile));
    index_ = open_for_write(path_in(partial_, kIndexFile));
    const uint64_t zero = 0;
    write_all(index_, &zero, sizeof(zero), path_in(partial_, kIndexFile));
  } catch (...) {
    abandon();
    throw;
  }
}

TokenStoreWriter::~TokenStoreWriter() {
  if (!finished_) abandon();
}

void TokenStoreWriter::abandon() noexcept {
  if (tokens_ != nullptr) std::fclose(std::exchange(tokens_, nullptr));
  if (index_ != nullptr) std::fclose(std::exchange(index_, nullptr));
  std::error_code ec;
  if (!partial_.empty()) fs::remove_all(partial_, ec);
}

void TokenStoreWriter::check_open(const char* what) const {
  if (finished_) throw std::logic_error(std::string("TokenStoreWriter::") + what + " after finish() for " + in_quotes(dir_));
}

void TokenStoreWriter::add_document(std::span<const int32_t> ids) {
  check_open("add_document");
  buffer_.resize(ids.size() * token_bytes_);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size_) {
      throw std::runtime_error("token store " + in_quotes(dir_) + ": document " + std::to_string(num_documents_) +
                               " has token id " + std::to_string(ids[i]) + " outside [0, " +
                               std::to_string(vocab_size_) + ")");
    }
    if (token_bytes_ == 2) {
      const auto v = static_cast<uint16_t>(ids[i]);
      std::memcpy(&buffer_[2 * i], &v, 2);
    } else {
      const auto v = static_cast<uint32_t>(ids[i]);
      std::memcpy(&buffer_[4 * i], &v, 4);
    }
  }
  write_all(tokens_, buffer_.data(), buffer_.size(), path_in(partial_, kTokensFile));
  num_tokens_ += static_cast<int64_t>(ids.size());
  ++num_documents_;
  const auto end = static_cast<uint64_t>(num_tokens_);
  write_all(index_, &end, sizeof(end), path_in(partial_, kIndexFile));
}

void TokenStoreWriter::set_meta(const std::string& key, json value) {
  check_open("set_meta");
  if (std::find(std::begin(kReservedKeys), std::end(kReservedKeys), key) != std::end(kReservedKeys)) {
    throw std::runtime_error("token store meta key '" + key + "' is reserved and set by the writer");
  }
  meta_[key] = std::move(value);
}

void TokenStoreWriter::add_file(const std::string& name, const std::string& contents) {
  check_open("add_file");
  const char* own[] = {kTokensFile, kIndexFile, kMetaFile, kCompleteFile, kOwnerFile};
  const bool plain = !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
  if (!plain || std::find(std::begin(own), std::end(own), name) != std::end(own)) {
    throw std::runtime_error("token store: cannot add file '" + name + "' (a plain name not used by the store)");
  }
  write_small_file((fs::path(partial_) / name).string(), contents);
}

void TokenStoreWriter::finish() {
  check_open("finish");
  sync_close(tokens_, path_in(partial_, kTokensFile));
  sync_close(index_, path_in(partial_, kIndexFile));
  json meta = {{"format", kTokenStoreFormat}, {"version", kTokenStoreVersion},     {"vocab_size", vocab_size_},
               {"token_bytes", token_bytes_},  {"num_documents", num_documents_}, {"num_tokens", num_tokens_}};
  meta.update(meta_);
  // replace: a caller's string with invalid UTF-8 (a path, a quoted bad record) must not abort the store
  write_small_file(path_in(partial_, kMetaFile), meta.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  fs::remove(path_in(partial_, kOwnerFile));
  write_small_file(path_in(partial_, kCompleteFile), std::string(kTokenStoreFormat) + " version " +
                                                         std::to_string(kTokenStoreVersion) + "\n");
  fsync_dir(partial_);
  check_destination(dir_, overwrite_);  // again: something may have appeared while we worked
  move_into_place(partial_, dir_);
  fsync_dir(parent_of(dir_));
  finished_ = true;
}

// ---- TokenStore ----

struct TokenStore::Impl {
  std::string dir;
  json meta;
  int64_t vocab_size = 0, num_tokens = 0;
  size_t num_documents = 0;
  int token_bytes = 0;
  MappedFile tokens, index;
  const uint64_t* offsets() const { return reinterpret_cast<const uint64_t*>(index.data()); }
};

TokenStore::TokenStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenStore::TokenStore(TokenStore&&) noexcept = default;
TokenStore& TokenStore::operator=(TokenStore&&) noexcept = default;
TokenStore::~TokenStore() = default;

const TokenStore::Impl& TokenStore::impl() const {
  if (!impl_) throw std::logic_error("ropex::TokenStore used after it was moved from");
  return *impl_;
}

TokenStore TokenStore::open(const std::string& dir) {
  auto s = std::make_unique<Impl>();
  s->dir = normalized(dir);
  check_is_finished_store_dir(s->dir);
  s->meta = read_meta(s->dir);
  const std::string meta_path = path_in(s->dir, kMetaFile);
  s->vocab_size = meta_int(s->meta, "vocab_size", 1, meta_path);
  s->token_bytes = static_cast<int>(meta_int(s->meta, "token_bytes", 1, meta_path));
  s->num_documents = static_cast<size_t>(meta_int(s->meta, "num_documents", 0, meta_path));
  s->num_tokens = meta_int(s->meta, "num_tokens", 0, meta_path);
  if (s->token_bytes != token_bytes_for_vocab(s->vocab_size)) {
    throw std::runtime_error(in_quotes(meta_path) + ": token_bytes " + std::to_string(s->token_bytes) + " does not match vocab_size " +
                             std::to_string(s->vocab_size) + " (expected " +
                             std::to_string(token_bytes_for_vocab(s->vocab_size)) + ")");
  }
  const std::string tokens_path = path_in(s->dir, kTokensFile), index_path = path_in(s->dir, kIndexFile);
  s->tokens = MappedFile(tokens_path);
  s->index = MappedFile(index_path);
  check_size(s->tokens, static_cast<uint64_t>(s->num_tokens) * s->token_bytes, tokens_path,
             "num_tokens " + std::to_string(s->num_tokens) + " x token_bytes " + std::to_string(s->token_bytes));
  check_size(s->index, (s->num_documents + 1) * sizeof(uint64_t), index_path,
             "(num_documents " + std::to_string(s->num_documents) + " + 1) x 8");
  check_offsets(s->offsets(), s->num_documents, s->num_tokens, index_path);
  return TokenStore(std::move(s));
}

size_t TokenStore::num_documents() const { return impl().num_documents; }
int64_t TokenStore::num_tokens() const { return impl().num_tokens; }
int64_t TokenStore::vocab_size() const { return impl().vocab_size; }
int TokenStore::token_bytes() const { return impl().token_bytes; }
const json& TokenStore::meta() const { return impl().meta; }
const std::string& TokenStore::dir() const { return impl().dir; }

int64_t TokenStore::doc_len(size_t doc) const {
  const Impl& s = impl();
  if (doc >= s.num_documents) {
    throw std::out_of_range("token store " + in_quotes(s.dir) + ": document " + std::to_string(doc) + " does not exist (" +
                            std::to_string(s.num_documents) + " documents)");
  }
  return static_cast<int64_t>(s.offsets()[doc + 1] - s.offsets()[doc]);
}

void TokenStore::read(size_t doc, int64_t start, int64_t count, int32_t* out) const {
  const Impl& s = impl();
  const int64_t len = doc_len(doc);
  if (start < 0 || count < 0 || start > len - count) {
    throw std::out_of_range("token store " + in_quotes(s.dir) + ": read(doc " + std::to_string(doc) + ", start " +
                            std::to_string(start) + ", count " + std::to_string(count) + ") is outside the document (" +
                            std::to_string(len) + " tokens)");
  }
  const uint64_t first = s.offsets()[doc] + static_cast<uint64_t>(start);
  if (s.token_bytes == 2) {
    const auto* p = reinterpret_cast<const uint16_t*>(s.tokens.data()) + first;
    std::copy(p, p + count, out);
  } else {
    const auto* p = reinterpret_cast<const uint32_t*>(s.tokens.data()) + first;
    std::transform(p, p + count, out, [](uint32_t v) { return static_cast<int32_t>(v); });
  }
}

std::vector<int32_t> TokenStore::document(size_t doc) const {
  std::vector<int32_t> ids(static_cast<size_t>(doc_len(doc)));
  read(doc, 0, static_cast<int64_t>(ids.size()), ids.data());
  return ids;
}

size_t TokenStore::docs_at_least(int64_t len) const {
  const Impl& s = impl();
  size_t n = 0;
  for (size_t i = 0; i < s.num_documents; ++i) n += static_cast<int64_t>(s.offsets()[i + 1] - s.offsets()[i]) >= len;
  return n;
}

void TokenStore::verify_tokens() const {
  const Impl& s = impl();
  // A branch-free maximum over each block of ids, then the slow search only when a block holds a
  // bad one: the scan runs at memory speed (about a second for a billion uint16 ids).
  constexpr int64_t kBlock = 1 << 16;
  const auto id_at = [&](int64_t t) {
    uint32_t id = 0;
    std::memcpy(&id, s.tokens.data() + t * s.token_bytes, static_cast<size_t>(s.token_bytes));  // little-endian
    return id;
  };
  for (int64_t begin = 0; begin < s.num_tokens; begin += kBlock) {
    const int64_t end = std::min(s.num_tokens, begin + kBlock);
    uint32_t max_id = 0;
    if (s.token_bytes == 2) {
      const uint8_t* p = s.tokens.data() + begin * 2;
      for (int64_t t = 0; t < end - begin; ++t) max_id = std::max<uint32_t>(max_id, uint32_t(p[2 * t]) | uint32_t(p[2 * t + 1]) << 8);
    } else {
      for (int64_t t = begin; t < end; ++t) max_id = std::max(max_id, id_at(t));
    }
    if (max_id < static_cast<uint64_t>(s.vocab_size)) continue;
    for (int64_t t = begin; t < end; ++t) {
      const uint32_t id = id_at(t);
      if (id < static_cast<uint64_t>(s.vocab_size)) continue;
      const uint64_t* o = s.offsets();
      const size_t doc = static_cast<size_t>(std::upper_bound(o, o + s.num_documents + 1, static_cast<uint64_t>(t)) - o - 1);
      throw std::runtime_error(in_quotes(path_in(s.dir, kTokensFile)) + ": token " + std::to_string(t) + " (document " +
                               std::to_string(doc) + ") has id " + std::to_string(id) + " outside [0, " +
                               std::to_string(s.vocab_size) + "); the store is damaged or was not made by ropex prepare");
    }
  }
}

}  // namespace ropex
