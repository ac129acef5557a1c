// Position-index samplers (spec: shared/spec/position_methods.md, section 3).
//
// A sampler turns one document of doc_len tokens into a PositionPlan of exactly
// train_len (N) entries: token_index[k] is the document token placed at window
// slot k, position_id[k] its RoPE position in [0, target_len) (L). Both vectors
// are strictly increasing. Samplers:
//   contiguous  token_index = position_id = [0, N)          (PI / YaRN training)
//   randpos     N distinct ids uniform from [0, L), sorted; the first N tokens
//   pose        PoSE v2: 2 chunks (or k), official draws
//   cream       CREAM: head / Gaussian-scaled middle / tail, official draws
// Also: the options struct with strict JSON (de)serialisation, CREAM and PoSE
// building blocks (exposed so tests can check each random draw), and a coverage
// summary of which ids and relative distances a set of plans exercises.
//
// It does NOT touch tensors, tokens, files or RoPE frequencies (positions are
// data; frequencies are config), and it does not decide when plans are drawn
// (once per example or every epoch): the loader calls sample() when it wants one.
// All randomness comes from the caller's ropex::Rng; a sampler's own state (the
// CREAM block counter, skipped documents) is saved by state()/load_state().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/rng.h"

namespace ropex {

struct PositionPlan {
  std::vector<int64_t> token_index;  // [N] indices into the document, strictly increasing
  std::vector<int64_t> position_id;  // [N] RoPE positions in [0, L), strictly increasing
  bool operator==(const PositionPlan&) const = default;
};

struct SamplerOptions {            // all validated by make_sampler
  std::string name = "contiguous";  // contiguous | randpos | pose | cream
  int64_t train_len = 0;   // N: tokens in a training window
  int64_t target_len = 0;  // L: the target context (ids < L). contiguous: 0 means N; else >= N
  // pose
  int64_t pose_chunks = 2;  // k in [2, N]; 2 = official PoSE v2, k > 2 = our generalisation
  // cream
  std::string cream_mode = "per_block";  // per_block (official: one fair coin per block) |
                                         // per_sample (continuity with prob p) | continuity | relativity
  int64_t cream_block_size = 3000;       // examples per coin in per_block (official map batch size)
  double cream_continuity_prob = 0.5;    // p for per_sample
  double cream_sigma = 3.0;              // in units of half-windows, not scaled with f
  // Mean of the Gaussian over r = 2s. -1 (default) = 1 + f, the centre of the table's range
  // [2, 2f], as ../shared/spec/position_methods.md writes it. The official code hard-codes 9,
  // which is the same number at the paper's f = 8 (4K -> 32K) but at other f piles the mass
  // onto one end of the range; set cream_mu = 9 to reproduce it literally.
  double cream_mu = -1.0;
  int64_t cream_continuity_len = -1;  // head/tail length k in continuity mode; -1 = official 4*f
  int64_t cream_table_points = 1000;  // points of the tabulated CDF on [2, 2f]
  std::string short_docs = "skip";    // doc_len < min_doc_len in sample_or_skip(): skip (counted) | error
  // When plans are drawn: "once" per example (the official code samples at preprocessing, so an
  // example keeps its plan every epoch) or "per_epoch" (a fresh plan each time it is seen).
  // Implemented by example_rng() below, which the loader uses for every plan.
  std::string resample = "once";
};

// The RNG for one example's plan, a pure function of (seed, example index, epoch): plans need no
// saved RNG state and do not depend on which rank draws them. With resample = "once" the epoch is
// ignored. (splitmix64 mixing of the three numbers seeds the mt19937_64.)
Rng example_rng(uint64_t seed, uint64_t example, uint64_t epoch, const SamplerOptions& options);

class PositionSampler {
 public:
  explicit PositionSampler(SamplerOptions options) : options_(std::move(options)) {}
  virtual ~PositionSampler() = default;

  // Shortest document sample() accepts (N for every sampler here).
  virtual int64_t min_doc_len() const = 0;

  // Plan of exactly train_len entries for a document of doc_len tokens. Throws
  // std::invalid_argument naming both lengths if doc_len < min_doc_len().
  virtual PositionPlan sample(int64_t doc_len, Rng& rng) = 0;

  // The loader's entry point: applies options().short_docs to short documents.
  // "skip": returns nullopt, draws nothing, and counts the document in
  // skipped_short_docs() (saved in state()); "error": throws like sample().
  std::optional<PositionPlan> sample_or_skip(int64_t doc_len, Rng& rng);
  int64_t skipped_short_docs() const { return skipped_short_docs_; }

  // The random choices behind the last plan (CREAM: mode, r, scale, middle end;
  // PoSE: chunk lengths and skips), for `ropex inspect positions` and tests;
  // null before the first sample and for samplers with nothing to report.
  virtual nlohmann::json last_draw() const { return nullptr; }

  // {"name": ..., "skipped_short_docs": ...} plus per-sampler fields (CREAM:
  // examples drawn and the current block's mode). load_state throws
  // std::invalid_argument on a state written by another sampler or malformed.
  virtual nlohmann::json state() const;
  virtual void load_state(const nlohmann::json& state);

  const SamplerOptions& options() const { return options_; }

 protected:
  void check_doc_len(int64_t doc_len) const;  // throws if doc_len < min_doc_len()

 private:
  SamplerOptions options_;
  int64_t skipped_short_docs_ = 0;
};

// Validates (std::invalid_argument naming the key, its value and what is allowed)
// and builds the sampler.
std::unique_ptr<PositionSampler> make_sampler(const SamplerOptions& options);

// Strict: obj must be an object; an unknown key is an error naming it and the
// nearest valid key; a wrong type names the expected type. `context` (e.g.
// "data.sampler") prefixes every message. Keys absent from obj keep their defaults.
// Does not validate values (make_sampler does).
SamplerOptions sampler_options_from_json(const nlohmann::json& obj, const std::string& context);
nlohmann::json sampler_options_to_json(const SamplerOptions& options);

// ---------------------------------------------------------------------------
// CREAM building blocks (the sampler composes them: mode -> r -> middle end -> plan).

enum class CreamMode { relativity, continuity };
const char* cream_mode_name(CreamMode mode);

// The official inverse-CDF table: x = numpy.linspace(2, 2f, points), cdf = the
// normal CDF of x with mean mu and std sigma. invert(u) interpolates u linearly
// in (cdf -> x) like numpy.interp (u below cdf[0] gives 2, above cdf.back() gives
// 2f: the tails pile onto the ends, no renormalisation) and truncates toward zero:
// r in {2, ..., 2f}; the scale is s = r / 2 window lengths.
class CreamScaleTable {
 public:
  CreamScaleTable(int64_t factor, double mu, double sigma, int64_t points);
  int64_t invert(double u) const;
  int64_t draw_r(Rng& rng) const { return invert(rng.uniform()); }
  int64_t factor() const { return factor_; }

 private:
  int64_t factor_;
  std::vector<double> x_;    // [points]
  std::vector<double> cdf_;  // [points], non-decreasing
};

struct CreamLayout {
  int64_t head = 0, middle = 0, tail = 0;  // h + c + t = N
};
// relativity: h = t = floor(N/3); continuity: h = t = continuity_len.
CreamLayout cream_layout(CreamMode mode, int64_t train_len, int64_t continuity_len);

// Inclusive range of the middle segment's last position id for scale r:
// [floor(h + (c-1) * r/2), floor(r * N / 2) - t - 1].
std::pair<int64_t, int64_t> cream_middle_end_range(const CreamLayout& layout, int64_t train_len, int64_t r);

// Deterministic plan from the draws. Positions: head 0..h-1, middle
// end-c+1..end, tail L-t..L-1. Tokens: head = first h, tail = last t, middle =
// the tokens at the middle's position ids when they end before the tail's tokens
// (end < doc_len - t), else the c tokens just before the tail.
PositionPlan cream_build_plan(const CreamLayout& layout, int64_t target_len, int64_t middle_end,
                              int64_t doc_len);

// ---------------------------------------------------------------------------
// PoSE building blocks.

// Upper bound of the text a PoSE chunk may come from: the official code
// truncates documents to 5 * N tokens.
inline constexpr int64_t kPoseTextWindows = 5;

struct PoseDraw {
  std::vector<int64_t> chunk_len;      // [k] lengths, each >= 1, summing to N
  std::vector<int64_t> text_skip;      // [k] non-decreasing, text_skip[0] = 0
  std::vector<int64_t> position_skip;  // [k] non-decreasing, position_skip[0] = 0
};
// k = 2 (official v2, in this draw order): l1 ~ U{1..floor((N+1)/2)}; text end
// ~ U{N..min(doc_len, 5N)} (text_skip[1] = end - N); skip u ~ U{0..L-N}.
// k > 2 (ours): the k-1 cut points are distinct and uniform on {1..N-1}; the k-1
// text skips and k-1 position skips are i.i.d. uniform on the same ranges as
// k = 2, sorted (so non-decreasing). The first chunk always starts at token 0
// and position 0, as in the official code.
PoseDraw pose_draw(Rng& rng, int64_t train_len, int64_t target_len, int64_t doc_len, int64_t chunks);
// Chunk j covers window slots [a, a + len_j): tokens a + text_skip[j] ...,
// positions a + position_skip[j] ...
PositionPlan pose_build_plan(const PoseDraw& draw);

// count distinct integers uniform from [lo, hi], sorted ascending (Floyd's
// algorithm: exactly `count` uniform_int draws).
std::vector<int64_t> sample_distinct_sorted(Rng& rng, int64_t count, int64_t lo, int64_t hi);

// ---------------------------------------------------------------------------
// Coverage summary for `ropex inspect positions`.
//
// Relative distances are counted over ALL pairs i < j of each plan, exactly, in
// O(N * B) per plan (B = number of bin edges): because position ids are sorted,
// the number of pairs with p_j - p_i < d is a two-pointer sweep, and a bin's
// count is the difference at its two edges. No sampling, no O(N^2).
struct CoverageSummary {
  static constexpr int kBins = 16;
  int64_t target_len = 0;    // L; fixed by the first plan accumulated
  int64_t plans = 0;
  int64_t position_ids = 0;  // total ids seen (= plans * N)
  int64_t pairs = 0;         // total pairs i < j seen
  // ids by region: bin b holds ids p with floor(p * 16 / L) = b
  std::array<int64_t, kBins> position_bins{};
  // pairs by distance d = p_j - p_i in 16 equal bins of [0, L): floor(d * 16 / L)
  std::array<int64_t, kBins> distance_bins{};
  // pairs by log2 distance: bin b holds 2^b <= d < 2^(b+1); size = bit width of L - 1
  std::vector<int64_t> distance_log2_bins;
};
// Throws std::invalid_argument if the plan is not strictly increasing, leaves
// [0, target_len), or target_len differs from earlier plans'.
void accumulate_coverage(CoverageSummary& summary, const PositionPlan& plan, int64_t target_len);
nlohmann::json coverage_to_json(const CoverageSummary& summary);
std::string coverage_to_text(const CoverageSummary& summary);

}  // namespace ropex
