#include "trainer/checkpoint_manifest.h"

#include <cstdio>
#include <set>
#include <stdexcept>

#include "trainer/checkpoint_state.h"

namespace ropex {
namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

bool plain_file_name(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos && f.find('\\') == std::string::npos;
}

}  // namespace

std::string shard_file_name(int rank, int world) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "shard-%05d-of-%05d.safetensors", rank, world);
  return buf;
}

std::string rank_state_file(int rank) { return "rank_" + std::to_string(rank) + ".json"; }

nlohmann::json manifest_to_json(const Manifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files) files.push_back({{"name", f.name}, {"bytes", f.bytes}, {"xxh3", f.xxh3}});
  return {{"format", "ropex-checkpoint"}, {"version", 2},       {"step", m.step},
          {"world_size", m.world},        {"tensors", m.tensors}, {"files", files}};
}

Manifest manifest_from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) bad(path, "must be a JSON object");
  if (!j.contains("format") || j["format"] != "ropex-checkpoint") bad(path, "'format' must be \"ropex-checkpoint\"");
  if (!j.contains("version") || j["version"] != 2) bad(path, "'version' must be 2 (written by another ropex?)");
  Manifest m;
  if (!j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0 ||
      j["step"].get<int64_t>() > kMaxCheckpointStep)
    bad(path, "'step' must be an integer in [0, " + std::to_string(kMaxCheckpointStep) + "]");
  m.step = j["step"].get<int64_t>();
  if (!j.contains("world_size") || !j["world_size"].is_number_integer() || j["world_size"].get<int64_t>() < 1 ||
      j["world_size"].get<int64_t>() > kMaxWorldSize)
    bad(path, "'world_size' must be an integer in [1, " + std::to_string(kMaxWorldSize) + "]");
  m.world = j["world_size"].get<int>();
  if (!j.contains("tensors") || !j["tensors"].is_object()) bad(path, "'tensors' must be an object of key -> shape");
  for (const auto& [key, shape] : j["tensors"].items()) {
    if (!shape.is_array() || shape.size() > 8) bad(path, "tensors['" + key + "'] must be a shape (at most 8 dims)");
    std::vector<int64_t> dims;
    int64_t n = 1;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t{1} << 40))
        bad(path, "tensors['" + key + "'] has a dimension that is not an integer in [0, 2^40]");
      dims.push_back(d.get<int64_t>());
      if (__builtin_mul_overflow(n, dims.back(), &n) || n > (int64_t{1} << 42))
        bad(path, "tensors['" + key + "'] has more than 2^42 elements");
    }
    m.tensors[key] = dims;
  }
  if (m.tensors.empty()) bad(path, "'tensors' lists no state tensor");
  if (!j.contains("files") || !j["files"].is_array()) bad(path, "'files' must be an array");
  std::set<std::string> names;
  for (const auto& f : j["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !plain_file_name(f["name"].get<std::string>()))
      bad(path, "every entry of 'files' needs a plain file 'name'");
    const std::string name = f["name"].get<std::string>();
    if (!f.contains("bytes") || !f["bytes"].is_number_unsigned()) bad(path, "files['" + name + "'].bytes must be an unsigned integer");
    const std::string h = f.contains("xxh3") && f["xxh3"].is_string() ? f["xxh3"].get<std::string>() : "";
    if (h.size() != 16 || h.find_first_not_of("0123456789abcdef") != std::string::npos)
      bad(path, "files['" + name + "'].xxh3 must be 16 lowercase hex digits");
    if (!names.insert(name).second) bad(path, "file '" + name + "' listed twice");
    m.files.push_back({name, f["bytes"].get<uint64_t>(), h});
  }
  std::vector<std::string> required = {"trainer_state.json", "config.json", "run_config.json"};
  for (int r = 0; r < m.world; ++r) {
    required.push_back(rank_state_file(r));
    required.push_back(shard_file_name(r, m.world));
  }
  for (const auto& name : required)
    if (!names.count(name)) bad(path, "'files' lacks " + name + " (every checkpoint of " + std::to_string(m.world) + " ranks has it)");
  return m;
}

}  // namespace ropex
