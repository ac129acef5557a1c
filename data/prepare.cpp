// Prepare implementation: input checks, the record stream of data/readers/ with FILE:LINE (or
// FILE: row N) error reports, order-preserving multi-threaded tokenization in batches, the
// vocabulary check of pre-tokenized ids, progress, statistics, and the TokenStoreWriter calls. See
// prepare.h for what it does and does not do.
//
// Flow: the calling thread reads records into a batch (~1 MiB of text); the batch is tokenized
// by N threads that each take the next unclaimed document and write its ids into that document's
// own slot; the calling thread then appends the slots to the store in order. Reading and
// tokenizing do not overlap (tokenizing dominates). Pre-tokenized documents go straight to the
// store, in order.
#include "data/prepare.h"

#include "data/input/files.h"
#include "data/input/json.h"
#include "data/readers/format.h"
#include "data/readers/parquet_reader.h"
#include "data/readers/reader.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "data/token_store.h"
#include "data/tokenizer.h"
#include "trainer/log.h"

namespace ropex {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxReportedErrors = 10;
constexpr size_t kBatchBytes = size_t{1} << 20;
constexpr size_t kBatchDocs = 1024;

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// ---- inputs ----

readers::ReaderOptions reader_options(const PrepareOptions& o) {
  return {.text_field = o.text_field, .ids_field = o.ids_field, .txt_split = o.txt_split};
}

// All inputs are checked (name and first bytes, data/readers/format.h) before any work, so a typo
// in the 10th file fails in a second.
uint64_t check_inputs(const PrepareOptions& o) {
  if (o.inputs.empty()) throw std::runtime_error("prepare: no input files given");
  uint64_t total = 0;
  for (const auto& path : o.inputs) {
    readers::format_from_name(path);
    std::error_code ec;
    if (!fs::exists(path, ec)) throw std::runtime_error("input " + in_quotes(path) + " does not exist");
    const readers::InputFormat format = readers::detect_format(path);  // a FIFO or device is refused
    if (format.records == readers::RecordFormat::txt && !o.ids_field.empty()) {
      throw std::runtime_error("input " + in_quotes(path) + " is a text file, which holds no token ids; with --ids-field " +
                               "every input must be .jsonl (plain, .gz or .zst) or .parquet");
    }
    // A Parquet file's footer and schema: the column and its type are checked now (the stub of a
    // build without Arrow throws here, saying how to get it).
    if (format.records == readers::RecordFormat::parquet) readers::open_parquet_reader(path, reader_options(o));
    total += fs::file_size(path, ec);
  }
  return total;
}

// ---- malformed records ----

class ErrorSink {
 public:
  explicit ErrorSink(OnError mode) : mode_(mode) {}
  // `place` is "FILE:LINE" or "FILE: row N".
  void report(const std::string& place, const std::string& what) {
    const std::string msg = place + ": " + what;
    if (mode_ == OnError::fail) throw std::runtime_error(msg + " (pass --on-error skip to skip malformed records)");
    if (examples_.size() < kMaxReportedErrors) {
      log::warn("skipping " + msg + (examples_.size() + 1 == kMaxReportedErrors ? " (further ones not shown)" : ""));
      examples_.push_back(msg);
    }
    ++count_;
  }
  int64_t count() const { return count_; }
  const std::vector<std::string>& examples() const { return examples_; }

 private:
  OnError mode_;
  int64_t count_ = 0;
  std::vector<std::string> examples_;
};

// What is wrong with a record that read well (an id outside the vocabulary, a text too long to
// tokenize): reported at the record's place like a reader's malformed record.
struct Malformed {
  std::string what;
};

// Reads every input in order, reporting malformed records to `errors` and calling `on_record` with
// each text or ids record (it may throw Malformed) and `on_progress` with the bytes consumed of all
// inputs so far.

void read_inputs(const PrepareOptions& o, ErrorSink& errors, const std::function<void(readers::Record&)>& on_record,
                 const std::function<void(uint64_t)>& on_progress) {
  uint64_t done = 0;
  readers::Record rec;
  for (const auto& path : o.inputs) {
    const auto reader = readers::open_reader(path, reader_options(o));
    while (reader->next(rec)) {
      if (rec.kind == readers::Record::Kind::malformed) {
        errors.report(reader->place(rec.number), rec.text);
        continue;
      }
      try {
        on_record(rec);
      } catch (const Malformed& m) {
        errors.report(reader->place(rec.number), m.what);
      }
      on_progress(done + reader->bytes_consumed());
    }
    done += reader->bytes_consumed();
  }
  on_progress(done);
}

// ---- tokenizing ----

// ids[i] = encode(texts[i]); `threads` workers claim documents one at a time.
std::vector<std::vector<int32_t>> tokenize_batch(const Tokenizer& tok, const std::vector<std::string>& texts,
                                                 int threads, bool add_bos, bool add_eos) {
  std::vector<std::vector<int32_t>> ids(texts.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < texts.size(); i = next++) ids[i] = tok.encode(texts[i], add_bos, add_eos);
  };
  const size_t n = std::min(static_cast<size_t>(threads), texts.size());
  if (n <= 1) {
    work();
    return ids;
  }
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n; ++t) {
    pool.emplace_back([&, t] {
      try {
        work();
      } catch (...) {
        errors[t] = std::current_exception();
        next = texts.size();  // the others stop early
      }
    });
  }
  for (auto& th : pool) th.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return ids;
}

// Collects documents into batches, tokenizes each batch and appends it to the store in order.
// Pre-tokenized documents (add_ids) are stored at once, framed by `prefix` and `suffix` (the BOS /
// EOS ids the tokenizer would add to a text, when asked).
class Batcher {
 public:
  Batcher(const Tokenizer& tok, TokenStoreWriter& writer, const PrepareOptions& o, int threads, bool add_bos, bool add_eos)
      : tok_(tok), writer_(writer), opt_(o), threads_(threads), add_bos_(add_bos), add_eos_(add_eos) {
    if (!o.ids_field.empty()) {
      prefix_ = tok.encode("", add_bos, false);
      suffix_ = tok.encode("", false, add_eos);
    }
  }

  void add(std::string&& text) {
    if (text.empty()) {
      ++empty_;
      return;
    }
    batch_bytes_ += text.size();
    texts_.push_back(std::move(text));
    if (batch_bytes_ >= kBatchBytes || texts_.size() >= kBatchDocs) flush();
  }

  void add_ids(const std::vector<int32_t>& ids) {
    if (ids.empty()) {
      ++empty_;
      return;
    }
    flush();
    if (prefix_.empty() && suffix_.empty()) return store(ids);
    framed_.clear();
    framed_.insert(framed_.end(), prefix_.begin(), prefix_.end());
    framed_.insert(framed_.end(), ids.begin(), ids.end());
    framed_.insert(framed_.end(), suffix_.begin(), suffix_.end());
    store(framed_);
  }

  void flush() {
    if (texts_.empty()) return;
    for (const auto& ids : tokenize_batch(tok_, texts_, threads_, add_bos_, add_eos_)) store(ids);
    texts_.clear();
    batch_bytes_ = 0;
  }

  const std::vector<int64_t>& lengths() const { return lengths_; }
  int64_t tokens() const { return tokens_; }
  int64_t empty() const { return empty_; }
  int64_t chunk_dropped() const { return chunk_dropped_; }
  int64_t chunk_dropped_docs() const { return chunk_dropped_docs_; }

 private:
  // Appends one document, cut into chunk_tokens pieces when chunking.
  void store(const std::vector<int32_t>& ids) {
    const size_t piece = opt_.chunk_tokens > 0 ? static_cast<size_t>(opt_.chunk_tokens) : ids.size();
    size_t begin = 0;
    for (; begin + piece <= ids.size() && piece > 0; begin += piece) {
      const size_t end = begin + piece;
      writer_.add_document(std::span<const int32_t>(ids).subspan(begin, end - begin));
      lengths_.push_back(static_cast<int64_t>(end - begin));
      tokens_ += static_cast<int64_t>(end - begin);
    }
    if (begin < ids.size()) {  // chunking: the piece shorter than chunk_tokens is dropped
      chunk_dropped_ += static_cast<int64_t>(ids.size() - begin);
      ++chunk_dropped_docs_;
    }
  }

  const Tokenizer& tok_;
  TokenStoreWriter& writer_;
  const PrepareOptions& opt_;
  int threads_;
  bool add_bos_, add_eos_;
  std::vector<int32_t> prefix_, suffix_, framed_;
  std::vector<std::string> texts_;
  size_t batch_bytes_ = 0;
  std::vector<int64_t> lengths_;
  int64_t tokens_ = 0, empty_ = 0, chunk_dropped_ = 0, chunk_dropped_docs_ = 0;
};

// ---- progress ----

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string fixed(double x, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

std::string mib(double bytes) { return fixed(bytes / (1024.0 * 1024.0), 1) + " MiB"; }

// A bar redrawn at most 5 times a second when stderr is a terminal, else a log line every 30 s.
class Progress {
 public:
  explicit Progress(uint64_t total_bytes)
      : total_(std::max<uint64_t>(total_bytes, 1)), tty_(isatty(STDERR_FILENO) == 1), start_(Clock::now()), last_(start_) {}

  void update(uint64_t bytes, int64_t docs, int64_t tokens, bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(30000))) return;
    last_ = now;
    const double frac = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_));
    const double secs = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
    const std::string line = fixed(100 * frac, 1) + "% of " + mib(static_cast<double>(total_)) + ", " + with_commas(docs) +
                             " documents, " + with_commas(tokens) + " tokens, " + mib(static_cast<double>(bytes) / secs) + "/s";
    if (!tty_) return log::info("prepare: " + line);
    const int filled = static_cast<int>(frac * 30);
    std::fprintf(stderr, "\r[%s%s] %s\033[K", std::string(filled, '#').c_str(), std::string(30 - filled, ' ').c_str(),
                 line.c_str());
    drawn_ = true;
  }

  // Draws the final state (a bar that was shown ends at 100%) and ends its line.
  void done(uint64_t bytes, int64_t docs, int64_t tokens) {
    if (!drawn_) return;
    update(bytes, docs, tokens, /*force=*/true);
    std::fputc('\n', stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  uint64_t total_;
  bool tty_;
  Clock::time_point start_, last_;
  bool drawn_ = false;
};

// ---- metadata ----

}  // namespace

std::string file_fnv1a64(const std::string& path) {
  input::require_regular_file(path, "a tokenizer file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + in_quotes(path));
  uint64_t h = 0xcbf29ce484222325ULL;
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 0x100000001b3ULL;
  }
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << h;
  return s.str();
}

void check_store_tokenizer(const json& meta, const std::string& store_dir, const std::string& tokenizer_path) {
  if (!meta.contains("tokenizer") || !meta["tokenizer"].is_object() || !meta["tokenizer"].contains("fnv1a64")) return;
  const json& made_with = meta["tokenizer"];
  const std::string ours = file_fnv1a64(tokenizer_path);
  if (made_with["fnv1a64"] == ours) return;
  throw std::runtime_error("token store " + in_quotes(store_dir) + " was made with tokenizer " +
                           (made_with.contains("path") && made_with["path"].is_string() ? made_with["path"].get<std::string>() : "?") +
                           " (fnv1a64 " + input::json_excerpt(made_with["fnv1a64"]) +
                           ", vocab_size " + input::json_excerpt(made_with.value("vocab_size", json(nullptr))) + ") but the model's is " +
                           tokenizer_path + " (fnv1a64 \"" + ours + "\"): the same ids would be other pieces. Prepare "
                           "the store again with --tokenizer " + tokenizer_path);
}

namespace {

json tokenizer_info(const Tokenizer& tok) {
  return {{"path", fs::absolute(tok.path()).lexically_normal().string()},
          {"size", fs::file_size(tok.path())},
          {"fnv1a64", file_fnv1a64(tok.path())},
          {"vocab_size", tok.vocab_size()},
          {"bos_id", tok.bos_id()},
          {"eos_id", tok.eos_id()}};
}

// Unset add_bos / add_eos: yes for text, no for pre-tokenized ids (prepare.h).
bool resolved_bos(const PrepareOptions& o) { return o.add_bos.value_or(o.ids_field.empty()); }
bool resolved_eos(const PrepareOptions& o) { return o.add_eos.value_or(o.ids_field.empty()); }

json prepare_info(const PrepareOptions& o) {
  return {{"inputs", o.inputs},
          {"text_field", o.text_field},
          {"ids_field", o.ids_field},
          {"txt_split", o.txt_split == TxtSplit::file ? "file" : "blank_line"},
          {"on_error", o.on_error == OnError::skip ? "skip" : "fail"},
          {"add_bos", resolved_bos(o)},
          {"add_eos", resolved_eos(o)},
          {"chunk_tokens", o.chunk_tokens}};
}

// The first id of `ids` outside [0, vocab_size), as a malformed-record message; "" when none.
std::string id_outside_vocabulary(const std::vector<int32_t>& ids, int vocab_size, const std::string& tokenizer) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size)
      return cat("token id ", ids[i], " at index ", i, " is outside the vocabulary of ", tokenizer, " (ids 0 to ",
                 vocab_size - 1, "): ids made with another tokenizer?");
  }
  return "";
}

int resolve_threads(int threads) {
  if (threads < 0) throw std::runtime_error("prepare: threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  if (threads > 0) return threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

void check_windows(const std::vector<int64_t>& windows) {
  for (const int64_t w : windows) {
    if (w <= 0) throw std::runtime_error("prepare: window lengths must be positive, got " + std::to_string(w));
  }
}

std::string percent(int64_t part, int64_t whole) {
  return whole == 0 ? "-" : fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) + "%";
}

}  // namespace

// ---- public ----

OnError parse_on_error(const std::string& name) {
  if (name == "skip") return OnError::skip;
  if (name == "fail") return OnError::fail;
  throw std::runtime_error("on_error must be \"skip\" or \"fail\", got " + in_quotes(name));
}

TxtSplit parse_txt_split(const std::string& name) {
  if (name == "file") return TxtSplit::file;
  if (name == "blank_line") return TxtSplit::blank_line;
  throw std::runtime_error("txt_split must be \"file\" or \"blank_line\", got " + in_quotes(name));
}

const std::vector<int64_t>& default_windows() {
  static const std::vector<int64_t> windows = {512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
  return windows;
}

PrepareStats summarize_lengths(std::vector<int64_t> lengths, const std::vector<int64_t>& extra_windows) {
  PrepareStats s;
  std::sort(lengths.begin(), lengths.end());
  s.documents = static_cast<int64_t>(lengths.size());
  for (const int64_t len : lengths) s.tokens += len;
  std::vector<int64_t> windows = default_windows();
  windows.insert(windows.end(), extra_windows.begin(), extra_windows.end());
  for (const int64_t w : windows) {
    s.docs_at_least[w] = static_cast<int64_t>(lengths.end() - std::lower_bound(lengths.begin(), lengths.end(), w));
  }
  if (lengths.empty()) return s;
  const size_t n = lengths.size();
  s.min_len = lengths.front();
  s.max_len = lengths.back();
  s.mean_len = static_cast<double>(s.tokens) / static_cast<double>(n);
  s.median_len = n % 2 == 1 ? static_cast<double>(lengths[n / 2]) : (lengths[n / 2 - 1] + lengths[n / 2]) / 2.0;
  auto bucket_lo = [](int64_t len) { return len == 0 ? int64_t{0} : static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(len))); };
  for (int64_t lo = bucket_lo(s.min_len);; lo = lo == 0 ? 1 : 2 * lo) {
    const int64_t hi = lo == 0 ? 1 : 2 * lo;
    const auto count = std::lower_bound(lengths.begin(), lengths.end(), hi) - std::lower_bound(lengths.begin(), lengths.end(), lo);
    s.histogram.emplace_back(lo, static_cast<int64_t>(count));
    if (hi > s.max_len) break;
  }
  return s;
}

json PrepareStats::to_json() const {
  json hist = json::array(), windows = json::object();
  for (const auto& [lo, count] : histogram) hist.push_back({{"lo", lo}, {"hi", lo == 0 ? 1 : 2 * lo}, {"count", count}});
  for (const auto& [w, count] : docs_at_least) windows[std::to_string(w)] = count;
  return {{"documents", documents},
          {"tokens", tokens},
          {"skipped", skipped},
          {"empty", empty},
          {"chunk_dropped_tokens", chunk_dropped_tokens},
          {"skipped_examples", skipped_examples},
          {"length", {{"min", min_len}, {"max", max_len}, {"mean", mean_len}, {"median", median_len}}},
          {"histogram", hist},
          {"docs_at_least", windows}};
}

std::string PrepareStats::table() const {
  std::ostringstream os;
  auto row = [&](const std::string& name, const std::string& value) { os << "  " << std::left << std::setw(18) << name << value << "\n"; };
  row("documents", with_commas(documents));
  row("tokens", with_commas(tokens));
  row("skipped records", with_commas(skipped));
  row("empty documents", with_commas(empty));
  row("length (tokens)", "min " + with_commas(min_len) + ", mean " + fixed(mean_len, 1) + ", median " +
                             fixed(median_len, 1) + ", max " + with_commas(max_len));
  os << "\n  document length histogram\n";
  for (const auto& [lo, count] : histogram) {
    const std::string range = "[" + with_commas(lo) + ", " + with_commas(lo == 0 ? 1 : 2 * lo) + ")";
    os << "  " << std::right << std::setw(22) << range << std::setw(14) << with_commas(count) << std::setw(8)
       << percent(count, documents) << "\n";
  }
  os << "\n  documents at least as long as a window\n";
  for (const auto& [w, count] : docs_at_least) {
    os << "  " << std::right << std::setw(22) << with_commas(w) << std::setw(14) << with_commas(count) << std::setw(8)
       << percent(count, documents) << "\n";
  }
  return os.str();
}

PrepareStats prepare_corpus(const PrepareOptions& o) {
  const uint64_t total_bytes = check_inputs(o);
  check_windows(o.windows);
  if (o.chunk_tokens < 0) throw std::runtime_error(cat("prepare: chunk_tokens must be >= 0, got ", o.chunk_tokens));
  const int threads = resolve_threads(o.threads);
  if (o.output_dir.empty()) throw std::runtime_error("prepare: no output directory given");
  if (const int removed = remove_stale_partials(o.output_dir); removed > 0) {
    log::info(cat("removed ", removed, " partial folder(s) of ", in_quotes(o.output_dir), " left by interrupted runs"));
  }
  const Tokenizer tok = Tokenizer::load(o.tokenizer_path);
  TokenStoreWriter writer(o.output_dir, tok.vocab_size(), {{"tokenizer", tokenizer_info(tok)}, {"prepare", prepare_info(o)}},
                          o.overwrite);
  log::info(cat("prepare: ", o.inputs.size(), " input(s), ", mib(static_cast<double>(total_bytes)), ", ", threads,
                " thread(s) -> ", in_quotes(o.output_dir)));

  ErrorSink errors(o.on_error);
  Progress progress(total_bytes);
  Batcher batcher(tok, writer, o, threads, resolved_bos(o), resolved_eos(o));
  uint64_t bytes_read = 0;
  auto on_record = [&](readers::Record& rec) {
    if (rec.kind == readers::Record::Kind::ids) {
      if (std::string bad = id_outside_vocabulary(rec.ids, tok.vocab_size(), tok.path()); !bad.empty()) throw Malformed{bad};
      return batcher.add_ids(rec.ids);
    }
    try {
      tok.cuts(rec.text);  // a document encode() would refuse is a malformed record, reported with its place
    } catch (const TextTooLong& e) {
      throw Malformed{e.what()};
    }
    batcher.add(std::move(rec.text));
  };
  read_inputs(o, errors, on_record, [&](uint64_t bytes) {
    bytes_read = bytes;
    progress.update(bytes, static_cast<int64_t>(batcher.lengths().size()), batcher.tokens());
  });
  batcher.flush();
  progress.done(bytes_read, static_cast<int64_t>(batcher.lengths().size()), batcher.tokens());

  PrepareStats stats = summarize_lengths(batcher.lengths(), o.windows);
  stats.skipped = errors.count();
  stats.skipped_examples = errors.examples();
  stats.empty = batcher.empty();
  stats.chunk_dropped_tokens = batcher.chunk_dropped();
  if (batcher.chunk_dropped() > 0)
    log::info(cat("chunk ", o.chunk_tokens, ": dropped the last ", with_commas(batcher.chunk_dropped()), " token(s) of ",
                  batcher.chunk_dropped_docs(), " document(s), pieces shorter than a chunk"));
  if (stats.documents == 0) {
    throw std::runtime_error(cat("prepare: no documents in the inputs (", stats.skipped, " malformed records skipped, ",
                                 stats.empty, " empty documents); nothing written to ", in_quotes(o.output_dir)));
  }
  if (stats.skipped > 0) log::warn(cat("skipped ", stats.skipped, " malformed record(s)"));
  writer.set_meta("stats", stats.to_json());
  writer.add_file("stats.json", stats.to_json().dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  writer.finish();
  log::info(cat("wrote ", in_quotes(o.output_dir), ": ", with_commas(stats.documents), " documents, ",
                with_commas(stats.tokens), " tokens"));
  return stats;
}

int64_t write_documents_as_text(const PrepareOptions& o, const std::string& out_path) {
  if (!o.ids_field.empty()) throw std::runtime_error("write_documents_as_text reads text, not token ids (ids_field is set)");
  check_inputs(o);
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + in_quotes(out_path));
  ErrorSink errors(o.on_error);
  int64_t documents = 0;
  read_inputs(
      o, errors,
      [&](readers::Record& rec) {
        if (rec.text.empty()) return;
        out << rec.text << (rec.text.back() == '\n' ? "\n" : "\n\n");
        ++documents;
      },
      [](uint64_t) {});
  out.flush();
  if (!out) throw std::runtime_error("writing " + in_quotes(out_path) + " failed");
  if (errors.count() > 0) log::warn(cat(errors.count(), " malformed record(s) skipped"));
  return documents;
}

}  // namespace ropex
