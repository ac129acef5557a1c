// Tokenizer: the one tokenizer type the rest of ropex uses, over either kind of file a Hugging Face
// model directory carries:
//  - a SentencePiece .model (Debian's libsentencepiece; Llama-2), which it can also train with
//    Llama's conventions (unk 0, bos 1, eos 2, no pad, identity normalisation, dummy prefix,
//    whitespace kept, digits split, byte fallback);
//  - a tokenizer.json (data/tokenizers/tokenizer_json.h; Llama-3.x, Qwen2, Mistral), whose
//    end-of-text token comes from tokenizer_config.json beside it (data/tokenizers/tokenizer_config.h).
// It encodes text to ids (optionally with BOS/EOS, or with the tokenizer's own special tokens as
// transformers adds them) and decodes ids to text.
//
// It does NOT know about chat templates, batching or tensors; callers hold plain
// std::vector<int32_t>. Every failure is a std::runtime_error that names the file or id involved.
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
  // A file ending in .json is read as tokenizer.json, any other as a SentencePiece model; a
  // directory means its tokenizer as model_tokenizer_path() finds it. Throws std::runtime_error
  // naming the path (missing, unreadable, not a tokenizer).
  static Tokenizer load(const std::string& path);

  // Trains a model from text files (one sentence per line), writes
  // <output_prefix>.model and <output_prefix>.vocab, returns the .model path.
  // Errors name the files.
  static std::string train(const std::vector<std::string>& input_files, const std::string& output_prefix,
                           const TokenizerTrainOptions& options);

  //
  // add_bos: the BOS id (SentencePiece), or the ids tokenizer.json's post-processor puts before a
  // text (Llama-3's <|begin_of_text|>; none for Qwen2). add_eos: the EOS id; a tokenizer.json's is
  // tokenizer_config.json's eos_token, and asking for it when there is none throws.
  //
  // A long text (over kPieceBytes) is encoded a piece at a time, cut at single spaces between ASCII
  // characters, when this tokenizer is one where that gives exactly the ids of encoding it whole
  // (checked at load: pieces hold U+2581 only first, a dummy prefix, "x y" = "x" + "y"); memory then
  // stays proportional to a piece, not to the text (SentencePiece holds ~250 bytes per byte of
  // input while encoding). A text that cannot be cut within kMaxUncut bytes (a run without spaces,
  // or any text over kMaxUncut for a tokenizer that cannot be cut) throws TextTooLong. A
  // tokenizer.json is encoded whole, at any length: its memory is a few bytes per byte of text.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos) const;
  static constexpr size_t kPieceBytes = size_t{64} << 10;
  static constexpr size_t kMaxUncut = size_t{4} << 20;
  bool cuts_long_texts() const;
  // The byte positions where encode() cuts `text` (spaces, dropped); throws TextTooLong where
  // encode() would. O(text), no encoding: callers check a document before queueing it.
  std::vector<size_t> cuts(std::string_view text) const;
  // The ids transformers' tokenizer gives with add_special_tokens=True: BOS first for a SentencePiece
  // model (Llama's add_bos_token), the post-processor's tokens for a tokenizer.json.
  std::vector<int32_t> encode_with_special_tokens(std::string_view text) const;
  // Control ids (bos/eos) and special tokens decode to nothing (skip_special_tokens), unless
  // keep_special; ids outside [0, vocab_size) throw.
  std::string decode(const std::vector<int32_t>& ids, bool keep_special = false) const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  int unk_id() const;
  int pad_id() const;  // -1 when the model has no pad piece (Llama)
  // bos/eos/unk/pad are -1 when the tokenizer has none (a tokenizer.json: when neither its
  // post-processor nor tokenizer_config.json names one).
  const std::string& path() const;
  bool is_tokenizer_json() const;

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

// The file transformers' AutoTokenizer would use in a model directory: tokenizer.json when present,
// else tokenizer.model; "" when it has neither (find_), or a throw naming the directory.
std::string find_model_tokenizer(const std::string& model_dir);
std::string model_tokenizer_path(const std::string& model_dir);

// The tokenizer of a Hugging Face model directory: `override_path` when non-empty, else
// model_tokenizer_path(MODEL_DIR). Throws naming the path when it is missing, and when the tokenizer
// has more pieces than the model's vocab_size (ids the embedding cannot hold).
Tokenizer load_model_tokenizer(const std::string& model_dir, const std::string& override_path, int64_t model_vocab_size);

}  // namespace ropex
