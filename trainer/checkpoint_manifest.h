// manifest.json of a training checkpoint (format 2): what it records, written and read back.
//
// The manifest is a checkpoint's completion mark and its table of contents: the step and world
// size, every state tensor's full shape, every other file with its size and xxh3-64
// (trainer/checkpoint_format.h shows the folder). Reading validates it as untrusted input: types,
// ranges (shapes of at most 2^42 elements, ranks and steps as trainer/checkpoint_state.h bounds
// them), plain file names listed once, and the files every checkpoint of that world size
// must have. No LibTorch and no file IO (the caller reads the file through data/input/json.h), so
// the parser is fuzzed on its own (tests/fuzz/fuzz_checkpoint_manifest.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/checkpoint_io.h"

namespace ropex {

std::string shard_file_name(int rank, int world);  // shard-00000-of-00002.safetensors
std::string rank_state_file(int rank);              // rank_0.json

struct Manifest {
  int64_t step = 0;
  int world = 1;
  std::map<std::string, std::vector<int64_t>> tensors;  // state key -> full shape
  std::vector<FileRecord> files;                        // every file but the manifest
};
nlohmann::json manifest_to_json(const Manifest& m);
// Validated (untrusted input): throws naming the file and the key. Besides the types, a manifest
// must list state tensors and the files every checkpoint has (trainer_state.json, config.json,
// run_config.json, and rank_R.json and the shard of every rank R < world_size), each once.
Manifest manifest_from_json(const nlohmann::json& j, const std::string& path);

}  // namespace ropex
