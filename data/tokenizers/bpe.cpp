#include "data/tokenizers/bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "data/input/json.h"
#include "data/tokenizers/unicode_text.h"

namespace ropex::tok {

namespace {

constexpr size_t kCacheEntries = size_t{1} << 18;
constexpr size_t kCacheMaxPiece = 256;  // bytes; longer pre-tokens are not cached

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

std::optional<std::string> optional_string(const nlohmann::json& j, const JsonPlace& at, std::string_view key) {
  auto v = optional_member(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return as_string(*v, at.child(key));
}

bool optional_flag(const nlohmann::json& j, const JsonPlace& at, std::string_view key) {
  auto v = optional_member(j, key);
  if (!v || v->is_null()) return false;
  return as_bool(*v, at.child(key));
}

}  // namespace

Bpe::Bpe(const nlohmann::json& j, const JsonPlace& at) : file_(*at.file) {
  std::string type = optional_member(j, "type") ? type_of(j, at) : "BPE";
  if (type != "BPE") at.child("type").unsupported(type, "BPE models");
  if (auto d = optional_member(j, "dropout"); d && !d->is_null()) {
    if (!d->is_number() || d->get<double>() != 0.0) {
      at.child("dropout").fail(input::json_excerpt(*d) + " is not supported; ropex encodes deterministically (null or 0)");
    }
  }
  unk_token_ = optional_string(j, at, "unk_token");
  prefix_ = optional_string(j, at, "continuing_subword_prefix").value_or("");
  suffix_ = optional_string(j, at, "end_of_word_suffix").value_or("");
  fuse_unk_ = optional_flag(j, at, "fuse_unk");
  byte_fallback_ = optional_flag(j, at, "byte_fallback");
  ignore_merges_ = optional_flag(j, at, "ignore_merges");

  const auto& vocab = member(j, at, "vocab");
  auto vocab_at = at.child("vocab");
  if (!vocab.is_object()) vocab_at.fail("expected an object of token: id");
  vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int64_t id = as_int(it.value(), vocab_at.child(it.key()));
    if (id < 0 || id > INT32_MAX) vocab_at.child(it.key()).fail("id " + std::to_string(id) + " out of range");
    vocab_.emplace(it.key(), static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  if (max_id >= 0 && static_cast<uint64_t>(max_id) > 4 * vocab.size() + 65536) {
    vocab_at.fail("ids are sparse (largest " + std::to_string(max_id) + " for " + std::to_string(vocab.size()) + " tokens)");
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : vocab_) {
    if (has_id_[id]) vocab_at.fail("id " + std::to_string(id) + " is given to two tokens");
    id_to_token_[id] = token;
    has_id_[id] = true;
  }

  bmp_ids_.assign(0x10000, -1);
  for (const auto& [token, id] : vocab_) {
    size_t n = 0;
    if (token.empty()) continue;
    char32_t c = decode_utf8(token, 0, &n);
    if (n == token.size() && c < 0x10000) bmp_ids_[c] = id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab_.find(std::string_view(name));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  const auto& merges = member(j, at, "merges");
  auto merges_at = at.child("merges");
  if (!merges.is_array()) merges_at.fail("expected a list");
  merges_.reserve(merges.size() * 2);
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& m = merges[i];
    auto m_at = merges_at.index(i);
    std::string a, b;
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        m_at.fail("expected \"left right\" (one space), got " + input::json_excerpt(m));
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2) {
      a = as_string(m[0], m_at.index(0));
      b = as_string(m[1], m_at.index(1));
    } else {
      m_at.fail("expected [\"left\", \"right\"] or \"left right\", got " + input::json_excerpt(m));
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    if (ia == vocab_.end()) m_at.fail("token '" + a + "' is not in the vocabulary");
    if (ib == vocab_.end()) m_at.fail("token '" + b + "' is not in the vocabulary");
    std::string merged = a + (prefix_.size() <= b.size() && b.compare(0, prefix_.size(), prefix_) == 0 ? b.substr(prefix_.size()) : b);
    auto im = vocab_.find(merged);
    if (im == vocab_.end()) m_at.fail("the merged token '" + merged + "' is not in the vocabulary");
    merges_[pair_key(ia->second, ib->second)] = MergeInfo{static_cast<int32_t>(i), im->second};
  }
}

Bpe::~Bpe() = default;

std::optional<int32_t> Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

int32_t Bpe::char_id(std::string_view ch) const {
  size_t n = 0;
  char32_t c = decode_utf8(ch, 0, &n);
  if (c < 0x10000) return bmp_ids_[c];
  auto it = vocab_.find(ch);
  return it == vocab_.end() ? -1 : it->second;
}

void Bpe::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bool cacheable = piece.size() <= kCacheMaxPiece;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t first = out.size();
  merge_word(piece, out);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheEntries) cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void Bpe::merge_word(std::string_view piece, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  auto add = [&symbols](int32_t id) {
    int32_t pos = static_cast<int32_t>(symbols.size());
    if (pos > 0) symbols.back().next = pos;
    symbols.push_back({id, pos - 1, -1, true});
  };
  bool plain = prefix_.empty() && suffix_.empty();
  int32_t pending_unk = -1;  // an unk not yet added (fused with the next ones)
  std::string with_affixes;
  for (size_t i = 0; i < piece.size();) {
    size_t n = std::min(utf8_len(static_cast<unsigned char>(piece[i])), piece.size() - i);
    std::string_view ch = piece.substr(i, n);
    bool is_first = i == 0, is_last = i + n == piece.size();
    i += n;
    int32_t id;
    if (plain) {
      id = char_id(ch);
    } else {
      with_affixes.clear();
      if (!is_first) with_affixes += prefix_;
      with_affixes += ch;
      if (is_last) with_affixes += suffix_;
      ch = with_affixes;
      auto it = vocab_.find(ch);
      id = it == vocab_.end() ? -1 : it->second;
    }
    if (id >= 0) {
      if (pending_unk >= 0) {
        add(pending_unk);
        pending_unk = -1;
      }
      add(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        // As the `tokenizers` library does: byte tokens go in before a pending unk.
        for (char c : ch) add(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_token_) {
      auto it = vocab_.find(*unk_token_);
      if (it == vocab_.end()) {
        throw std::runtime_error(file_ + ": key 'model.unk_token': '" + *unk_token_ + "' is not in the vocabulary");
      }
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = it->second;
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  struct Entry {
    int32_t rank, pos, new_id;
  };
  auto worse = [](const Entry& x, const Entry& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
  std::vector<Entry> heap;
  heap.reserve(symbols.size());
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    auto it = merges_.find(pair_key(symbols[k].id, symbols[k + 1].id));
    if (it != merges_.end()) heap.push_back({it->second.rank, static_cast<int32_t>(k), it->second.new_id});
  }
  std::make_heap(heap.begin(), heap.end(), worse);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    Entry top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    int32_t next_pos = cur.next;
    Symbol right = symbols[next_pos];
    auto it = merges_.find(pair_key(cur.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.next = right.next;
    symbols[next_pos].alive = false;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      auto p = merges_.find(pair_key(symbols[cur.prev].id, cur.id));
      if (p != merges_.end()) {
        heap.push_back({p->second.rank, cur.prev, p->second.new_id});
        std::push_heap(heap.begin(), heap.end(), worse);
      }
    }
    if (cur.next >= 0) {
      auto q = merges_.find(pair_key(cur.id, symbols[cur.next].id));
      if (q != merges_.end()) {
        heap.push_back({q->second.rank, top.pos, q->second.new_id});
        std::push_heap(heap.begin(), heap.end(), worse);
      }
    }
  }
  for (const auto& s : symbols) {
    if (s.alive) out.push_back(s.id);
  }
}

}  // namespace ropex::tok
