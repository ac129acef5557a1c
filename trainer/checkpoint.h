// Training checkpoints: saved by every rank in parallel (no gather), committed atomically, verified,
// found (falling back past a corrupt one), loaded at any world size and ZeRO stage, pruned, exported.
// The files are described in trainer/checkpoint_format.h.
//
// Saving (CheckpointWriter::save, collective):
//   1. every rank learns the total size; each checks the free space (a shortfall fails on all ranks);
//   2. rank 0 creates checkpoints/.step_00000100.partial; every rank writes its own shard and loader
//      state into it, rank 0 also the small files, each fsynced, checksums computed while writing;
//      synchronously from the live state (one piece at a time through the host), or with
//      checkpoint.async from a host snapshot of the rank's pieces by a background thread while
//      training goes on (at most one save in flight);
//   3. commit: the ranks exchange their files' records (or their errors); if every rank succeeded,
//      rank 0 writes manifest.json, fsyncs the folder, renames it to step_00000100, fsyncs the
//      parent and prunes; if any failed, the partial folder is removed and every rank throws the
//      first error (naming the path). A crash at any moment leaves the previous checkpoints intact.
// Extra host memory: a synchronous save holds one piece (at most one tensor) on the host at a time
// (none on CPU, where pieces are written from the state itself); an async save holds a host copy of
// this rank's share of the state until it is written.
//
// Test hooks (ROPEX_FAULT_INJECT): kill-in-checkpoint:STEP (SIGKILL on rank 0 after the shards are
// written, before the commit), slow-writer:MS (each save's writing takes MS ms longer), storage
// faults (trainer/checkpoint_io.h).
#pragma once
#include "data/loader.h"
#include "models/hf_checkpoint.h"
#include "models/llama.h"
#include "trainer/checkpoint_format.h"
#include "trainer/checkpoint_state.h"
#include "trainer/distributed.h"
#include "trainer/zero.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace ropex {

// TrainerState: trainer/checkpoint_state.h

std::string checkpoint_name(int64_t step);  // step_00000100

struct CheckpointOptions {
  std::string run_dir;
  int64_t keep_last = 1;
  bool async = false;
  nlohmann::json model_config;  // config.json
  nlohmann::json run_config;    // run_config.json
  std::string tokenizer_file;  // tokenizer.json or .model, copied with its companions (tokenizer_config.h) when it exists
};

class CheckpointWriter {
 public:
  CheckpointWriter(Distributed& dist, CheckpointOptions opts);
  ~CheckpointWriter();  // joins a write in flight (its checkpoint is not committed)
  // Collective. Saves the optimizer's state as it is now, the loader state and `state`. A save
  // still in flight is finished and committed first. Synchronous: returns once committed.
  void save(const DataParallelOptimizer& opt, const Loader& loader, const TrainerState& state);
  // No communication: whether this rank has no write in flight (its part is written, or failed).
  bool idle() const;
  // Collective: commits the save in flight if `all_idle` (every rank's idle(), agreed by the caller).
  void commit_if_all_written(bool all_idle);
  // Collective: waits for the save in flight, then commits it.
  void finish();
  std::string last_committed() const { return last_; }  // folder of the newest committed save

 private:
  struct InFlight;
  void snapshot(InFlight& f);
  void commit();
  void prune(int64_t committed_step);
  Distributed& dist_;
  CheckpointOptions opts_;
  std::unique_ptr<InFlight> flight_;
  std::string last_;
};

// Removes what an interrupted save left in RUN/checkpoints (a .partial folder; a .old copy is put
// back if its checkpoint was not yet replaced). Rank 0 only, before any save.
void clean_interrupted_saves(const std::string& run_dir);

// Complete checkpoints under RUN/checkpoints (either format), oldest first.
std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& run_dir);
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// One process, no communication: the problems of a checkpoint folder (unreadable manifest,
// pieces that do not cover the state, files of the wrong size or checksum), each naming its file;
// empty when it is sound. Reads every file once.
std::vector<std::string> verify_checkpoint(const std::string& dir);

// Collective. The checkpoint to resume from, verified (every rank checks every world-th file's
// checksum): for checkpoint.resume = "auto" the newest that passes, each one that fails being
// reported and renamed step_XXXXXXXX.corrupt (kept, never loaded or counted again); "" when the
// run has none; an error when every one fails. For an explicit path: that one, or an error naming
// the failing file.
std::string choose_resume(Distributed& dist, const std::string& run_dir, const std::string& resume);

// Collective. Loads weights, optimizer (this rank's share only) and loader state; refuses (with the
// reason) a checkpoint of another model shape or rope scaling, or another global batch. A change of
// world size is allowed when the global batch (micro_batch x grad_accum x world) is unchanged and
// the sampler's state does not depend on the rank (not CREAM per_block).
TrainerState load_checkpoint(const std::string& dir, Distributed& dist, LlamaForCausalLM& model, DataParallelOptimizer& opt,
                             Loader& loader, int64_t global_batch);

// An HF directory from a checkpoint of either format, tensor by tensor (one tensor in memory at a
// time): weights in `dtype`, sharded at max_shard_bytes, config.json with the trained rope scaling in
// a form transformers loads (ntk -> default with the stretched theta; dynamic-yarn -> yarn at its
// trained factor), the tokenizer.
void export_checkpoint(const std::string& checkpoint_dir, const std::string& out_dir, uint64_t max_shard_bytes,
                       at::ScalarType dtype);

// A model from an HF directory, or from a training checkpoint folder (its master weights, one tensor
// read at a time), in opts' dtype and device: what eval and score load.
LlamaForCausalLM load_model_or_checkpoint(const std::string& dir, const LoadOptions& opts);

// The rope scaling as transformers can load it (see export_checkpoint).
LlamaConfig hf_loadable(LlamaConfig cfg);

}  // namespace ropex
