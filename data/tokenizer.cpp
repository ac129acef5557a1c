// Tokenizer implementation over SentencePiece's processor and trainer, or over a tokenizer.json
// (data/tokenizers/). Does: file checks with helpful errors, Llama training conventions, BOS/EOS
// framing, id range checks before decoding. Does not: cache, batch, or touch LibTorch.
#include "data/tokenizer.h"

#include <unistd.h>

#include "data/input/files.h"
#include "data/tokenizers/tokenizer_config.h"
#include "data/tokenizers/tokenizer_json.h"

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
  std::unique_ptr<TokenizerJson> hf;  // set for a tokenizer.json; then `sp` is unused
  std::string path;
  bool cuts_at_spaces = false;  // encode() may cut long texts at spaces (see tokenizer.h)
  int bos = -1, eos = -1, unk = -1, pad = -1;  // a tokenizer.json's (SentencePiece keeps its own)
};

namespace {

namespace fs = std::filesystem;

std::string quoted(const std::string& s) { return "'" + s + "'"; }
bool cut_is_exact(const sentencepiece::SentencePieceProcessor& sp);  // below, beside encode()

// Throws unless `path` names a readable regular file; `what` says what it should be.
void require_readable_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw std::runtime_error(what + " " + quoted(path) + " does not exist");
  }
  ::close(input::open_regular_file(path, what));  // a FIFO or directory, or no read permission: refused
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

namespace {

bool ends_with_json(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

// A special token's id in a tokenizer.json, by its text; throws naming where the text came from
// when the tokenizer has no such token.
int hf_token_id(const TokenizerJson& hf, const std::optional<std::string>& token, const std::string& key,
                const std::string& source) {
  if (!token) return -1;
  const std::optional<int32_t> id = hf.token_to_id(*token);
  if (!id)
    throw std::runtime_error(source + ": key '" + key + "': token " + quoted(*token) + " is not in the vocabulary of " +
                             quoted(hf.path()));
  return *id;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load(model_tokenizer_path(path));
  if (ends_with_json(path)) {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->hf = std::make_unique<TokenizerJson>(TokenizerJson::load(path));
    const TokenizerJson& hf = *impl->hf;
    const HfSpecialTokens named = read_special_tokens(fs::path(path).parent_path());
    // BOS: what the post-processor puts first when it is one token, else tokenizer_config's bos_token.
    if (hf.special_prefix().size() == 1) impl->bos = hf.special_prefix()[0];
    else impl->bos = hf_token_id(hf, named.bos, "bos_token", named.source);
    impl->eos = hf_token_id(hf, named.eos, "eos_token", named.source);
    impl->unk = hf_token_id(hf, named.unk, "unk_token", named.source);
    impl->pad = hf_token_id(hf, named.pad, "pad_token", named.source);
    return Tokenizer(std::move(impl));
  }
  const std::string& model_path = path;
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
  impl->cuts_at_spaces = cut_is_exact(impl->sp);
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

namespace {

bool ascii_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool ascii_visible(char c) { return c > ' ' && c < 0x7f; }

// Whether encoding may be cut at a single space between ASCII characters with the same ids as the
// whole text. The cut drops the space; the piece after it then gets the dummy prefix U+2581, which
// is what the space became in the whole text. Holds when no piece but whitespace-only ones carries
// U+2581 after its first character (no piece spans a word boundary: BPE's merges and unigram's
// lattice then decompose at every U+2581), the tokenizer adds a dummy prefix, and a probe agrees.
// Two facts of a serialized ModelProto (sentencepiece_model.proto, which Debian's package does not
// ship compiled): TrainerSpec.model_type (field 3 of field 2; UNIGRAM=1 by default, BPE=2, WORD=3,
// CHAR=4) and NormalizerSpec.name (field 1 of field 3). Read from the protobuf wire format; an
// unreadable model gives the defaults (unigram, no name), for which cuts are not used.
struct ModelFacts {
  uint64_t model_type = 1;
  std::string normalizer;
};

bool read_varint(const char*& p, const char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    const auto byte = static_cast<uint8_t>(*p++);
    v |= uint64_t(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// Calls on_field(number, wire_type, varint, bytes) for each field of one message; false if malformed.
template <class F>
bool each_field(std::string_view msg, F on_field) {
  const char* p = msg.data();
  const char* end = p + msg.size();
  while (p < end) {
    uint64_t tag = 0, v = 0;
    if (!read_varint(p, end, tag)) return false;
    std::string_view bytes;
    switch (tag & 7) {
      case 0: if (!read_varint(p, end, v)) return false; break;
      case 1: if (end - p < 8) return false; p += 8; break;
      case 5: if (end - p < 4) return false; p += 4; break;
      case 2:
        if (!read_varint(p, end, v) || v > uint64_t(end - p)) return false;
        bytes = std::string_view(p, v);
        p += v;
        break;
      default: return false;
    }
    on_field(tag >> 3, tag & 7, v, bytes);
  }
  return true;
}

ModelFacts model_facts(const std::string& proto) {
  ModelFacts facts;
  each_field(proto, [&](uint64_t field, uint64_t wire, uint64_t, std::string_view bytes) {
    if (wire != 2) return;
    if (field == 2)
      each_field(bytes, [&](uint64_t f, uint64_t w, uint64_t v, std::string_view) { if (f == 3 && w == 0) facts.model_type = v; });
    if (field == 3)
      each_field(bytes, [&](uint64_t f, uint64_t w, uint64_t, std::string_view b) { if (f == 1 && w == 2) facts.normalizer = b; });
  });
  return facts;
}

bool cut_is_exact(const sentencepiece::SentencePieceProcessor& sp) {
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581
  // BPE, word and char models segment each word on its own; unigram's Viterbi over a whole text adds
  // float scores whose rounding could, at a near tie, choose differently than over a piece. A
  // user-defined normalizer may hold rules that span a space.
  const ModelFacts facts = model_facts(sp.serialized_model_proto());
  if (facts.model_type < 2 || facts.model_type > 4 || facts.normalizer == "user_defined") return false;
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    const std::string piece = sp.IdToPiece(id);
    // Whitespace-only pieces ("▁▁", Llama's indentation pieces) match runs of spaces, never a cut.
    bool only_spaces = !piece.empty() && piece.size() % 3 == 0;
    for (size_t i = 0; only_spaces && i < piece.size(); i += 3) only_spaces = piece.compare(i, 3, kSpace) == 0;
    if (!only_spaces && piece.find(kSpace, 1) != std::string::npos) return false;
  }
  std::vector<std::string> pieces;
  if (!sp.Encode("ab", &pieces).ok() || pieces.empty() || pieces[0].rfind(kSpace, 0) != 0) return false;
  for (const auto& [a, b] : {std::pair<std::string, std::string>{"The", "cat"}, {"x", "y"}, {"12", "34"}, {"a.", "B"}}) {
    std::vector<int> whole, left, right;
    if (!sp.Encode(a + " " + b, &whole).ok() || !sp.Encode(a, &left).ok() || !sp.Encode(b, &right).ok()) return false;
    left.insert(left.end(), right.begin(), right.end());
    if (left != whole) return false;
  }
  return true;
}

void encode_into(const sentencepiece::SentencePieceProcessor& sp, std::string_view text, std::vector<int>& out,
                 const std::string& path) {
  std::vector<int> ids;
  const auto status = sp.Encode(text, &ids);
  if (!status.ok()) throw std::runtime_error("encoding with tokenizer " + quoted(path) + " failed: " + status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

bool Tokenizer::cuts_long_texts() const { return impl().cuts_at_spaces; }
bool Tokenizer::is_tokenizer_json() const { return impl().hf != nullptr; }

// Where encode() cuts `text` (each a space, which is dropped), in order; throws TextTooLong.
std::vector<size_t> Tokenizer::cuts(std::string_view text) const {
  const Impl& im = impl();
  std::vector<size_t> out;
  if (text.size() <= kPieceBytes || im.hf) return out;
  if (!im.cuts_at_spaces) {
    if (text.size() > kMaxUncut)
      throw TextTooLong("a text of " + std::to_string(text.size()) + " bytes: tokenizer " + quoted(im.path) +
                        " cannot be cut at spaces exactly (a unigram model, pieces spanning spaces or a user-defined normalizer), "
                        "and ropex encodes at most " +
                        std::to_string(kMaxUncut >> 20) + " MiB in one piece (SentencePiece needs ~250 bytes per byte)");
    return out;
  }
  const auto exact = [&](size_t i) {
    return i > 0 && i + 1 < text.size() && text[i] == ' ' && ascii_visible(text[i - 1]) && ascii_alnum(text[i + 1]);
  };
  size_t start = 0;
  while (text.size() - start > kPieceBytes) {
    // The last exact cut before start + kPieceBytes, else the first after it, within kMaxUncut.
    size_t cut = std::string_view::npos;
    for (size_t i = start + kPieceBytes; i > start && cut == std::string_view::npos; --i)
      if (exact(i)) cut = i;
    for (size_t i = start + kPieceBytes + 1; cut == std::string_view::npos && i < text.size() && i - start < kMaxUncut; ++i)
      if (exact(i)) cut = i;
    if (cut == std::string_view::npos) {
      if (text.size() - start > kMaxUncut)
        throw TextTooLong("a run of more than " + std::to_string(kMaxUncut >> 20) + " MiB without a space between ASCII characters "
                          "(from byte " + std::to_string(start) + " of " + std::to_string(text.size()) +
                          "); ropex encodes at most that much in one piece (SentencePiece needs ~250 bytes per byte)");
      break;
    }
    out.push_back(cut);
    start = cut + 1;
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  const Impl& im = impl();
  if (im.hf) {
    if (add_eos && im.eos < 0)
      throw std::runtime_error("tokenizer " + quoted(im.path) + " names no end-of-text token: tokenizer.json does not say which it " +
                               "is, and there is no tokenizer_config.json beside it with an eos_token (or leave the EOS out)");
    std::vector<int32_t> ids;
    if (add_bos) ids = im.hf->special_prefix();
    const std::vector<int32_t> body = im.hf->encode(text, /*add_special_tokens=*/false);
    ids.insert(ids.end(), body.begin(), body.end());
    if (add_eos) ids.push_back(im.eos);
    return ids;
  }
  std::vector<int> pieces;
  size_t start = 0;
  for (const size_t cut : cuts(text)) {
    encode_into(im.sp, text.substr(start, cut - start), pieces, im.path);
    start = cut + 1;  // the space itself becomes the next piece's dummy prefix
  }
  encode_into(im.sp, text.substr(start), pieces, im.path);
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

std::vector<int32_t> Tokenizer::encode_with_special_tokens(std::string_view text) const {
  if (impl().hf) return impl().hf->encode(text, /*add_special_tokens=*/true);
  return encode(text, /*add_bos=*/bos_id() >= 0, /*add_eos=*/false);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool keep_special) const {
  if (impl().hf) return impl().hf->decode(ids, /*skip_special_tokens=*/!keep_special);
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw std::runtime_error("cannot decode id " + std::to_string(id) + ": outside the vocabulary of " +
                               "tokenizer " + quoted(impl().path) + " (size " + std::to_string(vocab_size()) +
                               ")");
    }
  }
  std::string text;
  if (keep_special) {  // control pieces as their text (<s>, </s>), the runs between them decoded whole
    const auto& sp = impl().sp;
    std::vector<int> run;
    for (size_t i = 0; i <= ids.size(); ++i) {
      if (i < ids.size() && !sp.IsControl(ids[i])) {
        run.push_back(ids[i]);
        continue;
      }
      if (!run.empty()) text += sp.DecodeIds(run), run.clear();
      if (i < ids.size()) text += sp.IdToPiece(ids[i]);
    }
    return text;
  }
  const auto status = impl().sp.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) {
    throw std::runtime_error("decoding with tokenizer " + quoted(impl().path) +
                             " failed: " + status.ToString());
  }
  return text;
}

int Tokenizer::vocab_size() const { return impl().hf ? impl().hf->vocab_size() : impl().sp.GetPieceSize(); }
int Tokenizer::bos_id() const { return impl().hf ? impl().bos : impl().sp.bos_id(); }
int Tokenizer::eos_id() const { return impl().hf ? impl().eos : impl().sp.eos_id(); }
int Tokenizer::unk_id() const { return impl().hf ? impl().unk : impl().sp.unk_id(); }
int Tokenizer::pad_id() const { return impl().hf ? impl().pad : impl().sp.pad_id(); }
const std::string& Tokenizer::path() const { return impl().path; }

std::string find_model_tokenizer(const std::string& model_dir) {
  std::error_code ec;
  for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
    const fs::path p = fs::path(model_dir) / name;
    if (fs::exists(p, ec)) return p.string();
  }
  return "";
}

std::string model_tokenizer_path(const std::string& model_dir) {
  std::string path = find_model_tokenizer(model_dir);
  if (path.empty())
    throw std::runtime_error(model_dir + ": no tokenizer.json or tokenizer.model in the model directory (pass --tokenizer FILE)");
  return path;
}

Tokenizer load_model_tokenizer(const std::string& model_dir, const std::string& override_path, int64_t model_vocab_size) {
  const std::string path = override_path.empty() ? model_tokenizer_path(model_dir) : override_path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error(path + ": tokenizer not found (pass --tokenizer FILE)");
  if (!fs::is_directory(path, ec))
    input::require_regular_file(path, ends_with_json(path) ? "a tokenizer.json" : "a SentencePiece tokenizer.model");
  Tokenizer tok = Tokenizer::load(path);
  if (tok.vocab_size() > model_vocab_size)
    throw std::runtime_error(path + ": tokenizer has " + std::to_string(tok.vocab_size()) + " pieces but the model's vocab_size is " +
                             std::to_string(model_vocab_size));
  return tok;
}

}  // namespace ropex
