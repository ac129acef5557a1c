// The on-disk form of a training checkpoint and its reader (format 2, sharded).
//
// RUN/checkpoints/step_00000100/
//   shard-00000-of-00002.safetensors  what rank 0 held: float32 1-D pieces named "<key>@<offset>",
//   shard-00001-of-00002.safetensors  elements [offset, offset + length) of the flattened state
//                                     tensor <key> ("master.<hf name>", "exp_avg.<..>", "exp_avg_sq.<..>")
//   rank_0.json, rank_1.json          each rank's loader (sampler) state
//   config.json                       the model config with the rope scaling trained with
//   trainer_state.json                step, optimizer steps, tokens, world size, seed, skip counts
//   run_config.json                   the resolved run configuration
//   tokenizer.model                   copied from the model directory (when it has one)
//   manifest.json                     written last, the folder's completion mark: the state tensors
//                                     and their shapes, every other file with its size and xxh3-64
// Pieces of one tensor never overlap and together cover it; which rank wrote which piece does not
// matter to a reader, so a checkpoint loads at any world size and ZeRO stage. Format 1 (before
// sharding: model.safetensors + optimizer.safetensors + COMPLETE, no checksums) is still read.
//
// What this does not do: no writing order or commit (trainer/checkpoint.h), no byte IO
// (trainer/checkpoint_io.h), no communication.
#pragma once
#include "models/safetensors.h"
#include "trainer/checkpoint_io.h"
#include "trainer/checkpoint_manifest.h"
#include "trainer/checkpoint_state.h"
#include "trainer/optim.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ropex {

inline constexpr const char* kManifestFile = "manifest.json";

// One of a checkpoint's JSON files; throws naming it when it cannot be opened or parsed.
nlohmann::json read_json_file(const std::filesystem::path& path);


// Bytes of one rank's shard file for these pieces (header included).
uint64_t shard_file_bytes(const std::vector<StatePiece>& pieces);
// Streams the pieces into `path`: each piece is written from host memory where it lives (a CPU
// tensor), else copied to the host one piece at a time. Throws StorageError naming the path.
FileRecord write_shard(const std::string& path, const std::string& record_name, const std::vector<StatePiece>& pieces);

// Reads a complete checkpoint folder, any format. Tensor data is read from the mapped files stretch
// by stretch; the pages read are released after each copy, so reading costs the destination only.
class CheckpointFiles {
 public:
  explicit CheckpointFiles(const std::string& dir);
  ~CheckpointFiles();
  const std::string& dir() const { return dir_; }
  int format() const { return format_; }
  const Manifest& manifest() const { return manifest_; }
  const nlohmann::json& trainer_state() const { return trainer_state_; }
  // trainer_state.json read and checked (trainer/checkpoint_state.h): the constructor throws,
  // naming the file and field, for a damaged one.
  const TrainerState& state() const { return state_; }
  // `count` elements of `key` from element `offset` of its flattened form, as a float32 CPU tensor
  // (a StateReader). Throws naming the checkpoint and key if the key, its shape or any element is
  // missing.
  at::Tensor read(const std::string& key, at::IntArrayRef shape, int64_t offset, int64_t count) const;
  at::Tensor read_whole(const std::string& key) const;  // with its full shape
  StateReader reader() const;

 private:
  struct Piece {
    size_t file = 0;
    const st::TensorInfo* info = nullptr;
    int64_t offset = 0, length = 0;
  };
  void open_format2();
  void read_state();
  void open_format1();
  void index_file(const std::string& name, bool format1_weights);

  std::string dir_;
  int format_ = 2;
  Manifest manifest_;
  nlohmann::json trainer_state_;
  TrainerState state_;
  std::vector<std::unique_ptr<st::SafetensorsFile>> files_;
  std::map<std::string, std::vector<Piece>> pieces_;  // by key, sorted by offset
};

// The files of `dir`'s manifest that `rank` verifies (every world-th, from `rank`), checked for size
// and checksum without opening them as tensors (so a truncated file is reported as such); returns
// the problems found, each naming its file. Format 1 has no checksums: nothing to check.
// *unreadable is set when a problem is a system error (a file that could not be read), not a
// difference from the manifest.
std::vector<std::string> verify_files(const std::string& dir, int rank, int world, bool* unreadable = nullptr);

// Whether `dir` holds a complete checkpoint of either format (its completion mark exists).
bool is_complete_checkpoint(const std::string& dir);

}  // namespace ropex
