// Training batches from a token store: documents in a seeded shuffled order per epoch, sharded
// over ranks, each turned into a window of N tokens with target-length position ids by a
// PositionSampler. Every example is a pure function of (seed, global example index): the example
// at global index g is document perm_epoch[g mod D] of epoch g / D, its plan drawn with
// example_rng(seed, g, epoch). So the loader's position is just the optimizer step; the only
// state to save is the sampler's own (CREAM's per-block coin counter) and its skip counts.
//
// Global example index of row b of micro-batch m of rank r at step s:
//   g = s * G + (m * world + r) * B + b, with B = micro-batch size, G = B * accum * world.
// One rank with B = 2 therefore sees exactly the examples that two ranks with B = 1 see.
#pragma once
#include "data/positions.h"
#include "data/token_store.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace ropex {

struct Batch {
  at::Tensor input_ids;     // [B, N] int64
  at::Tensor position_ids;  // [B, N] int64, < target_len
  at::Tensor labels;        // [B, N] int64 (= input_ids; the loss shifts; -100 would mask)
  int64_t valid_labels = 0; // labels that count in the loss after the shift
};

struct LoaderOptions {
  uint64_t seed = 0;
  int rank = 0, world = 1;
  int64_t micro_batch = 1, grad_accum = 1;
  int64_t holdout_docs = 0;  // the store's last documents, kept out of training for evaluation
};

class Loader {
 public:
  Loader(std::shared_ptr<const TokenStore> store, SamplerOptions sampler, LoaderOptions opts);
  Batch micro_batch(int64_t step, int64_t micro);
  // Held-out batch i: the first N tokens of held-out documents, contiguous positions.
  std::vector<Batch> eval_batches(int64_t train_len) const;

  int64_t train_docs() const { return static_cast<int64_t>(docs_.size()); }
  int64_t skipped_docs() const { return skipped_; }
  int64_t examples_per_step() const { return opts_.micro_batch * opts_.grad_accum * opts_.world; }
  nlohmann::json state() const;
  void load_state(const nlohmann::json& s);
  const SamplerOptions& sampler_options() const { return sampler_->options(); }

 private:
  size_t doc_for(uint64_t example, uint64_t* epoch);
  std::shared_ptr<const TokenStore> store_;
  std::unique_ptr<PositionSampler> sampler_;
  LoaderOptions opts_;
  std::vector<size_t> docs_;        // eligible training documents
  std::vector<size_t> holdout_;     // evaluation documents
  std::vector<size_t> perm_;        // order of docs_ in perm_epoch_
  uint64_t perm_epoch_ = UINT64_MAX;
  int64_t skipped_ = 0;
};

}  // namespace ropex
