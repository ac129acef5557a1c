// Tokenizer: a thin wrapper over SentencePiece (Debian's libsentencepiece) that
// loads a .model file, encodes text to ids (optionally with BOS/EOS), decodes ids
// to text, and trains new models with Llama's conventions (unk 0, bos 1, eos 2,
// no pad, identity normalisation, dummy prefix, whitespace kept, digits split,
// byte fallback).
//
// It does NOT know about HF tokenizer.json files, chat templates, batching or
// tensors; callers hold plain std::vector<int32_t>. Every failure is a
// std::runtime_error that names the file or id involved.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ropex {

struct TokenizerTrainOptions {
  int vocab_size = 2000;
  std::string model_type = "bpe";  // "bpe" | "unigram" | "char" | "word"
  double character_coverage = 1.0;
  bool byte_fallback = true;
  bool split_digits = true;
  int num_threads = 2;
  int64_t input_sentence_size = 0;  // sentences sampled for training; 0 = all
  bool verbose = false;             // false: SentencePiece's INFO logs are silenced
  // Fixed, Llama conventions: unk 0, bos 1, eos 2, no pad, identity
  // normalisation, add_dummy_prefix, whitespace kept as is.
};

// A text encode() refuses to take in one piece (see kMaxUncut); what() says where and why.
class TextTooLong : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  // Throws std::runtime_error naming the path (missing, unreadable, not a model).
  static Tokenizer load(const std::string& model_path);

  // Trains a model from text files (one sentence per line), writes
  // <output_prefix>.model and <output_prefix>.vocab, returns the .model path.
  // Errors name the files.
  static std::string train(const std::vector<std::string>& input_files, const std::string& output_prefix,
                           const TokenizerTrainOptions& options);

  //
  // A long text (over kPieceBytes) is encoded a piece at a time, cut at single spaces between ASCII
  // characters, when this tokenizer is one where that gives exactly the ids of encoding it whole
  // (checked at load: pieces hold U+2581 only first, a dummy prefix, "x y" = "x" + "y"); memory then
  // stays proportional to a piece, not to the text (SentencePiece holds ~250 bytes per byte of
  // input while encoding). A text that cannot be cut within kMaxUncut bytes (a run without spaces,
  // or any text over kMaxUncut for a tokenizer that cannot be cut) throws TextTooLong.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos) const;
  static constexpr size_t kPieceBytes = size_t{64} << 10;
  static constexpr size_t kMaxUncut = size_t{4} << 20;
  bool cuts_long_texts() const;
  // The byte positions where encode() cuts `text` (spaces, dropped); throws TextTooLong where
  // encode() would. O(text), no encoding: callers check a document before queueing it.
  std::vector<size_t> cuts(std::string_view text) const;
  // Control ids (bos/eos) decode to nothing; ids outside [0, vocab_size) throw.
  std::string decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  int unk_id() const;
  int pad_id() const;  // -1 when the model has no pad piece (Llama)
  const std::string& path() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  const Impl& impl() const;  // throws std::logic_error on a moved-from tokenizer
  std::unique_ptr<Impl> impl_;
};

// The tokenizer of a Hugging Face model directory: `override_path` when non-empty, else
// MODEL_DIR/tokenizer.model. Throws naming the path when it is missing, and when the tokenizer has
// more pieces than the model's vocab_size (ids the embedding cannot hold).
Tokenizer load_model_tokenizer(const std::string& model_dir, const std::string& override_path, int64_t model_vocab_size);

}  // namespace ropex
