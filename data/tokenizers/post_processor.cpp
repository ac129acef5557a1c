#include "data/tokenizers/post_processor.h"

#include "data/input/json.h"

namespace ropex::tok {

namespace {

SpecialAround read_template(const nlohmann::json& j, const JsonPlace& at) {
  SpecialAround out;
  const auto& single = member(j, at, "single");
  auto single_at = at.child("single");
  if (!single.is_array()) single_at.fail("expected a list");
  const auto& specials = member(j, at, "special_tokens");
  auto specials_at = at.child("special_tokens");
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    auto item_at = single_at.index(i);
    const auto& item = single[i];
    if (auto seq = optional_member(item, "Sequence")) {
      auto id = as_string(member(*seq, item_at.child("Sequence"), "id"), item_at.child("Sequence.id"));
      if (id != "A") item_at.child("Sequence.id").fail("a single-sequence template can only use $A, got $" + id);
      if (seen_sequence) item_at.fail("$A appears twice");
      seen_sequence = true;
    } else if (auto sp = optional_member(item, "SpecialToken")) {
      auto name = as_string(member(*sp, item_at.child("SpecialToken"), "id"), item_at.child("SpecialToken.id"));
      auto entry = optional_member(specials, name);
      if (!entry) specials_at.fail("'" + name + "' (used by single[" + std::to_string(i) + "]) is missing");
      auto entry_at = specials_at.child(name);
      const auto& ids = member(*entry, entry_at, "ids");
      if (!ids.is_array()) entry_at.child("ids").fail("expected a list");
      for (size_t k = 0; k < ids.size(); ++k) {
        int64_t id = as_int(ids[k], entry_at.child("ids").index(k));
        if (id < 0 || id > INT32_MAX) entry_at.child("ids").index(k).fail("id out of range");
        (seen_sequence ? out.suffix : out.prefix).push_back(static_cast<int32_t>(id));
      }
    } else {
      item_at.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}, got " + input::json_excerpt(item));
    }
  }
  if (!seen_sequence) single_at.fail("the template has no $A");
  return out;
}

int32_t token_pair_id(const nlohmann::json& j, const JsonPlace& at, const char* key) {
  const auto& v = member(j, at, key);
  if (!v.is_array() || v.size() != 2) at.child(key).fail("expected [token, id]");
  int64_t id = as_int(v[1], at.child(key).index(1));
  if (id < 0 || id > INT32_MAX) at.child(key).fail("id out of range");
  return static_cast<int32_t>(id);
}

}  // namespace

SpecialAround read_post_processor(const nlohmann::json& j, const JsonPlace& at) {
  if (j.is_null()) return {};
  std::string type = type_of(j, at);
  if (type == "TemplateProcessing") return read_template(j, at);
  if (type == "ByteLevel") return {};
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    return {{token_pair_id(j, at, "cls")}, {token_pair_id(j, at, "sep")}};
  }
  if (type == "Sequence") {
    const auto& list = member(j, at, "processors");
    auto list_at = at.child("processors");
    if (!list.is_array()) list_at.fail("expected a list");
    SpecialAround out;
    for (size_t i = 0; i < list.size(); ++i) {
      SpecialAround inner = read_post_processor(list[i], list_at.index(i));
      // Each processor wraps what the previous ones produced.
      inner.prefix.insert(inner.prefix.end(), out.prefix.begin(), out.prefix.end());
      out.suffix.insert(out.suffix.end(), inner.suffix.begin(), inner.suffix.end());
      out.prefix = std::move(inner.prefix);
    }
    return out;
  }
  at.child("type").unsupported(type, "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
}

}  // namespace ropex::tok
