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
