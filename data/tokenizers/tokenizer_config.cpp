#include "data/tokenizers/tokenizer_config.h"

#include "data/input/json.h"

#include <stdexcept>

namespace ropex {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> token_text(const nlohmann::json& cfg, const std::string& key, const std::string& source) {
  if (!cfg.contains(key) || cfg[key].is_null()) return std::nullopt;
  const nlohmann::json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw std::runtime_error(source + ": key '" + key + "': expected a string, null or an object with a string \"content\", got " +
                           input::json_excerpt(v));
}

}  // namespace

HfSpecialTokens read_special_tokens(const fs::path& dir) {
  HfSpecialTokens t;
  const fs::path file = dir / "tokenizer_config.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) return t;
  t.source = file.string();
  const nlohmann::json cfg = input::read_json_file(file, "a Hugging Face tokenizer_config.json");
  if (!cfg.is_object()) throw std::runtime_error(t.source + ": expected a JSON object, got " + input::json_excerpt(cfg));
  t.bos = token_text(cfg, "bos_token", t.source);
  t.eos = token_text(cfg, "eos_token", t.source);
  t.pad = token_text(cfg, "pad_token", t.source);
  t.unk = token_text(cfg, "unk_token", t.source);
  return t;
}

std::vector<fs::path> tokenizer_files(const fs::path& tokenizer_file) {
  std::vector<fs::path> files{tokenizer_file};
  for (const char* companion : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path p = tokenizer_file.parent_path() / companion;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) files.push_back(p);
  }
  return files;
}

}  // namespace ropex
