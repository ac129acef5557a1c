// Deterministic, rank-sharded training batches. See loader.h.
#include "data/loader.h"

#include "trainer/log.h"

#include <stdexcept>

namespace ropex {

Loader::Loader(std::shared_ptr<const TokenStore> store, SamplerOptions sampler, LoaderOptions opts)
    : store_(std::move(store)), sampler_(make_sampler(sampler)), opts_(opts) {
  const int64_t n = static_cast<int64_t>(store_->num_documents());
  const int64_t holdout = std::min<int64_t>(opts_.holdout_docs, n / 2);
  const int64_t need = sampler_->min_doc_len();
  for (int64_t d = 0; d < n - holdout; ++d) {
    if (store_->doc_len(d) >= need) docs_.push_back(static_cast<size_t>(d));
    else ++skipped_;
  }
  for (int64_t d = n - holdout; d < n; ++d) holdout_.push_back(static_cast<size_t>(d));
  if (skipped_ > 0 && sampler.short_docs == "error")
    throw std::runtime_error(store_->dir() + ": " + std::to_string(skipped_) + " documents are shorter than the " +
                             std::to_string(need) + " tokens sampler '" + sampler.name +
                             "' needs (sampler.short_docs = error; set it to skip to leave them out)");
  if (docs_.empty())
    throw std::runtime_error(store_->dir() + ": no document has the " + std::to_string(need) + " tokens sampler '" +
                             sampler.name + "' needs (longest: see `ropex prepare` statistics)");
}

size_t Loader::doc_for(uint64_t example, uint64_t* epoch) {
  const uint64_t d = docs_.size();
  *epoch = example / d;
  if (*epoch != perm_epoch_) {  // Fisher-Yates with our own RNG: identical on every machine
    perm_.resize(d);
    for (uint64_t i = 0; i < d; ++i) perm_[i] = i;
    Rng rng(opts_.seed * 0x9E3779B97F4A7C15ULL + *epoch + 1);
    for (uint64_t i = d - 1; i > 0; --i) std::swap(perm_[i], perm_[static_cast<uint64_t>(rng.uniform_int(0, static_cast<int64_t>(i)))]);
    perm_epoch_ = *epoch;
  }
  return docs_[perm_[example % d]];
}

Batch Loader::micro_batch(int64_t step, int64_t micro) {
  const int64_t B = opts_.micro_batch, N = sampler_->options().train_len;
  std::vector<int64_t> ids(B * N), pos(B * N);
  std::vector<int32_t> buf;
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t g = static_cast<uint64_t>(step * examples_per_step() + (micro * opts_.world + opts_.rank) * B + b);
    uint64_t epoch = 0;
    const size_t doc = doc_for(g, &epoch);
    Rng rng = example_rng(opts_.seed, g, epoch, sampler_->options());
    PositionPlan plan = sampler_->sample(store_->doc_len(doc), rng);
    // Read the planned tokens run by run (runs of consecutive document indices).
    for (int64_t k = 0; k < N;) {
      int64_t run = 1;
      while (k + run < N && plan.token_index[k + run] == plan.token_index[k] + run) ++run;
      buf.resize(run);
      store_->read(doc, plan.token_index[k], run, buf.data());
      for (int64_t j = 0; j < run; ++j) {
        ids[b * N + k + j] = buf[j];
        pos[b * N + k + j] = plan.position_id[k + j];
      }
      k += run;
    }
  }
  Batch out;
  out.input_ids = at::tensor(ids, at::kLong).view({B, N});
  out.position_ids = at::tensor(pos, at::kLong).view({B, N});
  out.labels = out.input_ids;
  out.valid_labels = B * (N - 1);
  return out;
}

std::vector<Batch> Loader::eval_batches(int64_t N) const {
  std::vector<Batch> out;
  for (size_t doc : holdout_) {
    const int64_t len = std::min(store_->doc_len(doc), N);
    if (len < 2) continue;
    std::vector<int32_t> buf(len);
    store_->read(doc, 0, len, buf.data());
    Batch b;
    b.input_ids = at::tensor(std::vector<int64_t>(buf.begin(), buf.end()), at::kLong).view({1, len});
    b.position_ids = at::arange(len, at::kLong).view({1, len});
    b.labels = b.input_ids;
    b.valid_labels = len - 1;
    out.push_back(b);
  }
  return out;
}

nlohmann::json Loader::state() const { return {{"sampler", sampler_->state()}, {"skipped_docs", skipped_}}; }

void Loader::load_state(const nlohmann::json& s) {
  if (!s.is_object() || !s.contains("sampler")) throw std::runtime_error("loader state: missing 'sampler'");
  sampler_->load_state(s["sampler"]);
}

}  // namespace ropex
