// Prepare: turns corpus files into a token store (data/token_store.h) for training, the work
// behind `ropex prepare`.
//
// Inputs (data/readers/): .jsonl and .txt, plain or compressed (.gz, .zst; compression is also
// recognised by a file's first bytes), and .parquet. Text comes from a configurable field or column
// (text_field); with ids_field set the inputs are pre-tokenized (.jsonl or .parquet holding arrays
// of token ids), stored as given after a check that every id is in the tokenizer's vocabulary, with
// BOS/EOS only when asked. The same documents give byte-identical tokens.bin and index.bin whichever
// format they come in. A file ropex does not read is an error naming it, found before any work
// starts. Malformed records (bad JSON, not an object, missing or wrong-typed field, invalid UTF-8, an
// id outside the vocabulary, a null Parquet value) are reported as FILE:LINE or FILE: row N and
// either skipped (counted, the first 10 logged) or fatal; input that cannot be read further (a
// truncated or corrupt compressed stream) is always fatal. Documents whose text or ids are empty are
// dropped and counted. Documents keep input order, whatever the thread count: the store is
// byte-identical for 1 and N threads.
//
// Threads share one Tokenizer: SentencePiece's Encode is const and documented thread-safe by its
// maintainers (google/sentencepiece#207, #657), and ropex::Tokenizer::encode adds no state.
//
// meta.json gets "tokenizer": {"path" (absolute), "size" (bytes), "fnv1a64" (hex FNV-1a-64 of the
// file's bytes: identifies the file, not a cryptographic hash), "vocab_size", "bos_id",
// "eos_id"}, "prepare": the options that shape the output (inputs, text_field, ids_field,
// txt_split, add_bos, add_eos, on_error, chunk_tokens; never thread count or time, so reruns are
// byte-identical), and "stats" (also written as stats.json).
//
// It does NOT train tokenizers, deduplicate, filter by quality, shuffle or pack documents (long ones
// can be cut into fixed-size pieces: chunk_tokens).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/readers/reader.h"

namespace ropex {

enum class OnError { skip, fail };
using TxtSplit = readers::TxtSplit;
OnError parse_on_error(const std::string& name);     // "skip" | "fail"; throws naming the value
TxtSplit parse_txt_split(const std::string& name);   // "file" | "blank_line"; throws naming the value

struct PrepareOptions {
  std::string tokenizer_path;        // tokenizer.json, SentencePiece .model, or a model directory
  std::vector<std::string> inputs;   // corpus files (data/readers/format.h), read in this order
  std::string output_dir;            // the store directory to create
  std::string text_field = "text";   // .jsonl / .parquet: the field or column holding the text
  std::string ids_field;             // non-empty: pre-tokenized inputs, the token ids in this field or column
  OnError on_error = OnError::skip;
  TxtSplit txt_split = TxtSplit::file;
  int threads = 0;                   // tokenizer threads; 0 = all hardware threads
  // Unset: yes for text, no for pre-tokenized ids (stored as given unless asked).
  std::optional<bool> add_bos, add_eos;
  bool overwrite = false;            // replace an existing complete store at output_dir
  std::vector<int64_t> windows;      // extra window lengths to report (besides 512 ... 65536)
  // > 0: cut every tokenized document (BOS/EOS included) into consecutive pieces of this many
  // tokens, each stored as its own document; a final piece shorter than that is dropped (counted in
  // the stats). Turns a few long texts
  // into many training windows for the loader, which takes each document's first N tokens.
  int64_t chunk_tokens = 0;
};

// The default windows reported: 512, 1024, ..., 65536.
const std::vector<int64_t>& default_windows();

struct PrepareStats {
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t skipped = 0;  // malformed records skipped (on_error = skip)
  int64_t empty = 0;    // documents with empty text, dropped
  int64_t chunk_dropped_tokens = 0;  // chunking: tokens of final pieces shorter than a chunk
  std::vector<std::string> skipped_examples;  // the first 10 messages, "FILE:LINE: what"
  int64_t min_len = 0, max_len = 0;
  double mean_len = 0, median_len = 0;  // median of an even count: mean of the two middle values
  // Power-of-two buckets: {lo, count} counts lengths in [lo, 2 lo) (lo = 0 holds length 0);
  // every bucket from the shortest to the longest document is listed, empty ones included.
  std::vector<std::pair<int64_t, int64_t>> histogram;
  std::map<int64_t, int64_t> docs_at_least;  // window -> documents with length >= window

  nlohmann::json to_json() const;
  std::string table() const;  // human-readable, several lines, ends with '\n'
};

// Length statistics of `lengths` (document lengths in tokens) for default_windows() plus
// `extra_windows`; documents/tokens are filled in, skipped/empty left at 0.
PrepareStats summarize_lengths(std::vector<int64_t> lengths, const std::vector<int64_t>& extra_windows);

// Reads, tokenizes and writes the store; returns its statistics. Logs progress (a bar when stderr
// is a terminal, else a line every 30 s). Throws std::runtime_error with the file (and line)
// on bad input; on any error the output directory is left untouched.
PrepareStats prepare_corpus(const PrepareOptions& options);

// Hex FNV-1a-64 of a file's bytes (what meta.json's "tokenizer.fnv1a64" records).
std::string file_fnv1a64(const std::string& path);

// Throws (naming both files) when the store at `store_dir`, whose meta.json is `meta`, was made with
// a tokenizer other than `tokenizer_path` (compared by fnv1a64): the same ids would mean other
// pieces. A store without the record (written by other tools) is not checked.
void check_store_tokenizer(const nlohmann::json& meta, const std::string& store_dir, const std::string& tokenizer_path);

// The documents of text inputs read as `prepare` reads them (text_field, txt_split, on_error),
// written to `out_path` as plain text, documents separated by a blank line: what a
// SentencePiece trainer takes (it reads lines). Returns the number of documents.
int64_t write_documents_as_text(const PrepareOptions& options, const std::string& out_path);

}  // namespace ropex
