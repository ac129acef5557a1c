// Position-index samplers: option validation, the four samplers, the CREAM and
// PoSE building blocks, strict JSON options and the coverage summary (contract in
// positions.h). Ported in our own words from the official code, read at
//   CREAM: github.com/wutong4012/CREAM  src/train.py  CREAM()
//   PoSE:  github.com/dwzhu-pku/PoSE    src/train_pose.py  train_preprocess_function_pose()
// Where that code and shared/spec/position_methods.md differ we follow the code,
// and say so next to the line (search for "Official:").
#include "data/positions.h"

#include "data/text_match.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace ropex {
namespace {

// --------------------------------------------------------------------------
// Small helpers

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

std::vector<int64_t> iota_vector(int64_t begin, int64_t count) {
  std::vector<int64_t> v(static_cast<size_t>(count));
  std::iota(v.begin(), v.end(), begin);
  return v;
}

void append_range(std::vector<int64_t>& v, int64_t begin, int64_t count) {
  for (int64_t i = 0; i < count; ++i) v.push_back(begin + i);
}

const std::vector<std::string> kSamplerNames = {"contiguous", "randpos", "pose", "cream"};
const std::vector<std::string> kCreamModes = {"per_block", "per_sample", "continuity", "relativity"};
const std::vector<std::string> kShortDocs = {"skip", "error"};
const std::vector<std::string> kResample = {"once", "per_epoch"};

bool is_one_of(const std::string& value, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

void require_one_of(const std::string& key, const std::string& value, const std::vector<std::string>& allowed) {
  if (!is_one_of(value, allowed)) {
    fail("sampler option " + quoted(key) + " = \"" + value + "\" is not allowed; allowed values: " + join(allowed));
  }
}

// "sampler option 'key' = value must ..." with the value printed.
[[noreturn]] void fail_value(const std::string& key, const std::string& value, const std::string& must) {
  fail("sampler option " + quoted(key) + " = " + value + " " + must);
}
std::string str(int64_t v) { return std::to_string(v); }
std::string str(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// --------------------------------------------------------------------------
// Validation (make_sampler)

int64_t cream_factor(const SamplerOptions& o) { return o.target_len / o.train_len; }

int64_t cream_continuity_len(const SamplerOptions& o) {
  // Official: head_len = tail_len = 4 * factor in the continuity branch.
  return o.cream_continuity_len == -1 ? 4 * cream_factor(o) : o.cream_continuity_len;
}

double cream_mu(const SamplerOptions& o) {
  // Official: `mu, sigma = 9, 3` for every factor. The spec's mu = 1 + f (our default, -1)
  // agrees at f = 8; see SamplerOptions::cream_mu.
  return o.cream_mu == -1.0 ? 1.0 + static_cast<double>(cream_factor(o)) : o.cream_mu;
}

void validate_target_above_train(const SamplerOptions& o) {
  if (o.target_len <= o.train_len) {
    fail("sampler option 'target_len' = " + str(o.target_len) + " must be greater than 'train_len' = " +
         str(o.train_len) + " for sampler '" + o.name + "' (target_len is the context L to reach, " +
         "train_len the training window N)");
  }
}

void validate_contiguous(const SamplerOptions& o) {
  if (o.target_len != 0 && o.target_len < o.train_len) {
    fail_value("target_len", str(o.target_len),
               "must be 0 (= train_len) or at least 'train_len' = " + str(o.train_len) +
                   " for sampler 'contiguous' (position ids run 0 .. train_len-1)");
  }
}

void validate_pose(const SamplerOptions& o) {
  validate_target_above_train(o);
  if (o.pose_chunks < 2 || o.pose_chunks > o.train_len) {
    fail_value("pose_chunks", str(o.pose_chunks),
               "must be in [2, train_len = " + str(o.train_len) + "] (each chunk holds at least one token)");
  }
}

// Every mode the configured mode choice can produce must leave h, c, t >= 1, so
// that the first id is 0, the last is L-1 and the middle is not empty.
void validate_cream_room(const SamplerOptions& o) {
  const std::string& m = o.cream_mode;
  const double p = o.cream_continuity_prob;
  const bool uses_relativity = m == "relativity" || m == "per_block" || (m == "per_sample" && p < 1);
  const bool uses_continuity = m == "continuity" || m == "per_block" || (m == "per_sample" && p > 0);
  if (uses_relativity && o.train_len < 3) {
    fail_value("train_len", str(o.train_len),
               "is too small for cream's relativity mode (cream_mode = " + m +
                   "): head = tail = floor(N/3) must be >= 1, so train_len must be >= 3");
  }
  const int64_t k = cream_continuity_len(o);
  if (uses_continuity && o.train_len < 2 * k + 1) {
    fail_value("train_len", str(o.train_len),
               "is too small for cream's continuity mode (cream_mode = " + m + "): head = tail = k = " + str(k) +
                   (o.cream_continuity_len == -1 ? " (4*f, f = " + str(cream_factor(o)) + ")" : "") +
                   " need train_len >= 2k+1 = " + str(2 * k + 1) +
                   "; lower 'cream_continuity_len' or use cream_mode = relativity");
  }
}

void validate_cream(const SamplerOptions& o) {
  validate_target_above_train(o);
  // Official: factor = L // N and the tail ends at factor * N, so L must be a
  // whole number of windows; we refuse other L rather than silently shorten it.
  if (o.target_len % o.train_len != 0) {
    fail("sampler option 'target_len' = " + str(o.target_len) + " must be a multiple of 'train_len' = " +
         str(o.train_len) + " for sampler 'cream' (the scale table spans [2, 2f] with f = L/N an integer >= 2)");
  }
  require_one_of("cream_mode", o.cream_mode, kCreamModes);
  if (o.cream_block_size < 1) fail_value("cream_block_size", str(o.cream_block_size), "must be >= 1");
  if (!(o.cream_continuity_prob >= 0 && o.cream_continuity_prob <= 1)) {
    fail_value("cream_continuity_prob", str(o.cream_continuity_prob), "must be a probability in [0, 1]");
  }
  if (!(o.cream_sigma > 0) || !std::isfinite(o.cream_sigma)) {
    fail_value("cream_sigma", str(o.cream_sigma), "must be a finite number > 0");
  }
  if (o.cream_mu != -1.0 && (!(o.cream_mu > 0) || !std::isfinite(o.cream_mu))) {
    fail_value("cream_mu", str(o.cream_mu), "must be a finite number > 0, or -1 for 1 + f");
  }
  if (o.cream_continuity_len != -1 && o.cream_continuity_len < 1) {
    fail_value("cream_continuity_len", str(o.cream_continuity_len), "must be >= 1, or -1 for the official 4*f");
  }
  if (o.cream_table_points < 2) fail_value("cream_table_points", str(o.cream_table_points), "must be >= 2");
  validate_cream_room(o);
}

void validate(const SamplerOptions& o) {
  require_one_of("name", o.name, kSamplerNames);
  require_one_of("short_docs", o.short_docs, kShortDocs);
  require_one_of("resample", o.resample, kResample);
  if (o.train_len < 1) fail_value("train_len", str(o.train_len), "must be >= 1 (tokens in a training window)");
  if (o.name == "contiguous") validate_contiguous(o);
  if (o.name == "randpos") validate_target_above_train(o);
  if (o.name == "pose") validate_pose(o);
  if (o.name == "cream") validate_cream(o);
}

// --------------------------------------------------------------------------
// The samplers

class ContiguousSampler final : public PositionSampler {
 public:
  using PositionSampler::PositionSampler;
  int64_t min_doc_len() const override { return options().train_len; }
  PositionPlan sample(int64_t doc_len, Rng&) override {
    check_doc_len(doc_len);
    const auto ids = iota_vector(0, options().train_len);
    return {ids, ids};
  }
};

class RandPosSampler final : public PositionSampler {
 public:
  using PositionSampler::PositionSampler;
  int64_t min_doc_len() const override { return options().train_len; }
  PositionPlan sample(int64_t doc_len, Rng& rng) override {
    check_doc_len(doc_len);
    const SamplerOptions& o = options();
    // Official (both repos): random.sample(range(L), n) sorted; tokens are the
    // document's first n (truncation). We require n = N tokens.
    return {iota_vector(0, o.train_len), sample_distinct_sorted(rng, o.train_len, 0, o.target_len - 1)};
  }
};

class PoseSampler final : public PositionSampler {
 public:
  using PositionSampler::PositionSampler;
  // Official: w = min(len, N) lets shorter documents through with a shorter
  // window; our plans always have N entries, so documents need N tokens.
  int64_t min_doc_len() const override { return options().train_len; }
  PositionPlan sample(int64_t doc_len, Rng& rng) override {
    check_doc_len(doc_len);
    const SamplerOptions& o = options();
    last_ = pose_draw(rng, o.train_len, o.target_len, doc_len, o.pose_chunks);
    return pose_build_plan(last_);
  }
  nlohmann::json last_draw() const override {
    if (last_.chunk_len.empty()) return nullptr;
    return {{"chunk_len", last_.chunk_len}, {"text_skip", last_.text_skip}, {"position_skip", last_.position_skip}};
  }

 private:
  PoseDraw last_;
};

CreamMode parse_cream_mode(const std::string& name) {
  if (name == "relativity") return CreamMode::relativity;
  if (name == "continuity") return CreamMode::continuity;
  fail("cream sampler state: block_mode \"" + name + "\" is not relativity or continuity");
}

class CreamSampler final : public PositionSampler {
 public:
  explicit CreamSampler(const SamplerOptions& o)
      : PositionSampler(o),
        table_(cream_factor(o), cream_mu(o), o.cream_sigma, o.cream_table_points),
        continuity_len_(cream_continuity_len(o)) {}

  int64_t min_doc_len() const override { return options().train_len; }

  PositionPlan sample(int64_t doc_len, Rng& rng) override {
    check_doc_len(doc_len);
    const SamplerOptions& o = options();
    const CreamMode mode = choose_mode(rng);
    const CreamLayout layout = cream_layout(mode, o.train_len, continuity_len_);
    // Official order: the scale's uniform first (numpy), then the end (random).
    const int64_t r = table_.draw_r(rng);
    const auto [lo, hi] = cream_middle_end_range(layout, o.train_len, r);
    const int64_t end = rng.uniform_int(lo, hi);
    ++examples_;
    last_ = nlohmann::json{{"mode", cream_mode_name(mode)}, {"r", r}, {"scale", static_cast<double>(r) / 2.0},
                           {"middle_end", end}, {"head", layout.head}, {"middle", layout.middle},
                           {"tail", layout.tail}};
    return cream_build_plan(layout, o.target_len, end, doc_len);
  }

  nlohmann::json last_draw() const override { return last_; }

  nlohmann::json state() const override {
    nlohmann::json s = PositionSampler::state();
    s["examples"] = examples_;
    s["block_mode"] = block_mode_ ? nlohmann::json(cream_mode_name(*block_mode_)) : nlohmann::json(nullptr);
    return s;
  }

  void load_state(const nlohmann::json& s) override {
    PositionSampler::load_state(s);
    if (!s.contains("examples") || !s["examples"].is_number_integer() || s["examples"].get<int64_t>() < 0) {
      fail("cream sampler state: 'examples' must be a non-negative integer");
    }
    if (!s.contains("block_mode") || !(s["block_mode"].is_null() || s["block_mode"].is_string())) {
      fail("cream sampler state: 'block_mode' must be null or \"relativity\"/\"continuity\"");
    }
    examples_ = s["examples"].get<int64_t>();
    block_mode_.reset();
    if (s["block_mode"].is_string()) block_mode_ = parse_cream_mode(s["block_mode"].get<std::string>());
    const bool mid_block = examples_ % options().cream_block_size != 0;
    if (options().cream_mode == "per_block" && mid_block && !block_mode_) {
      fail("cream sampler state: 'examples' = " + str(examples_) + " is inside a block but 'block_mode' is null");
    }
  }

 private:
  CreamMode choose_mode(Rng& rng) {
    const SamplerOptions& o = options();
    if (o.cream_mode == "relativity") return CreamMode::relativity;
    if (o.cream_mode == "continuity") return CreamMode::continuity;
    if (o.cream_mode == "per_sample") {
      return rng.uniform() < o.cream_continuity_prob ? CreamMode::continuity : CreamMode::relativity;
    }
    // per_block. Official: one `random.randint(0, 1)` per datasets.map batch of
    // 3000 examples (0 = relativity, 1 = continuity), drawn before the batch.
    if (examples_ % o.cream_block_size == 0) {
      block_mode_ = rng.uniform_int(0, 1) == 1 ? CreamMode::continuity : CreamMode::relativity;
    }
    return *block_mode_;
  }

  CreamScaleTable table_;
  int64_t continuity_len_;
  int64_t examples_ = 0;
  std::optional<CreamMode> block_mode_;
  nlohmann::json last_ = nullptr;
};

// --------------------------------------------------------------------------
// Strict JSON options

struct OptionField {
  const char* key;
  std::string SamplerOptions::*text = nullptr;
  int64_t SamplerOptions::*integer = nullptr;
  double SamplerOptions::*number = nullptr;
};

const OptionField kOptionFields[] = {
    {.key = "name", .text = &SamplerOptions::name},
    {.key = "train_len", .integer = &SamplerOptions::train_len},
    {.key = "target_len", .integer = &SamplerOptions::target_len},
    {.key = "pose_chunks", .integer = &SamplerOptions::pose_chunks},
    {.key = "cream_mode", .text = &SamplerOptions::cream_mode},
    {.key = "cream_block_size", .integer = &SamplerOptions::cream_block_size},
    {.key = "cream_continuity_prob", .number = &SamplerOptions::cream_continuity_prob},
    {.key = "cream_sigma", .number = &SamplerOptions::cream_sigma},
    {.key = "cream_mu", .number = &SamplerOptions::cream_mu},
    {.key = "cream_continuity_len", .integer = &SamplerOptions::cream_continuity_len},
    {.key = "cream_table_points", .integer = &SamplerOptions::cream_table_points},
    {.key = "short_docs", .text = &SamplerOptions::short_docs},
    {.key = "resample", .text = &SamplerOptions::resample},
};


std::string nearest_key(const std::string& key) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const OptionField& f : kOptionFields) {
    const size_t d = edit_distance(key, f.key);
    if (d < best_distance) best_distance = d, best = f.key;
  }
  return best;
}

std::string shown_value(const nlohmann::json& value) {
  std::string text = value.dump();
  return text.size() > 40 ? text.substr(0, 40) + "..." : text;
}

[[noreturn]] void fail_type(const std::string& where, const char* expected, const nlohmann::json& value) {
  fail(where + ": expected " + expected + ", got " + value.type_name() + " " + shown_value(value));
}

void read_field(const OptionField& f, const nlohmann::json& value, const std::string& where, SamplerOptions& out) {
  if (f.text) {
    if (!value.is_string()) fail_type(where, "a string", value);
    out.*f.text = value.get<std::string>();
  } else if (f.integer) {
    if (!value.is_number_integer()) fail_type(where, "an integer", value);
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      fail(where + ": integer " + shown_value(value) + " is out of range");
    }
    out.*f.integer = value.get<int64_t>();
  } else {
    if (!value.is_number()) fail_type(where, "a number", value);
    out.*f.number = value.get<double>();
  }
}

// --------------------------------------------------------------------------
// Coverage helpers

// Number of pairs i < j with p[j] - p[i] < d, for strictly increasing p and
// d >= 1, by a two-pointer sweep: O(n).
int64_t pairs_closer_than(const std::vector<int64_t>& p, int64_t d) {
  const size_t n = p.size();
  int64_t count = 0;
  size_t j = 0;
  for (size_t i = 0; i < n; ++i) {
    while (j < n && p[j] - p[i] < d) ++j;
    count += static_cast<int64_t>(j - i - 1);
  }
  return count;
}

// Smallest integer x with floor(x * bins / total) >= b, i.e. ceil(b * total / bins).
int64_t equal_bin_edge(int64_t b, int64_t total, int64_t bins) { return (b * total + bins - 1) / bins; }

// Adds to counts[b] the pairs whose distance lies in [edges[b], edges[b+1]),
// for ascending edges: the difference of "pairs closer than" at the two edges.
template <typename Counts>
void add_pair_counts(const std::vector<int64_t>& p, const std::vector<int64_t>& edges, Counts& counts) {
  // Distances are >= 1, so no pair is closer than an edge <= 1.
  auto closer_than = [&](int64_t edge) { return edge <= 1 ? 0 : pairs_closer_than(p, edge); };
  int64_t below = closer_than(edges.front());
  for (size_t b = 0; b + 1 < edges.size(); ++b) {
    const int64_t below_next = closer_than(edges[b + 1]);
    counts[b] += below_next - below;
    below = below_next;
  }
}

std::vector<int64_t> equal_edges(int64_t total) {
  std::vector<int64_t> edges;
  for (int64_t b = 0; b <= CoverageSummary::kBins; ++b) {
    edges.push_back(equal_bin_edge(b, total, CoverageSummary::kBins));
  }
  return edges;
}

std::vector<int64_t> log2_edges(size_t bins) {
  std::vector<int64_t> edges;
  for (size_t b = 0; b <= bins; ++b) edges.push_back(int64_t{1} << b);
  return edges;
}

void check_plan_for_coverage(const PositionPlan& plan, int64_t target_len) {
  const auto& p = plan.position_id;
  for (size_t k = 0; k < p.size(); ++k) {
    if (p[k] < 0 || p[k] >= target_len) {
      fail("accumulate_coverage: position_id[" + std::to_string(k) + "] = " + str(p[k]) + " is outside [0, " +
           str(target_len) + ")");
    }
    if (k > 0 && p[k] <= p[k - 1]) {
      fail("accumulate_coverage: position ids are not strictly increasing at entry " + std::to_string(k));
    }
  }
}

std::string percent(int64_t part, int64_t whole) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(2);
  out << (whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0) << "%";
  return out.str();
}

// One table: a header, then "[lo, hi)  count  percent  bar" per bin.
void write_table(std::ostringstream& out, const std::string& title, const std::vector<int64_t>& edges,
                 const std::vector<int64_t>& counts, int64_t total) {
  out << title << "\n";
  const int64_t largest = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  for (size_t b = 0; b < counts.size(); ++b) {
    const std::string range = "[" + str(edges[b]) + ", " + str(edges[b + 1]) + ")";
    const int bar = largest ? static_cast<int>(40 * counts[b] / largest) : 0;
    out << "  " << range << std::string(range.size() < 22 ? 22 - range.size() : 1, ' ') << std::setw(14)
        << counts[b] << "  " << std::setw(7) << percent(counts[b], total) << "  " << std::string(bar, '#') << "\n";
  }
}

}  // namespace

// --------------------------------------------------------------------------
// PositionSampler base

void PositionSampler::check_doc_len(int64_t doc_len) const {
  if (doc_len < min_doc_len()) {
    fail("sampler '" + options_.name + "': document of " + str(doc_len) + " tokens is shorter than min_doc_len = " +
         str(min_doc_len()) + " (train_len N = " + str(options_.train_len) +
         "); short documents are skipped by sample_or_skip() with short_docs = \"skip\"");
  }
}

std::optional<PositionPlan> PositionSampler::sample_or_skip(int64_t doc_len, Rng& rng) {
  if (doc_len < min_doc_len() && options_.short_docs == "skip") {
    ++skipped_short_docs_;
    return std::nullopt;
  }
  return sample(doc_len, rng);
}

nlohmann::json PositionSampler::state() const {
  return {{"name", options_.name}, {"skipped_short_docs", skipped_short_docs_}};
}

void PositionSampler::load_state(const nlohmann::json& s) {
  if (!s.is_object()) fail("sampler state: expected an object, got " + std::string(s.type_name()));
  if (!s.contains("name") || s["name"] != options_.name) {
    fail("sampler state: written by sampler " + (s.contains("name") ? shown_value(s["name"]) : "(no name)") +
         ", cannot load into sampler \"" + options_.name + "\"");
  }
  const auto& skipped = s.value("skipped_short_docs", nlohmann::json());
  if (!skipped.is_number_integer() || skipped.get<int64_t>() < 0) {
    fail("sampler state: 'skipped_short_docs' must be a non-negative integer");
  }
  skipped_short_docs_ = skipped.get<int64_t>();
}

std::unique_ptr<PositionSampler> make_sampler(const SamplerOptions& options) {
  validate(options);
  if (options.name == "contiguous") return std::make_unique<ContiguousSampler>(options);
  if (options.name == "randpos") return std::make_unique<RandPosSampler>(options);
  if (options.name == "pose") return std::make_unique<PoseSampler>(options);
  return std::make_unique<CreamSampler>(options);
}

SamplerOptions sampler_options_from_json(const nlohmann::json& obj, const std::string& context) {
  if (!obj.is_object()) fail_type(context, "an object of sampler options", obj);
  SamplerOptions out;
  for (const auto& [key, value] : obj.items()) {
    const OptionField* field = nullptr;
    for (const OptionField& f : kOptionFields) {
      if (key == f.key) field = &f;
    }
    if (!field) fail(context + ": unknown key '" + key + "' (did you mean '" + nearest_key(key) + "'?)");
    read_field(*field, value, context + "." + key, out);
  }
  return out;
}

nlohmann::json sampler_options_to_json(const SamplerOptions& options) {
  nlohmann::json out = nlohmann::json::object();
  for (const OptionField& f : kOptionFields) {
    if (f.text) out[f.key] = options.*f.text;
    if (f.integer) out[f.key] = options.*f.integer;
    if (f.number) out[f.key] = options.*f.number;
  }
  return out;
}

// --------------------------------------------------------------------------
// CREAM building blocks

const char* cream_mode_name(CreamMode mode) { return mode == CreamMode::continuity ? "continuity" : "relativity"; }

CreamScaleTable::CreamScaleTable(int64_t factor, double mu, double sigma, int64_t points) : factor_(factor) {
  if (factor < 2 || points < 2 || !(sigma > 0)) {
    fail("CreamScaleTable: needs factor >= 2, points >= 2 and sigma > 0; got factor " + str(factor) + ", points " +
         str(points) + ", sigma " + str(sigma));
  }
  // numpy.linspace(2, 2f, points): x_i = i * step + start, the last set to stop.
  const double start = 2.0, stop = 2.0 * static_cast<double>(factor);
  const double step = (stop - start) / static_cast<double>(points - 1);
  for (int64_t i = 0; i < points; ++i) {
    const double x = i + 1 == points ? stop : static_cast<double>(i) * step + start;
    x_.push_back(x);
    // Official: cdf = 0.5 * (1 + erf((x - mu) / (sigma * sqrt(2)))).
    cdf_.push_back(0.5 * (1.0 + std::erf((x - mu) / (sigma * std::sqrt(2.0)))));
  }
  if (!std::is_sorted(cdf_.begin(), cdf_.end())) throw std::logic_error("CreamScaleTable: CDF not monotone");
}

int64_t CreamScaleTable::invert(double u) const {
  // numpy.interp(u, cdf, x): ends clamp; else j is the last index with
  // cdf[j] <= u (ties in a saturated CDF resolve the same way as numpy's search).
  if (u > cdf_.back()) return static_cast<int64_t>(x_.back());
  if (u < cdf_.front()) return static_cast<int64_t>(x_.front());
  const size_t j = static_cast<size_t>(std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin()) - 1;
  double value = x_[j];
  if (j + 1 < x_.size() && cdf_[j] != u) {
    const double slope = (x_[j + 1] - x_[j]) / (cdf_[j + 1] - cdf_[j]);
    value = slope * (u - cdf_[j]) + x_[j];
  }
  // Official: `.astype(int)` truncates toward zero; value >= 2 so this is floor.
  return std::clamp<int64_t>(static_cast<int64_t>(value), 2, 2 * factor_);
}

CreamLayout cream_layout(CreamMode mode, int64_t train_len, int64_t continuity_len) {
  const int64_t side = mode == CreamMode::relativity ? train_len / 3 : continuity_len;
  if (side < 1 || train_len - 2 * side < 1) {
    fail("cream_layout: train_len " + str(train_len) + " leaves no room for head = tail = " + str(side) +
         " and a non-empty middle");
  }
  return {side, train_len - 2 * side, side};
}

std::pair<int64_t, int64_t> cream_middle_end_range(const CreamLayout& layout, int64_t train_len, int64_t r) {
  // Official: randint(int(h + (c-1) * (r/2)), (r/2) * N - t - 1). Both ends are
  // exact here in integers; (c-1)*r/2 >= 0 so integer division is the floor.
  // Official: the upper end is a float, and for odd r*N Python's randint
  // rejects it (non-integer stop); we take its floor.
  const int64_t lo = layout.head + (layout.middle - 1) * r / 2;
  const int64_t hi = r * train_len / 2 - layout.tail - 1;
  return {lo, hi};
}

PositionPlan cream_build_plan(const CreamLayout& layout, int64_t target_len, int64_t middle_end, int64_t doc_len) {
  const int64_t h = layout.head, c = layout.middle, t = layout.tail;
  const int64_t middle_start = middle_end - c + 1;
  if (doc_len < h + c + t || middle_start < h || middle_end >= target_len - t) {
    fail("cream_build_plan: middle end " + str(middle_end) + " or document length " + str(doc_len) +
         " does not fit head " + str(h) + ", middle " + str(c) + ", tail " + str(t) + ", target_len " +
         str(target_len));
  }
  PositionPlan plan;
  plan.position_id.reserve(static_cast<size_t>(h + c + t));
  append_range(plan.position_id, 0, h);
  append_range(plan.position_id, middle_start, c);
  append_range(plan.position_id, target_len - t, t);
  // Official: the middle takes the tokens at its position ids when
  // `end_id < len(ids)`, else the c tokens before the tail. With len - t <= end
  // < len that lets the middle's tokens run into the tail's (tokens repeated,
  // token order broken), so we take the fallback whenever the middle would
  // reach the tail's tokens: end < len - t. Identical to the official rule for
  // every end < len - t and for every end >= len.
  const bool middle_fits_before_tail = middle_end < doc_len - t;
  plan.token_index.reserve(static_cast<size_t>(h + c + t));
  append_range(plan.token_index, 0, h);
  append_range(plan.token_index, middle_fits_before_tail ? middle_start : doc_len - t - c, c);
  append_range(plan.token_index, doc_len - t, t);
  return plan;
}

// --------------------------------------------------------------------------
// PoSE building blocks

std::vector<int64_t> sample_distinct_sorted(Rng& rng, int64_t count, int64_t lo, int64_t hi) {
  const int64_t n = hi - lo + 1;
  if (count < 0 || count > n) {
    fail("sample_distinct_sorted: cannot draw " + str(count) + " distinct values from [" + str(lo) + ", " + str(hi) +
         "]");
  }
  // Floyd: for j = n-count .. n-1 draw t in [0, j]; take t, or j if t is taken.
  // Membership is a bitmap for ranges up to 2^26, a hash set beyond.
  std::vector<int64_t> chosen;
  chosen.reserve(static_cast<size_t>(count));
  const bool use_bitmap = n <= (int64_t{1} << 26);
  std::vector<bool> bitmap(use_bitmap ? static_cast<size_t>(n) : 0);
  std::unordered_set<int64_t> hashed;
  auto taken = [&](int64_t v) { return use_bitmap ? bitmap[static_cast<size_t>(v)] : hashed.count(v) > 0; };
  auto take = [&](int64_t v) {
    if (use_bitmap) bitmap[static_cast<size_t>(v)] = true; else hashed.insert(v);
    chosen.push_back(lo + v);
  };
  for (int64_t j = n - count; j < n; ++j) {
    const int64_t t = rng.uniform_int(0, j);
    take(taken(t) ? j : t);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

namespace {

// k - 1 i.i.d. draws from [0, max_skip], sorted, behind a leading 0.
std::vector<int64_t> sorted_skips(Rng& rng, int64_t chunks, int64_t max_skip) {
  std::vector<int64_t> skips{0};
  for (int64_t j = 1; j < chunks; ++j) skips.push_back(rng.uniform_int(0, max_skip));
  std::sort(skips.begin() + 1, skips.end());
  return skips;
}

std::vector<int64_t> pose_chunk_lengths(Rng& rng, int64_t train_len, int64_t chunks) {
  if (chunks == 2) {
    // Official: rt1 = random.randint(1, (len_chunk + 1) // 2).
    const int64_t first = rng.uniform_int(1, (train_len + 1) / 2);
    return {first, train_len - first};
  }
  const std::vector<int64_t> cuts = sample_distinct_sorted(rng, chunks - 1, 1, train_len - 1);
  std::vector<int64_t> lengths;
  int64_t previous = 0;
  for (int64_t cut : cuts) lengths.push_back(cut - previous), previous = cut;
  lengths.push_back(train_len - previous);
  return lengths;
}

}  // namespace

PoseDraw pose_draw(Rng& rng, int64_t train_len, int64_t target_len, int64_t doc_len, int64_t chunks) {
  if (chunks < 2 || chunks > train_len || doc_len < train_len || target_len < train_len) {
    fail("pose_draw: needs 2 <= chunks <= train_len <= doc_len and train_len <= target_len; got chunks " +
         str(chunks) + ", train_len " + str(train_len) + ", doc_len " + str(doc_len) + ", target_len " +
         str(target_len));
  }
  PoseDraw draw;
  draw.chunk_len = pose_chunk_lengths(rng, train_len, chunks);
  // Official: the document is truncated to 5N tokens and the second chunk ends
  // at rt2 = random.randint(len_chunk, len_input): text_skip = rt2 - N.
  const int64_t text_len = std::min(doc_len, kPoseTextWindows * train_len);
  draw.text_skip = sorted_skips(rng, chunks, text_len - train_len);
  // Official (v2): lt = 0 and rt = random.randint(0, L - N) for the second chunk.
  draw.position_skip = sorted_skips(rng, chunks, target_len - train_len);
  return draw;
}

PositionPlan pose_build_plan(const PoseDraw& draw) {
  PositionPlan plan;
  int64_t slot = 0;  // first window slot of the current chunk
  for (size_t j = 0; j < draw.chunk_len.size(); ++j) {
    append_range(plan.token_index, slot + draw.text_skip[j], draw.chunk_len[j]);
    append_range(plan.position_id, slot + draw.position_skip[j], draw.chunk_len[j]);
    slot += draw.chunk_len[j];
  }
  return plan;
}

// --------------------------------------------------------------------------
// Coverage

void accumulate_coverage(CoverageSummary& summary, const PositionPlan& plan, int64_t target_len) {
  if (target_len < 1) fail("accumulate_coverage: target_len must be >= 1, got " + str(target_len));
  if (summary.plans > 0 && summary.target_len != target_len) {
    fail("accumulate_coverage: target_len " + str(target_len) + " differs from the summary's " +
         str(summary.target_len));
  }
  check_plan_for_coverage(plan, target_len);
  if (summary.plans == 0) {
    summary.target_len = target_len;
    summary.distance_log2_bins.assign(static_cast<size_t>(std::bit_width(static_cast<uint64_t>(target_len - 1))), 0);
  }
  const auto& p = plan.position_id;
  const int64_t n = static_cast<int64_t>(p.size());
  for (int64_t id : p) ++summary.position_bins[static_cast<size_t>(id * CoverageSummary::kBins / target_len)];
  add_pair_counts(p, equal_edges(target_len), summary.distance_bins);
  add_pair_counts(p, log2_edges(summary.distance_log2_bins.size()), summary.distance_log2_bins);
  summary.plans += 1;
  summary.position_ids += n;
  summary.pairs += n * (n - 1) / 2;
}

nlohmann::json coverage_to_json(const CoverageSummary& s) {
  return {{"target_len", s.target_len},
          {"plans", s.plans},
          {"position_ids", s.position_ids},
          {"pairs", s.pairs},
          {"bin_edges", equal_edges(s.target_len)},
          {"position_bins", s.position_bins},
          {"distance_bins", s.distance_bins},
          {"distance_log2_edges", log2_edges(s.distance_log2_bins.size())},
          {"distance_log2_bins", s.distance_log2_bins}};
}

std::string coverage_to_text(const CoverageSummary& s) {
  std::ostringstream out;
  out << "coverage of " << s.plans << " plans, target_len L = " << s.target_len << ": " << s.position_ids
      << " position ids, " << s.pairs << " pairs (i < j, counted exactly)\n";
  const auto edges = equal_edges(s.target_len);
  const std::vector<int64_t> positions(s.position_bins.begin(), s.position_bins.end());
  const std::vector<int64_t> distances(s.distance_bins.begin(), s.distance_bins.end());
  write_table(out, "position ids by region of [0, L):", edges, positions, s.position_ids);
  write_table(out, "relative distances p_j - p_i by sixteenths of L:", edges, distances, s.pairs);
  write_table(out, "relative distances p_j - p_i by powers of two:", log2_edges(s.distance_log2_bins.size()),
              s.distance_log2_bins, s.pairs);
  return out.str();
}

}  // namespace ropex

namespace ropex {
namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
}  // namespace

Rng example_rng(uint64_t seed, uint64_t example, uint64_t epoch, const SamplerOptions& options) {
  const uint64_t e = options.resample == "per_epoch" ? epoch : 0;
  return Rng(splitmix64(splitmix64(splitmix64(seed) ^ example) ^ (e * 0xD1B54A32D192ED03ULL)));
}
}  // namespace ropex
