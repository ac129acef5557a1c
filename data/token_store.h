// Token store: a directory holding a tokenized corpus, written once (TokenStoreWriter, used by
// `ropex prepare`) and read memory-mapped (TokenStore, used by the trainer's loader).
//
// Layout of DIR:
//   tokens.bin  every document's ids concatenated, little-endian; uint16 when vocab_size <= 65536,
//               else uint32 (the "token width", meta "token_bytes")
//   index.bin   uint64 little-endian offsets in tokens, num_documents + 1 entries: document i is
//               tokens [index[i], index[i+1]); index[0] == 0, index[num_documents] == num_tokens
//   meta.json   {"format": "ropex-token-store", "version": 1, "vocab_size", "token_bytes",
//               "num_documents", "num_tokens", ...extra keys given by the writer's caller:
//               `ropex prepare` adds "tokenizer" (see data/prepare.h), "prepare" and "stats"}
//   COMPLETE    written last; a directory without it is never opened
//   (plus any extra files the caller adds, e.g. stats.json)
//
// Crash safety: the writer fills DIR.partial-<pid>/ (with an OWNER file naming host and pid),
// fsyncs every file, writes COMPLETE, then renames the folder to DIR. A run that dies (crash,
// kill, Ctrl-C) leaves only DIR.partial-<pid>/, which TokenStore refuses to open;
// remove_stale_partials() (called by the next prepare) deletes such folders whose process is
// gone. A writer destroyed without finish() (an exception) removes its partial folder itself.
//
// It does NOT tokenize, read text, shuffle, sample or batch: see data/prepare.h and data/loader.h.
// Requires a little-endian host (checked at compile time).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace ropex {

inline constexpr const char* kTokenStoreFormat = "ropex-token-store";
inline constexpr int kTokenStoreVersion = 1;

// 2 when every id fits in uint16 (vocab_size <= 65536), else 4. Throws for vocab_size < 1.
int token_bytes_for_vocab(int64_t vocab_size);

// The folder a writer for `dir` fills while running: "<dir>.partial-<pid>".
std::string partial_dir_for(const std::string& dir, long pid);

// Deletes "<dir>.partial-<pid>" folders left by dead processes on this host (live pids and
// folders written on another host are kept). Returns how many were removed.
int remove_stale_partials(const std::string& dir);

class TokenStoreWriter {
 public:
  // Checks up front that `dir` can be written (absent, an empty folder, or a complete store with
  // `overwrite`; anything else is an error naming it), then creates the partial folder.
  // `meta_extra` (a JSON object) is merged into meta.json; the store's own keys are reserved.
  TokenStoreWriter(std::string dir, int64_t vocab_size, nlohmann::json meta_extra = nlohmann::json::object(),
                   bool overwrite = false);
  ~TokenStoreWriter();  // without finish(): closes and removes the partial folder
  TokenStoreWriter(const TokenStoreWriter&) = delete;
  TokenStoreWriter& operator=(const TokenStoreWriter&) = delete;

  // Appends one document; every id must lie in [0, vocab_size).
  void add_document(std::span<const int32_t> ids);
  // Adds a key to meta.json (reserved keys are errors).
  void set_meta(const std::string& key, nlohmann::json value);
  // Adds a small file (plain name, not one of the store's own) to the store.
  void add_file(const std::string& name, const std::string& contents);
  // Syncs everything, writes meta.json and COMPLETE, renames the partial folder to dir.
  void finish();

  size_t num_documents() const { return num_documents_; }
  int64_t num_tokens() const { return num_tokens_; }
  int token_bytes() const { return token_bytes_; }
  const std::string& partial_dir() const { return partial_; }

 private:
  void check_open(const char* what) const;
  void abandon() noexcept;  // closes files, removes the partial folder
  std::string dir_, partial_;
  int64_t vocab_size_;
  int token_bytes_;
  nlohmann::json meta_;
  bool overwrite_;
  std::FILE* tokens_ = nullptr;
  std::FILE* index_ = nullptr;
  size_t num_documents_ = 0;
  int64_t num_tokens_ = 0;
  std::vector<uint8_t> buffer_;
  bool finished_ = false;
};

class TokenStore {
 public:
  // Validates DIR (COMPLETE, meta.json format/version/keys, file sizes, offsets) and maps it.
  // Errors are std::runtime_error naming the file and what was expected.
  static TokenStore open(const std::string& dir);

  size_t num_documents() const;
  int64_t num_tokens() const;
  int64_t vocab_size() const;
  int token_bytes() const;
  int64_t doc_len(size_t doc) const;
  // Copies tokens [start, start + count) of document `doc` into out (std::out_of_range, with
  // the store and the document's length, when outside it).
  void read(size_t doc, int64_t start, int64_t count, int32_t* out) const;
  std::vector<int32_t> document(size_t doc) const;
  // Number of documents with length >= len (one pass over the index).
  size_t docs_at_least(int64_t len) const;
  // Scans every token and throws naming the first id outside [0, vocab_size) (O(num_tokens)).
  void verify_tokens() const;
  const nlohmann::json& meta() const;
  const std::string& dir() const;

  TokenStore(TokenStore&&) noexcept;
  TokenStore& operator=(TokenStore&&) noexcept;
  ~TokenStore();

 private:
  struct Impl;
  explicit TokenStore(std::unique_ptr<Impl> impl);
  const Impl& impl() const;  // throws std::logic_error on a moved-from store
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropex
