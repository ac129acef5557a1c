// Tokenizer implementation over SentencePiece's processor and trainer.
// Does: file checks with helpful errors, Llama training conventions, BOS/EOS
// framing, id range checks before decoding. Does not: cache, batch, or touch
// LibTorch.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace ropex {

static_assert(sizeof(int) == sizeof(int32_t), "SentencePiece ids are int");

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string path;
};

namespace {

namespace fs = std::filesystem;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Throws unless `path` names a readable regular file; `what` says what it should be.
void require_readable_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw std::runtime_error(what + " " + quoted(path) + " does not exist");
  }
  if (!fs::is_regular_file(path, ec)) {
    throw std::runtime_error(what + " " + quoted(path) + " is not a regular file");
  }
  if (!std::ifstream(path, std::ios::binary).good()) {
    throw std::runtime_error(what + " " + quoted(path) + " cannot be opened for reading");
  }
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::vector<std::string> q;
  for (const auto& item : items) q.push_back(quoted(item));
  return join(q, ", ");
}

std::string number_text(double x) {
  std::ostringstream s;
  s.precision(17);
  s << x;
  return s.str();
}

std::string bool_text(bool b) { return b ? "true" : "false"; }

// SentencePiece takes its inputs as one comma-separated flag, so a comma
// inside a path cannot be passed through.
void check_training_inputs(const std::vector<std::string>& input_files, const std::string& output_prefix) {
  if (input_files.empty()) throw std::runtime_error("tokenizer training: no input files given");
  for (const auto& file : input_files) {
    require_readable_file(file, "tokenizer training input");
    if (file.find(',') != std::string::npos) {
      throw std::runtime_error("tokenizer training input " + quoted(file) +
                               " contains a comma, which SentencePiece cannot accept; rename it");
    }
  }
  std::error_code ec;
  const bool all_empty = std::all_of(input_files.begin(), input_files.end(),
                                     [&](const std::string& f) { return fs::file_size(f, ec) == 0; });
  if (all_empty)
    throw std::runtime_error("tokenizer training inputs are all empty: " + quoted_list(input_files));
  if (output_prefix.empty()) throw std::runtime_error("tokenizer training: empty output prefix");
  const fs::path dir = fs::path(output_prefix).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    throw std::runtime_error("tokenizer training output directory " + quoted(dir.string()) +
                             " does not exist (output prefix " + quoted(output_prefix) + ")");
  }
}

std::unordered_map<std::string, std::string> trainer_flags(const std::vector<std::string>& input_files,
                                                           const std::string& output_prefix,
                                                           const TokenizerTrainOptions& o) {
  return {
      {"input", join(input_files, ",")},
      {"model_prefix", output_prefix},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", number_text(o.character_coverage)},
      {"byte_fallback", bool_text(o.byte_fallback)},
      {"split_digits", bool_text(o.split_digits)},
      {"num_threads", std::to_string(o.num_threads)},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      // Llama conventions.
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      // 0 = INFO and up; 1 = warnings and errors only.
      {"minloglevel", o.verbose ? "0" : "1"},
  };
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

const Tokenizer::Impl& Tokenizer::impl() const {
  if (!impl_) throw std::logic_error("ropex::Tokenizer used after it was moved from");
  return *impl_;
}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& model_path) {
  require_readable_file(model_path, "tokenizer model");
  auto impl = std::make_unique<Impl>();
  impl->path = model_path;
  const auto status = impl->sp.Load(model_path);
  if (!status.ok()) {
    throw std::runtime_error("cannot load tokenizer model " + quoted(model_path) + ": " + status.ToString() +
                             " (is it a SentencePiece .model file?)");
  }
  if (impl->sp.GetPieceSize() <= 0) {
    throw std::runtime_error("tokenizer model " + quoted(model_path) + " has an empty vocabulary");
  }
  return Tokenizer(std::move(impl));
}

std::string Tokenizer::train(const std::vector<std::string>& input_files, const std::string& output_prefix,
                             const TokenizerTrainOptions& options) {
  check_training_inputs(input_files, output_prefix);
  const std::string model_path = output_prefix + ".model";
  const auto status =
      sentencepiece::SentencePieceTrainer::Train(trainer_flags(input_files, output_prefix, options));
  if (!status.ok()) {
    throw std::runtime_error("tokenizer training from " + quoted_list(input_files) + " to " +
                             quoted(model_path) + " failed: " + status.ToString());
  }
  if (!fs::is_regular_file(model_path)) {
    throw std::runtime_error("tokenizer training reported success but " + quoted(model_path) +
                             " was not written");
  }
  return model_path;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int> pieces;
  const auto status = impl().sp.Encode(text, &pieces);
  if (!status.ok()) {
    throw std::runtime_error("encoding with tokenizer " + quoted(impl().path) +
                             " failed: " + status.ToString());
  }
  if ((add_bos && bos_id() < 0) || (add_eos && eos_id() < 0)) {
    throw std::runtime_error("tokenizer " + quoted(impl().path) + " has no " +
                             (add_bos && bos_id() < 0 ? "BOS" : "EOS") + " piece");
  }
  std::vector<int32_t> ids;
  ids.reserve(pieces.size() + 2);
  if (add_bos) ids.push_back(bos_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (add_eos) ids.push_back(eos_id());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw std::runtime_error("cannot decode id " + std::to_string(id) + ": outside the vocabulary of " +
                               "tokenizer " + quoted(impl().path) + " (size " + std::to_string(vocab_size()) +
                               ")");
    }
  }
  std::string text;
  const auto status = impl().sp.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) {
    throw std::runtime_error("decoding with tokenizer " + quoted(impl().path) +
                             " failed: " + status.ToString());
  }
  return text;
}

int Tokenizer::vocab_size() const { return impl().sp.GetPieceSize(); }
int Tokenizer::bos_id() const { return impl().sp.bos_id(); }
int Tokenizer::eos_id() const { return impl().sp.eos_id(); }
int Tokenizer::unk_id() const { return impl().sp.unk_id(); }
int Tokenizer::pad_id() const { return impl().sp.pad_id(); }
const std::string& Tokenizer::path() const { return impl().path; }

Tokenizer load_model_tokenizer(const std::string& model_dir, const std::string& override_path, int64_t model_vocab_size) {
  const std::string path = override_path.empty() ? (fs::path(model_dir) / "tokenizer.model").string() : override_path;
  if (!fs::is_regular_file(path)) throw std::runtime_error(path + ": tokenizer model not found (pass --tokenizer FILE)");
  Tokenizer tok = Tokenizer::load(path);
  if (tok.vocab_size() > model_vocab_size)
    throw std::runtime_error(path + ": tokenizer has " + std::to_string(tok.vocab_size()) + " pieces but the model's vocab_size is " +
                             std::to_string(model_vocab_size));
  return tok;
}

}  // namespace ropex
