#include "data/tokenizers/tokenizer_json.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "data/input/files.h"
#include "data/input/json.h"
#include "data/tokenizers/added_tokens.h"
#include "data/tokenizers/bpe.h"
#include "data/tokenizers/decoders.h"
#include "data/tokenizers/json_access.h"
#include "data/tokenizers/normalizers.h"
#include "data/tokenizers/post_processor.h"
#include "data/tokenizers/pre_tokenizers.h"
#include "data/tokenizers/unicode_text.h"

namespace ropex {

using namespace tok;

namespace {
// Real tokenizer.json files are up to ~20 MB; the bound only keeps a hostile file from exhausting memory.
constexpr size_t kMaxFileBytes = size_t{256} << 20;
}  // namespace

struct TokenizerJson::Impl {
  std::string path;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, const AddedToken*> added_by_id;
  // The token text of each added id, as the `tokenizers` library gives it to the decoder: a
  // normalized=true token's content after normalization (so "▁[FOO]" under Prepend("▁")).
  std::unordered_map<int32_t, std::string> added_text;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_by_content;
  std::unordered_set<std::string> special_contents;
  std::unordered_set<int32_t> special_ids;
  TokenMatcher raw_matcher, normalized_matcher;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Bpe> model;
  std::unique_ptr<Decoder> decoder;
  SpecialAround around;
  int32_t vocab_size = 0;

  void encode_stretch(std::string_view text, bool at_start, std::vector<int32_t>& ids,
                      std::vector<TokenMatcher::Part>& parts) const;
};

TokenizerJson::TokenizerJson(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenizerJson::TokenizerJson(TokenizerJson&&) noexcept = default;
TokenizerJson& TokenizerJson::operator=(TokenizerJson&&) noexcept = default;
TokenizerJson::~TokenizerJson() = default;

TokenizerJson TokenizerJson::load(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::string text = input::read_regular_file(path, "a Hugging Face tokenizer.json", kMaxFileBytes);
  nlohmann::json j = input::parse_json(text, path);
  text.clear();
  text.shrink_to_fit();
  JsonPlace root{&impl->path, ""};
  if (!j.is_object()) throw std::runtime_error(path + ": expected a JSON object (a tokenizer.json)");

  for (const char* key : {"truncation", "padding"}) {
    if (auto v = optional_member(j, key); v && !v->is_null()) {
      root.child(key).fail("must be null; ropex encodes whole texts without truncation or padding");
    }
  }
  impl->model = std::make_unique<Bpe>(member(j, root, "model"), root.child("model"));
  if (auto n = optional_member(j, "normalizer"); n && !n->is_null()) impl->normalizer = make_normalizer(*n, root.child("normalizer"));
  if (auto p = optional_member(j, "pre_tokenizer"); p && !p->is_null()) {
    impl->pre_tokenizer = make_pre_tokenizer(*p, root.child("pre_tokenizer"));
  }
  if (auto d = optional_member(j, "decoder"); d && !d->is_null()) impl->decoder = make_decoder(*d, root.child("decoder"));
  if (auto pp = optional_member(j, "post_processor")) impl->around = read_post_processor(*pp, root.child("post_processor"));

  if (auto a = optional_member(j, "added_tokens")) impl->added = read_added_tokens(*a, root.child("added_tokens"));
  impl->vocab_size = impl->model->size();
  for (auto& t : impl->added) {
    // As the `tokenizers` library: a content the model knows keeps the model's id.
    if (auto id = impl->model->token_to_id(t.content)) t.id = *id;
    impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
  }
  std::vector<std::string> raw_patterns, normalized_patterns;
  std::vector<const AddedToken*> raw_tokens, normalized_tokens;
  for (const auto& t : impl->added) {
    impl->added_by_id.emplace(t.id, &t);
    std::string text = t.content;
    if (t.normalized && impl->normalizer) impl->normalizer->normalize(text);
    impl->added_text.emplace(t.id, text);
    impl->added_by_content.emplace(t.content, t.id);
    if (t.special) {
      impl->special_contents.insert(t.content);
      impl->special_ids.insert(t.id);
    }
    if (t.normalized) {
      std::string p = t.content;
      if (impl->normalizer) impl->normalizer->normalize(p);
      normalized_patterns.push_back(std::move(p));
      normalized_tokens.push_back(&t);
    } else {
      raw_patterns.push_back(t.content);
      raw_tokens.push_back(&t);
    }
  }
  impl->raw_matcher.build(raw_patterns, raw_tokens);
  impl->normalized_matcher.build(normalized_patterns, normalized_tokens);
  for (int32_t id : impl->around.prefix) {
    if (id >= impl->vocab_size) root.child("post_processor").fail("id " + std::to_string(id) + " is not in the vocabulary");
  }
  for (int32_t id : impl->around.suffix) {
    if (id >= impl->vocab_size) root.child("post_processor").fail("id " + std::to_string(id) + " is not in the vocabulary");
  }
  return TokenizerJson(std::move(impl));
}

void TokenizerJson::Impl::encode_stretch(std::string_view raw, bool at_start, std::vector<int32_t>& ids,
                                         std::vector<TokenMatcher::Part>& parts) const {
  std::string text(raw);
  if (normalizer) normalizer->normalize(text);
  if (normalized_matcher.empty()) {
    parts.assign(1, {nullptr, 0, text.size()});
  } else {
    normalized_matcher.split(text, parts);
  }
  std::vector<Piece> pieces;
  for (const auto& part : parts) {
    if (part.token) {
      ids.push_back(part.token->id);
      continue;
    }
    if (part.end == part.begin) continue;
    pieces.clear();
    pieces.push_back({text.substr(part.begin, part.end - part.begin), at_start && part.begin == 0});
    if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
    for (const auto& p : pieces) model->encode(p.text, ids);
  }
}

std::vector<int32_t> TokenizerJson::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& m = *impl_;
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = make_valid_utf8(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  if (add_special_tokens) ids = m.around.prefix;
  std::vector<TokenMatcher::Part> parts, inner;
  if (m.raw_matcher.empty()) {
    parts.assign(1, {nullptr, 0, text.size()});
  } else {
    m.raw_matcher.split(text, parts);
  }
  for (const auto& part : parts) {
    if (part.token) {
      ids.push_back(part.token->id);
    } else if (part.end > part.begin) {
      m.encode_stretch(text.substr(part.begin, part.end - part.begin), part.begin == 0, ids, inner);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), m.around.suffix.begin(), m.around.suffix.end());
  return ids;
}

std::string TokenizerJson::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = nullptr;
    if (auto it = m.added_text.find(id); it != m.added_text.end()) token = &it->second;
    else token = m.model->id_to_token(id);
    if (!token) {
      throw std::runtime_error(m.path + ": decode: id " + std::to_string(id) + " is not in the vocabulary (size " +
                               std::to_string(m.vocab_size) + ")");
    }
    // As the library: skipped when the token text is a special token's content.
    if (skip_special_tokens && m.special_contents.count(*token)) continue;
    tokens.push_back(*token);
  }
  if (m.decoder) {
    m.decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += ' ';
    out += tokens[i];
  }
  return out;
}

int TokenizerJson::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> TokenizerJson::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> TokenizerJson::id_to_token(int32_t id) const {
  if (auto it = impl_->added_text.find(id); it != impl_->added_text.end()) return it->second;
  if (auto t = impl_->model->id_to_token(id)) return *t;
  return std::nullopt;
}

const std::vector<int32_t>& TokenizerJson::special_prefix() const { return impl_->around.prefix; }
const std::vector<int32_t>& TokenizerJson::special_suffix() const { return impl_->around.suffix; }
bool TokenizerJson::is_special(int32_t id) const { return impl_->special_ids.count(id) > 0; }
const std::string& TokenizerJson::path() const { return impl_->path; }

}  // namespace ropex
