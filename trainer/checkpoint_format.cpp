// Checkpoint format 2 (and format 1 for reading). See checkpoint_format.h.
#include "trainer/checkpoint_format.h"

#include "data/input/json.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace ropex {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

bool plain_file_name(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos && f.find('\\') == std::string::npos;
}

}  // namespace

nlohmann::json read_json_file(const fs::path& path) {
  // A manifest lists every piece of every rank's shard: a few MB for a 70B model on 1024 ranks;
  // 256 MiB is far beyond that and refuses a wrong file before reading it whole.
  return input::read_json_file(path, "a JSON file of a ropex checkpoint", size_t{256} << 20);
}

namespace {

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string piece_name(const StatePiece& p) { return p.key + "@" + std::to_string(p.offset); }

std::vector<st::TensorView> piece_views(const std::vector<StatePiece>& pieces) {
  std::vector<st::TensorView> views;
  for (const auto& p : pieces) views.push_back({piece_name(p), st::DType::F32, {p.data.numel()}, nullptr});
  return views;
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
  if (j.value("format", "") != "ropex-checkpoint") bad(path, "'format' must be \"ropex-checkpoint\"");
  if (!j.contains("version") || j["version"] != 2) bad(path, "'version' must be 2 (written by another ropex?)");
  Manifest m;
  if (!j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0)
    bad(path, "'step' must be a non-negative integer");
  m.step = j["step"].get<int64_t>();
  if (!j.contains("world_size") || !j["world_size"].is_number_integer() || j["world_size"].get<int64_t>() < 1 ||
      j["world_size"].get<int64_t>() > 1000000)
    bad(path, "'world_size' must be an integer in [1, 1000000]");
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
    const std::string h = f.value("xxh3", "");
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

uint64_t shard_file_bytes(const std::vector<StatePiece>& pieces) {
  uint64_t n = st::encode_header(piece_views(pieces)).size();
  for (const auto& p : pieces) n += static_cast<uint64_t>(p.data.numel()) * 4;
  return n;
}

FileRecord write_shard(const std::string& path, const std::string& record_name, const std::vector<StatePiece>& pieces) {
  CheckedFile f(path, record_name);
  const std::string header = st::encode_header(piece_views(pieces));
  f.write(header.data(), header.size());
  for (const auto& p : pieces) {
    if (p.data.scalar_type() != at::kFloat || !p.data.is_contiguous() || p.data.dim() != 1)
      throw std::logic_error("write_shard: '" + p.key + "' is not a 1-D contiguous float32 tensor");
    const at::Tensor host = p.data.is_cpu() ? p.data : p.data.to(at::kCPU);  // one piece at a time
    f.write(host.data_ptr(), static_cast<uint64_t>(host.numel()) * 4);
  }
  return f.finish();
}

bool is_complete_checkpoint(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / kManifestFile) || fs::is_regular_file(fs::path(dir) / "COMPLETE");
}

CheckpointFiles::CheckpointFiles(const std::string& dir) : dir_(dir) {
  if (fs::is_regular_file(fs::path(dir) / kManifestFile)) open_format2();
  else if (fs::is_regular_file(fs::path(dir) / "COMPLETE")) open_format1();
  else throw std::runtime_error(dir + ": not a complete checkpoint (no " + kManifestFile + "); refusing to read it");
  // Every tensor's pieces must cover it exactly once.
  for (const auto& [key, shape] : manifest_.tensors) {
    auto& list = pieces_[key];
    std::sort(list.begin(), list.end(), [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    int64_t end = 0;
    for (const auto& p : list) {
      if (p.offset != end)
        bad(dir_, "state tensor '" + key + "' has " + (p.offset < end ? "overlapping pieces" : "a gap") + " at element " +
                      std::to_string(std::min(p.offset, end)));
      end += p.length;
    }
    if (end != numel_of(shape))
      bad(dir_, "state tensor '" + key + "' is covered up to element " + std::to_string(end) + " of " +
                    std::to_string(numel_of(shape)) + " (a shard is missing)");
  }
  for (const auto& [key, list] : pieces_)
    if (!manifest_.tensors.count(key)) bad(dir_, "a shard holds '" + key + "', which the manifest does not list");
}

CheckpointFiles::~CheckpointFiles() = default;

void CheckpointFiles::read_state() {
  const fs::path path = fs::path(dir_) / "trainer_state.json";
  trainer_state_ = read_json_file(path);
  state_ = trainer_state_from_json(trainer_state_, path.string(), step_of_checkpoint_name(fs::path(dir_).filename().string()));
}

void CheckpointFiles::open_format2() {
  const fs::path mpath = fs::path(dir_) / kManifestFile;
  manifest_ = manifest_from_json(read_json_file(mpath), mpath.string());
  read_state();
  if (state_.step != manifest_.step || state_.world != manifest_.world)
    bad(dir_, "trainer_state.json's step and world_size differ from manifest.json's (" + std::to_string(manifest_.step) + ", " +
                  std::to_string(manifest_.world) + ")");
  for (const auto& f : manifest_.files)
    if (f.name.rfind("shard-", 0) == 0 && f.name.size() > 12 && f.name.substr(f.name.size() - 12) == ".safetensors")
      index_file(f.name, false);
}

void CheckpointFiles::open_format1() {
  format_ = 1;
  read_state();
  manifest_.step = state_.step;
  manifest_.world = state_.world;
  index_file("model.safetensors", true);
  index_file("optimizer.safetensors", false);
}

void CheckpointFiles::index_file(const std::string& name, bool format1_weights) {
  const std::string path = (fs::path(dir_) / name).string();
  files_.push_back(std::make_unique<st::SafetensorsFile>(path));
  const st::SafetensorsFile& f = *files_.back();
  for (const auto& info : f.tensors()) {
    std::string key = info.name;
    int64_t offset = 0;
    if (format_ == 1) {
      if (format1_weights) key = "master." + key;
      manifest_.tensors[key] = info.shape;
    } else {
      const size_t at = key.rfind('@');
      if (at == std::string::npos || at + 1 == key.size() ||
          key.find_first_not_of("0123456789", at + 1) != std::string::npos || key.size() - at > 14)
        bad(path, "tensor '" + info.name + "' is not named <key>@<offset>");
      offset = std::stoll(key.substr(at + 1));
      key.resize(at);
      if (info.shape.size() != 1) bad(path, "piece '" + info.name + "' is not 1-D");
      auto it = manifest_.tensors.find(key);
      if (it == manifest_.tensors.end()) bad(path, "piece '" + info.name + "' belongs to no tensor of the manifest");
      if (offset + info.numel() > numel_of(it->second)) bad(path, "piece '" + info.name + "' reaches past its tensor");
    }
    if (info.dtype != st::DType::F32) bad(path, "'" + info.name + "' is " + st::dtype_name(info.dtype) + ", expected F32");
    pieces_[key].push_back({files_.size() - 1, &info, offset, info.numel()});
  }
}

std::vector<std::string> verify_files(const std::string& dir, int rank, int world, bool* unreadable) {
  if (unreadable) *unreadable = false;
  const fs::path mpath = fs::path(dir) / kManifestFile;
  if (!fs::is_regular_file(mpath)) {
    if (fs::is_regular_file(fs::path(dir) / "COMPLETE")) return {};  // format 1
    return {dir + ": not a complete checkpoint (no " + kManifestFile + ")"};
  }
  const Manifest m = manifest_from_json(read_json_file(mpath), mpath.string());
  std::vector<std::string> problems;
  for (size_t i = static_cast<size_t>(rank); i < m.files.size(); i += static_cast<size_t>(world)) {
    bool io = false;
    std::string p = verify_file(dir, m.files[i], &io);
    if (!p.empty()) problems.push_back(std::move(p));
    if (io && unreadable) *unreadable = true;
  }
  return problems;
}

at::Tensor CheckpointFiles::read(const std::string& key, at::IntArrayRef shape, int64_t offset, int64_t count) const {
  auto t = manifest_.tensors.find(key);
  if (t == manifest_.tensors.end()) bad(dir_, "lacks state tensor '" + key + "'");
  if (at::IntArrayRef(t->second) != shape)
    bad(dir_, "'" + key + "' has shape " + c10::str(at::IntArrayRef(t->second)) + ", the model expects " + c10::str(shape));
  if (offset < 0 || count < 0 || offset + count > numel_of(t->second))
    throw std::logic_error("CheckpointFiles::read: stretch outside '" + key + "'");
  at::Tensor out = at::empty({count}, at::TensorOptions().dtype(at::kFloat));
  const auto& list = pieces_.at(key);
  auto it = std::upper_bound(list.begin(), list.end(), offset, [](int64_t o, const Piece& p) { return o < p.offset + p.length; });
  for (int64_t done = 0; done < count; ++it) {
    const int64_t from = offset + done - it->offset, n = std::min(count - done, it->length - from);
    const st::SafetensorsFile& f = *files_[it->file];
    const char* src = static_cast<const char*>(f.data(*it->info)) + from * 4;
    std::memcpy(static_cast<char*>(out.data_ptr()) + done * 4, src, static_cast<size_t>(n) * 4);
    f.drop_pages(src, static_cast<size_t>(n) * 4);
    done += n;
  }
  return out;
}

at::Tensor CheckpointFiles::read_whole(const std::string& key) const {
  auto t = manifest_.tensors.find(key);
  if (t == manifest_.tensors.end()) bad(dir_, "lacks state tensor '" + key + "'");
  return read(key, t->second, 0, numel_of(t->second)).view(t->second);
}

StateReader CheckpointFiles::reader() const {
  return [this](const std::string& key, at::IntArrayRef shape, int64_t offset, int64_t count) {
    return read(key, shape, offset, count);
  };
}

}  // namespace ropex
