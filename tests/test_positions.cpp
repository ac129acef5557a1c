// Tests for data/rng and data/positions: the Rng's transforms and state, the four
// position samplers' invariants over >= 10,000 draws per configuration, the
// distributions of CREAM's scale and PoSE's draws (chi-square against exact
// probabilities computed here, independently of the code under test), option
// validation and strict JSON, determinism and state round trips, and the
// coverage summary against a brute-force count.
//
// Chi-square tests use fixed seeds and reject at p = 1e-4 (critical values from
// the Wilson-Hilferty approximation, which is conservative for small dof), so a
// correct sampler passes deterministically and cannot flake; a helper test shows
// the same check rejects deliberately wrong distributions.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "data/positions.h"
#include "data/rng.h"

namespace ropex {
namespace {

// ---------------------------------------------------------------------------
// Chi-square goodness of fit

struct ChiSquare {
  double statistic = 0;
  int dof = 0;
  double critical = 0;  // upper 1e-4 quantile of chi-square(dof)
  bool rejects() const { return statistic > critical; }
};

double chi_square_critical_1e4(int dof) {
  const double z = 3.719016485455709;  // upper 1e-4 quantile of N(0, 1)
  const double k = dof;
  const double a = 2.0 / (9.0 * k);
  return k * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Cells are merged left to right until each has expected count >= 5 (a short
// remainder joins the last cell). probabilities must sum to 1.
ChiSquare chi_square(const std::vector<int64_t>& observed, const std::vector<double>& probabilities) {
  EXPECT_EQ(observed.size(), probabilities.size());
  const double total = static_cast<double>(std::accumulate(observed.begin(), observed.end(), int64_t{0}));
  std::vector<std::pair<double, double>> cells;  // (observed, expected)
  double obs = 0, exp = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    obs += static_cast<double>(observed[i]);
    exp += probabilities[i] * total;
    if (exp >= 5.0) cells.push_back({obs, exp}), obs = exp = 0;
  }
  if (cells.empty()) cells.push_back({0, 0});
  cells.back().first += obs;
  cells.back().second += exp;
  ChiSquare result;
  for (const auto& [o, e] : cells) {
    if (e > 0) result.statistic += (o - e) * (o - e) / e;
    else if (o > 0) result.statistic = std::numeric_limits<double>::infinity();  // impossible outcome seen
  }
  result.dof = std::max<int>(1, static_cast<int>(cells.size()) - 1);
  result.critical = chi_square_critical_1e4(result.dof);
  return result;
}

std::string describe(const ChiSquare& c) {
  return "chi2 = " + std::to_string(c.statistic) + ", dof = " + std::to_string(c.dof) +
         ", critical(p=1e-4) = " + std::to_string(c.critical);
}

std::vector<double> uniform_probabilities(size_t cells) { return std::vector<double>(cells, 1.0 / cells); }

// Histogram of values in [lo, hi].
std::vector<int64_t> histogram(const std::vector<int64_t>& values, int64_t lo, int64_t hi) {
  std::vector<int64_t> counts(static_cast<size_t>(hi - lo + 1), 0);
  for (int64_t v : values) {
    EXPECT_GE(v, lo);
    EXPECT_LE(v, hi);
    if (v >= lo && v <= hi) ++counts[static_cast<size_t>(v - lo)];
  }
  return counts;
}

// ---------------------------------------------------------------------------
// Rng

TEST(Rng, EngineSequenceIsTheStandardOne) {
  // [rand.predef]: the 10000th output of a default-seeded mt19937_64.
  Rng rng(5489u);
  uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) x = rng.next_u64();
  EXPECT_EQ(x, 9981545732273789042ull);
}

TEST(Rng, UniformUsesTheTop53Bits) {
  Rng rng(7);
  std::mt19937_64 engine(7);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform();
    EXPECT_EQ(u, static_cast<double>(engine() >> 11) / 9007199254740992.0);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(Rng, UniformIntIsUniformAndInRange) {
  Rng rng(11);
  std::vector<int64_t> draws;
  for (int i = 0; i < 100000; ++i) draws.push_back(rng.uniform_int(-3, 6));
  const ChiSquare c = chi_square(histogram(draws, -3, 6), uniform_probabilities(10));
  EXPECT_FALSE(c.rejects()) << describe(c);
  EXPECT_EQ(rng.uniform_int(5, 5), 5);
  EXPECT_THROW(rng.uniform_int(6, 5), std::invalid_argument);
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < 100; ++i) (void)rng.uniform_int(lo, hi);  // full range: no overflow
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = rng.uniform_int(lo, lo + 2);
    EXPECT_TRUE(v >= lo && v <= lo + 2);
  }
}

TEST(Rng, NormalMatchesTheStandardNormal) {
  Rng rng(13);
  const int n = 200000;
  const std::vector<double> edges = {-2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5};
  std::vector<int64_t> counts(edges.size() + 1, 0);
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z, sum_sq += z * z;
    counts[static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), z) - edges.begin())]++;
  }
  // 5 standard deviations of the sample mean (1 / sqrt(n)) and of the mean square (sqrt(2 / n)):
  // two-sided p = 5.7e-7 for a correct sampler, with a fixed seed.
  EXPECT_NEAR(sum / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(sum_sq / n, 1.0, 5.0 * std::sqrt(2.0 / n));
  auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  std::vector<double> p;
  double previous = 0;
  for (double e : edges) p.push_back(phi(e) - previous), previous = phi(e);
  p.push_back(1.0 - previous);
  const ChiSquare c = chi_square(counts, p);
  EXPECT_FALSE(c.rejects()) << describe(c);
}

TEST(Rng, StateRoundTripAndGarbage) {
  Rng rng(17);
  for (int i = 0; i < 500; ++i) rng.next_u64();  // mid-block of the engine
  const std::string saved = rng.state();
  std::vector<uint64_t> first;
  for (int i = 0; i < 1000; ++i) first.push_back(rng.next_u64());
  Rng restored(1);
  restored.set_state(saved);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(restored.next_u64(), first[static_cast<size_t>(i)]);

  std::string numbers_312 = saved.substr(0, saved.rfind(' '));
  const std::vector<std::string> garbage = {
      "", "hello", numbers_312, saved + " 5", "-" + saved,
      numbers_312 + " 313",                                   // index past the array
      "18446744073709551616 " + saved.substr(saved.find(' ') + 1),  // 2^64
  };
  for (const std::string& text : garbage) {
    Rng target(99);
    const std::string before = target.state();
    try {
      target.set_state(text);
      ADD_FAILURE() << "accepted garbage state: " << text.substr(0, 40);
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("Rng::set_state"), std::string::npos) << e.what();
    }
    EXPECT_EQ(target.state(), before);
  }
}

// ---------------------------------------------------------------------------
// Option helpers

SamplerOptions opts(const std::string& name, int64_t n, int64_t l) {
  SamplerOptions o;
  o.name = name;
  o.train_len = n;
  o.target_len = l;
  return o;
}

SamplerOptions cream(int64_t n, int64_t f, const std::string& mode) {
  SamplerOptions o = opts("cream", n, n * f);
  o.cream_mode = mode;
  return o;
}

SamplerOptions pose(int64_t n, int64_t l, int64_t chunks) {
  SamplerOptions o = opts("pose", n, l);
  o.pose_chunks = chunks;
  return o;
}

// ---------------------------------------------------------------------------
// Invariants of every plan, and per-sampler structure. Checks are plain code that
// records the first problem (a gtest assertion per entry would dominate the run
// time at N = 4096); the property test asserts that no problem was recorded.

class PlanChecker {
 public:
  void check(bool ok, const std::string& what) {
    if (!ok && problem_.empty()) problem_ = what;
  }
  // v[from .. from+count) == first, first+1, ...
  void check_range(const std::vector<int64_t>& v, int64_t from, int64_t first, int64_t count, const char* what) {
    for (int64_t i = 0; i < count && problem_.empty(); ++i) {
      const size_t at = static_cast<size_t>(from + i);
      if (at >= v.size() || v[at] != first + i) {
        problem_ = std::string(what) + ": entry " + std::to_string(at) + " should be " + std::to_string(first + i);
      }
    }
  }
  const std::string& problem() const { return problem_; }

 private:
  std::string problem_;
};

void check_common_invariants(PlanChecker& ck, const PositionPlan& plan, const SamplerOptions& o, int64_t doc_len) {
  const int64_t l = o.target_len == 0 ? o.train_len : o.target_len;
  const auto& tok = plan.token_index;
  const auto& pos = plan.position_id;
  ck.check(static_cast<int64_t>(tok.size()) == o.train_len, "token_index has not N entries");
  ck.check(static_cast<int64_t>(pos.size()) == o.train_len, "position_id has not N entries");
  if (!ck.problem().empty()) return;
  for (size_t k = 0; k < tok.size(); ++k) {
    const bool in_range = tok[k] >= 0 && tok[k] < doc_len && pos[k] >= 0 && pos[k] < l;
    const bool increasing = k == 0 || (tok[k] > tok[k - 1] && pos[k] > pos[k - 1]);
    if (!in_range || !increasing) {
      ck.check(false, "entry " + std::to_string(k) + (in_range ? " not strictly increasing" : " out of range"));
      return;
    }
  }
}

void check_pose_structure(PlanChecker& ck, const PositionPlan& plan, const nlohmann::json& draw,
                          const SamplerOptions& o, int64_t doc_len) {
  const auto len = draw["chunk_len"].get<std::vector<int64_t>>();
  const auto text = draw["text_skip"].get<std::vector<int64_t>>();
  const auto skip = draw["position_skip"].get<std::vector<int64_t>>();
  ck.check(static_cast<int64_t>(len.size()) == o.pose_chunks, "wrong number of chunks");
  ck.check(std::accumulate(len.begin(), len.end(), int64_t{0}) == o.train_len, "chunk lengths do not sum to N");
  ck.check(std::all_of(len.begin(), len.end(), [](int64_t x) { return x >= 1; }), "empty chunk");
  ck.check(o.pose_chunks != 2 || len[0] <= (o.train_len + 1) / 2, "l1 above floor((N+1)/2)");
  ck.check(text[0] == 0 && skip[0] == 0, "first chunk not at token 0 / position 0");
  ck.check(std::is_sorted(text.begin(), text.end()) && std::is_sorted(skip.begin(), skip.end()), "skips decrease");
  ck.check(text.back() <= std::min(doc_len, 5 * o.train_len) - o.train_len, "text end beyond min(len, 5N)");
  ck.check(skip.back() <= o.target_len - o.train_len, "position skip beyond L - N");
  if (!ck.problem().empty()) return;
  int64_t slot = 0;  // each chunk is contiguous in tokens and positions, offset by its skips
  for (size_t j = 0; j < len.size(); ++j) {
    ck.check_range(plan.token_index, slot, slot + text[j], len[j], "pose chunk tokens");
    ck.check_range(plan.position_id, slot, slot + skip[j], len[j], "pose chunk positions");
    slot += len[j];
  }
}

void check_cream_structure(PlanChecker& ck, const PositionPlan& plan, const nlohmann::json& draw,
                           const SamplerOptions& o, int64_t doc_len) {
  const int64_t n = o.train_len, l = o.target_len, f = l / n;
  const int64_t k = o.cream_continuity_len == -1 ? 4 * f : o.cream_continuity_len;
  const std::string mode = draw["mode"];
  const int64_t h = draw["head"], c = draw["middle"], t = draw["tail"], r = draw["r"], end = draw["middle_end"];
  const bool fixed_mode = o.cream_mode == "relativity" || o.cream_mode == "continuity";
  ck.check(!fixed_mode || mode == o.cream_mode, "mode differs from cream_mode");
  ck.check(h == (mode == "relativity" ? n / 3 : k) && t == h && h + c + t == n, "wrong head/middle/tail lengths");
  ck.check(r >= 2 && r <= 2 * f, "r outside [2, 2f]");
  ck.check(end >= h + (c - 1) * r / 2 && end <= r * n / 2 - t - 1, "middle end outside its range");
  ck.check_range(plan.position_id, 0, 0, h, "cream head positions");
  ck.check_range(plan.position_id, h, end - c + 1, c, "cream middle positions");
  ck.check_range(plan.position_id, h + c, l - t, t, "cream tail positions");
  ck.check_range(plan.token_index, 0, 0, h, "cream head tokens");
  ck.check_range(plan.token_index, h, end < doc_len - t ? end - c + 1 : doc_len - t - c, c, "cream middle tokens");
  ck.check_range(plan.token_index, h + c, doc_len - t, t, "cream tail tokens");
  ck.check(plan.position_id.front() == 0 && plan.position_id.back() == l - 1, "first id not 0 or last not L-1");
}

std::string plan_problem(const PositionPlan& plan, const PositionSampler& s, int64_t doc_len) {
  const SamplerOptions& o = s.options();
  PlanChecker ck;
  check_common_invariants(ck, plan, o, doc_len);
  if (!ck.problem().empty()) return ck.problem();
  if (o.name == "contiguous" || o.name == "randpos") ck.check_range(plan.token_index, 0, 0, o.train_len, "tokens");
  if (o.name == "contiguous") ck.check_range(plan.position_id, 0, 0, o.train_len, "positions");
  if (o.name == "pose") check_pose_structure(ck, plan, s.last_draw(), o, doc_len);
  if (o.name == "cream") check_cream_structure(ck, plan, s.last_draw(), o, doc_len);
  return ck.problem();
}

TEST(PlanChecks, CatchBrokenPlans) {  // the property test's checks can fail
  auto s = make_sampler(cream(100, 4, "relativity"));
  Rng rng(2);
  const PositionPlan good = s->sample(100, rng);
  EXPECT_EQ(plan_problem(good, *s, 100), "");
  PositionPlan repeated = good;
  repeated.token_index[50] = repeated.token_index[49];
  EXPECT_NE(plan_problem(repeated, *s, 100), "");
  PositionPlan shifted_tail = good;
  shifted_tail.position_id.back() -= 1;
  shifted_tail.position_id[98] -= 1;
  shifted_tail.position_id[97] -= 1;  // still increasing, but the tail no longer ends at L-1
  EXPECT_NE(plan_problem(shifted_tail, *s, 100), "");
  PositionPlan short_plan = good;
  short_plan.position_id.pop_back();
  EXPECT_NE(plan_problem(short_plan, *s, 100), "");
}

struct PropertyCase {
  std::string label;
  SamplerOptions options;
  int draws = 10000;
};

void PrintTo(const PropertyCase& c, std::ostream* os) { *os << c.label; }

class SamplerProperties : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(SamplerProperties, InvariantsHoldForShortAndLongDocuments) {
  const PropertyCase& pc = GetParam();
  auto sampler = make_sampler(pc.options);
  const int64_t n = pc.options.train_len;
  ASSERT_EQ(sampler->min_doc_len(), n);
  Rng rng(1234);
  for (const int64_t doc_len : {n, 7 * n + 3}) {
    for (int i = 0; i < pc.draws; ++i) {
      const PositionPlan plan = sampler->sample(doc_len, rng);
      const std::string problem = plan_problem(plan, *sampler, doc_len);
      ASSERT_EQ(problem, "") << pc.label << ", doc_len " << doc_len << ", draw " << i << ", last draw "
                             << sampler->last_draw().dump();
    }
  }
}

std::vector<PropertyCase> property_cases() {
  SamplerOptions cream_custom_k = cream(50, 16, "per_block");
  cream_custom_k.cream_continuity_len = 3;
  cream_custom_k.cream_block_size = 7;
  SamplerOptions cream_mu_spec = cream(129, 16, "per_sample");
  cream_mu_spec.cream_mu = -1;
  cream_mu_spec.cream_continuity_prob = 0.3;
  return {
      {"contiguous_N100", opts("contiguous", 100, 0)},
      {"contiguous_N4096_L32768", opts("contiguous", 4096, 32768), 2000},
      {"randpos_N100_f4", opts("randpos", 100, 400)},
      {"randpos_N96_f8", opts("randpos", 96, 768)},
      {"randpos_N33_f16", opts("randpos", 33, 528)},
      {"randpos_N600_L4801", opts("randpos", 600, 4801)},
      {"pose_N100_f4", pose(100, 400, 2)},
      {"pose_N257_f8", pose(257, 2056, 2)},
      {"pose_N4096_f16", pose(4096, 65536, 2)},
      {"pose_N101_L1000", pose(101, 1000, 2)},
      {"pose_k3_N100_f8", pose(100, 800, 3)},
      {"pose_k7_N60_f4", pose(60, 240, 7)},
      {"pose_kN_N10_f16", pose(10, 160, 10)},
      {"cream_per_block_N100_f4", cream(100, 4, "per_block")},
      {"cream_per_sample_N257_f8", cream(257, 8, "per_sample")},
      {"cream_continuity_N300_f16", cream(300, 16, "continuity")},
      {"cream_relativity_N4096_f8", cream(4096, 8, "relativity")},
      {"cream_per_block_N1000_f8", cream(1000, 8, "per_block")},
      {"cream_per_block_k3_N50_f16", cream_custom_k},
      {"cream_mu_1_plus_f_N129_f16", cream_mu_spec},
      {"cream_relativity_N3_f2", cream(3, 2, "relativity")},
  };
}

INSTANTIATE_TEST_SUITE_P(All, SamplerProperties, ::testing::ValuesIn(property_cases()),
                         [](const auto& info) { return info.param.label; });

// ---------------------------------------------------------------------------
// CREAM distributions

// P(r) for r in {2..2f}, computed from the official construction without the
// table: u ~ U[0,1) maps to r >= y exactly when u >= G(y), G the normal CDF
// clamped to 0 at y <= 2 (mass below 2 piles on 2) and 1 above 2f (mass above 2f
// piles on 2f). The table's linear interpolation moves these by O(1e-6), far
// below what 100,000 draws can see.
std::vector<double> cream_r_probabilities(int64_t f, double mu, double sigma) {
  auto g = [&](double y) {
    if (y <= 2.0) return 0.0;
    if (y > 2.0 * f) return 1.0;
    return 0.5 * std::erfc(-(y - mu) / (sigma * std::sqrt(2.0)));
  };
  std::vector<double> p;
  for (int64_t r = 2; r <= 2 * f; ++r) p.push_back(g(r + 1.0) - g(static_cast<double>(r)));
  return p;
}

// The "wrong" model the spec warns about: truncate and renormalise instead of
// clamping the tails onto the ends.
std::vector<double> cream_r_probabilities_renormalised(int64_t f, double mu, double sigma) {
  auto phi = [&](double y) { return 0.5 * std::erfc(-(y - mu) / (sigma * std::sqrt(2.0))); };
  const double mass = phi(2.0 * f + 1.0) - phi(2.0);
  std::vector<double> p;
  for (int64_t r = 2; r <= 2 * f; ++r) p.push_back((phi(r + 1.0) - phi(static_cast<double>(r))) / mass);
  return p;
}

std::vector<int64_t> draw_r_histogram(const CreamScaleTable& table, int64_t f, int draws, uint64_t seed) {
  Rng rng(seed);
  std::vector<int64_t> rs;
  for (int i = 0; i < draws; ++i) rs.push_back(table.draw_r(rng));
  return histogram(rs, 2, 2 * f);
}

TEST(CreamScale, MatchesTheOfficialTruncatedGaussian) {
  for (const int64_t f : {4, 8, 16}) {
    for (const double mu : {9.0, 1.0 + f}) {  // official constant, spec's 1 + f
      const CreamScaleTable table(f, mu, 3.0, 1000);
      const auto counts = draw_r_histogram(table, f, 100000, 100 + f);
      const ChiSquare c = chi_square(counts, cream_r_probabilities(f, mu, 3.0));
      EXPECT_FALSE(c.rejects()) << "f = " << f << ", mu = " << mu << ": " << describe(c);
    }
  }
}

TEST(CreamScale, ChiSquareRejectsWrongDistributions) {
  // Renormalised instead of clamped tails (mu = 9 at f = 4 piles 63% on r = 8).
  for (const int64_t f : {4, 8}) {
    const CreamScaleTable table(f, 9.0, 3.0, 1000);
    const auto counts = draw_r_histogram(table, f, 100000, 7);
    const ChiSquare c = chi_square(counts, cream_r_probabilities_renormalised(f, 9.0, 3.0));
    EXPECT_TRUE(c.rejects()) << "f = " << f << ": " << describe(c);
  }
  // The spec's mean 1 + f where the table uses the official 9 (f = 16).
  const CreamScaleTable table(16, 9.0, 3.0, 1000);
  const ChiSquare c = chi_square(draw_r_histogram(table, 16, 100000, 8), cream_r_probabilities(16, 17.0, 3.0));
  EXPECT_TRUE(c.rejects()) << describe(c);
  // A sigma 20% off (3.6 drawn, 3.0 expected) at f = 8.
  const CreamScaleTable wide(8, 9.0, 3.6, 1000);
  const ChiSquare w = chi_square(draw_r_histogram(wide, 8, 100000, 9), cream_r_probabilities(8, 9.0, 3.0));
  EXPECT_TRUE(w.rejects()) << describe(w);
}

TEST(CreamScale, TableEndsAndMonotonicity) {
  const CreamScaleTable table(4, 9.0, 3.0, 1000);  // cdf on [2, 8] spans ~[0.0098, 0.369]
  EXPECT_EQ(table.invert(0.0), 2);
  EXPECT_EQ(table.invert(0.005), 2);
  EXPECT_EQ(table.invert(0.5), 8);
  EXPECT_EQ(table.invert(std::nextafter(1.0, 0.0)), 8);
  int64_t previous = 2;
  for (int i = 0; i < 10000; ++i) {
    const int64_t r = table.invert(i / 10000.0);
    EXPECT_GE(r, previous);
    previous = r;
  }
  EXPECT_THROW(CreamScaleTable(1, 9.0, 3.0, 1000), std::invalid_argument);
  EXPECT_THROW(CreamScaleTable(4, 9.0, 0.0, 1000), std::invalid_argument);
}

TEST(CreamSampler, MiddleEndIsUniformOnItsRangeGivenR) {
  // N = 12, f = 2, relativity: h = t = 4, c = 4; r = 4 gives ends 10..19.
  auto s = make_sampler(cream(12, 2, "relativity"));
  const auto [lo, hi] = cream_middle_end_range(cream_layout(CreamMode::relativity, 12, 8), 12, 4);
  ASSERT_EQ(lo, 10);
  ASSERT_EQ(hi, 19);
  Rng rng(21);
  std::vector<int64_t> ends;
  for (int i = 0; i < 100000; ++i) {
    (void)s->sample(100, rng);
    if (s->last_draw()["r"] == 4) ends.push_back(s->last_draw()["middle_end"]);
  }
  ASSERT_GT(ends.size(), 10000u);
  const ChiSquare c = chi_square(histogram(ends, lo, hi), uniform_probabilities(10));
  EXPECT_FALSE(c.rejects()) << describe(c);
}

TEST(CreamSampler, PerBlockModeIsOneFairCoinPerBlock) {
  SamplerOptions o = cream(100, 4, "per_block");
  o.cream_block_size = 5;
  auto s = make_sampler(o);
  Rng rng(31);
  int continuity_blocks = 0;
  const int blocks = 400;
  for (int b = 0; b < blocks; ++b) {
    std::string block_mode;
    for (int i = 0; i < 5; ++i) {
      (void)s->sample(100, rng);
      const std::string mode = s->last_draw()["mode"];
      if (i == 0) block_mode = mode;
      EXPECT_EQ(mode, block_mode) << "block " << b << " example " << i;
    }
    continuity_blocks += block_mode == "continuity";
  }
  EXPECT_NEAR(continuity_blocks, blocks / 2, 5 * std::sqrt(blocks / 4.0));  // 5 binomial standard deviations (p = 5.7e-7)
}

TEST(CreamSampler, PerSampleModeHasProbabilityP) {
  SamplerOptions o = cream(100, 4, "per_sample");
  o.cream_continuity_prob = 0.25;
  auto s = make_sampler(o);
  Rng rng(37);
  const int n = 20000;
  int continuity = 0;
  for (int i = 0; i < n; ++i) {
    (void)s->sample(100, rng);
    continuity += s->last_draw()["mode"] == "continuity";
  }
  EXPECT_NEAR(continuity, 0.25 * n, 5 * std::sqrt(n * 0.25 * 0.75));  // 5 binomial standard deviations (p = 5.7e-7)
}

TEST(CreamSampler, OfficialTokenRuleBeyondTheDocumentAndOurFixNearTheTail) {
  const CreamLayout layout{4, 4, 4};
  // end beyond the document: the c tokens before the tail (official rule).
  PositionPlan far = cream_build_plan(layout, 48, 30, 20);
  EXPECT_EQ(far.token_index, (std::vector<int64_t>{0, 1, 2, 3, 12, 13, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(far.position_id, (std::vector<int64_t>{0, 1, 2, 3, 27, 28, 29, 30, 44, 45, 46, 47}));
  // end inside the document and before its tail: tokens = positions.
  PositionPlan inside = cream_build_plan(layout, 48, 10, 20);
  EXPECT_EQ(inside.token_index, (std::vector<int64_t>{0, 1, 2, 3, 7, 8, 9, 10, 16, 17, 18, 19}));
  // len - t <= end < len: the official rule would repeat tokens 16..17; we fall back.
  PositionPlan near = cream_build_plan(layout, 48, 17, 20);
  EXPECT_EQ(near.token_index, far.token_index);
}

// ---------------------------------------------------------------------------
// PoSE and RandPos distributions

TEST(PoseDraws, OfficialDrawsAreUniformOnTheirRanges) {
  const int64_t n = 64, l = 256, doc_len = 200;  // l1 in 1..32, text end in 64..200, skip in 0..192
  Rng rng(41);
  std::vector<int64_t> l1, text_end, skip;
  for (int i = 0; i < 100000; ++i) {
    const PoseDraw d = pose_draw(rng, n, l, doc_len, 2);
    l1.push_back(d.chunk_len[0]);
    text_end.push_back(n + d.text_skip[1]);
    skip.push_back(d.position_skip[1]);
  }
  const ChiSquare c1 = chi_square(histogram(l1, 1, 32), uniform_probabilities(32));
  const ChiSquare c2 = chi_square(histogram(text_end, 64, 200), uniform_probabilities(137));
  const ChiSquare c3 = chi_square(histogram(skip, 0, 192), uniform_probabilities(193));
  EXPECT_FALSE(c1.rejects()) << "l1: " << describe(c1);
  EXPECT_FALSE(c2.rejects()) << "text end: " << describe(c2);
  EXPECT_FALSE(c3.rejects()) << "skip: " << describe(c3);
  // A wrong range (l1 over 1..N-1) is rejected by the same check.
  EXPECT_TRUE(chi_square(histogram(l1, 1, 63), uniform_probabilities(63)).rejects());
}

TEST(PoseDraws, TextEndIsCappedAtFiveWindows) {
  Rng rng(43);
  int64_t largest = 0;
  for (int i = 0; i < 20000; ++i) largest = std::max(largest, pose_draw(rng, 10, 100, 1000, 2).text_skip[1]);
  EXPECT_EQ(largest, 40);  // text end 10 + 40 = 50 = 5N
}

TEST(RandPos, EveryPositionIsEquallyLikely) {
  auto s = make_sampler(opts("randpos", 16, 64));
  Rng rng(47);
  std::vector<int64_t> ids;
  for (int i = 0; i < 20000; ++i) {
    const PositionPlan plan = s->sample(16, rng);
    ids.insert(ids.end(), plan.position_id.begin(), plan.position_id.end());
  }
  // Inclusion counts of a without-replacement sample vary less than multinomial
  // counts, so this check is conservative.
  const ChiSquare c = chi_square(histogram(ids, 0, 63), uniform_probabilities(64));
  EXPECT_FALSE(c.rejects()) << describe(c);
}

TEST(RandPos, DistinctSortedHandlesFullAndEmptyRanges) {
  Rng rng(53);
  EXPECT_EQ(sample_distinct_sorted(rng, 5, 10, 14), (std::vector<int64_t>{10, 11, 12, 13, 14}));
  EXPECT_TRUE(sample_distinct_sorted(rng, 0, 0, 9).empty());
  EXPECT_THROW(sample_distinct_sorted(rng, 6, 10, 14), std::invalid_argument);
  const auto big = sample_distinct_sorted(rng, 100, 0, int64_t{1} << 40);  // hash-set path
  EXPECT_EQ(big.size(), 100u);
  EXPECT_TRUE(std::adjacent_find(big.begin(), big.end(), std::greater_equal<>()) == big.end());
}

// ---------------------------------------------------------------------------
// Determinism and state round trips

std::vector<SamplerOptions> every_sampler() {
  SamplerOptions per_block = cream(100, 4, "per_block");
  per_block.cream_block_size = 7;
  return {opts("contiguous", 64, 0), opts("randpos", 64, 512), pose(64, 512, 2), pose(64, 512, 4),
          per_block,                 cream(100, 4, "per_sample"), cream(100, 4, "continuity"),
          cream(100, 4, "relativity")};
}

// Interleaves short documents so the skip counter is part of the state.
std::vector<PositionPlan> run(PositionSampler& s, Rng& rng, int count) {
  std::vector<PositionPlan> plans;
  for (int i = 0; i < count; ++i) {
    const int64_t n = s.options().train_len;
    if (i % 4 == 3) {
      EXPECT_FALSE(s.sample_or_skip(n - 1, rng).has_value());
    }
    plans.push_back(*s.sample_or_skip(n + 5 * i, rng));
  }
  return plans;
}

std::vector<PositionPlan> run_seeded(const SamplerOptions& o, uint64_t seed) {
  auto sampler = make_sampler(o);
  Rng rng(seed);
  return run(*sampler, rng, 50);
}

TEST(SamplerState, SameSeedSamePlans) {
  for (const SamplerOptions& o : every_sampler()) {
    EXPECT_EQ(run_seeded(o, 5), run_seeded(o, 5)) << o.name << " " << o.cream_mode;
    if (o.name != "contiguous") {
      EXPECT_NE(run_seeded(o, 5), run_seeded(o, 6)) << o.name << " " << o.cream_mode;
    }
  }
}

TEST(SamplerState, SaveRestoreResumesIdentically) {
  for (const SamplerOptions& o : every_sampler()) {
    auto sampler = make_sampler(o);
    Rng rng(77);
    (void)run(*sampler, rng, 10);  // 10 % 7 = 3: mid-block for per_block
    const std::string rng_text = rng.state();
    const std::string sampler_text = sampler->state().dump();
    const auto expected = run(*sampler, rng, 25);
    const int64_t expected_skipped = sampler->skipped_short_docs();

    auto restored = make_sampler(o);
    Rng restored_rng(1);
    restored_rng.set_state(rng_text);
    restored->load_state(nlohmann::json::parse(sampler_text));
    EXPECT_EQ(run(*restored, restored_rng, 25), expected) << o.name << " " << o.cream_mode;
    EXPECT_EQ(restored->skipped_short_docs(), expected_skipped);
    EXPECT_EQ(restored->state(), sampler->state());
  }
}

TEST(SamplerState, RejectsForeignOrMalformedState) {
  auto c = make_sampler(cream(100, 4, "per_block"));
  auto p = make_sampler(pose(64, 512, 2));
  EXPECT_THROW(c->load_state(p->state()), std::invalid_argument);
  EXPECT_THROW(c->load_state(nlohmann::json::array()), std::invalid_argument);
  nlohmann::json s = c->state();
  s["block_mode"] = "sometimes";
  EXPECT_THROW(c->load_state(s), std::invalid_argument);
  s = c->state();
  s["examples"] = 3;  // inside a block with no block mode
  EXPECT_THROW(c->load_state(s), std::invalid_argument);
  s = c->state();
  s["examples"] = -1;
  EXPECT_THROW(c->load_state(s), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Short documents

TEST(ShortDocuments, SampleThrowsNamingTheLengthsAndSkipCounts) {
  auto s = make_sampler(cream(100, 4, "relativity"));
  Rng rng(3);
  try {
    (void)s->sample(99, rng);
    ADD_FAILURE() << "no throw";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("99"), std::string::npos) << what;
    EXPECT_NE(what.find("100"), std::string::npos) << what;
  }
  const std::string before = rng.state();
  EXPECT_FALSE(s->sample_or_skip(10, rng).has_value());
  EXPECT_EQ(s->skipped_short_docs(), 1);
  EXPECT_EQ(rng.state(), before);  // skipping draws nothing
  SamplerOptions strict = cream(100, 4, "relativity");
  strict.short_docs = "error";
  EXPECT_THROW(make_sampler(strict)->sample_or_skip(10, rng), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Bad options: every message names the key

void expect_error_naming(const SamplerOptions& o, const std::vector<std::string>& words) {
  try {
    (void)make_sampler(o);
    ADD_FAILURE() << "accepted options; expected an error naming " << words.front();
  } catch (const std::invalid_argument& e) {
    for (const std::string& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

TEST(SamplerOptionsValidation, EachErrorNamesTheKey) {
  auto with = [](SamplerOptions o, const std::function<void(SamplerOptions&)>& change) {
    change(o);
    return o;
  };
  const SamplerOptions c = cream(4096, 8, "per_block");
  const SamplerOptions p = pose(4096, 32768, 2);
  expect_error_naming(opts("yarn", 4096, 8192), {"'name'", "contiguous, randpos, pose, cream"});
  expect_error_naming(opts("randpos", 0, 8192), {"'train_len'"});
  expect_error_naming(opts("randpos", 4096, 4096), {"'target_len'", "'train_len'", "4096"});
  expect_error_naming(opts("contiguous", 4096, 100), {"'target_len'"});
  expect_error_naming(with(p, [](auto& o) { o.target_len = 2048; }), {"'target_len'", "2048"});
  expect_error_naming(with(p, [](auto& o) { o.pose_chunks = 1; }), {"'pose_chunks'"});
  expect_error_naming(with(p, [](auto& o) { o.pose_chunks = 4097; }), {"'pose_chunks'", "4097"});
  expect_error_naming(with(c, [](auto& o) { o.target_len = 10000; }), {"'target_len'", "multiple"});
  expect_error_naming(with(c, [](auto& o) { o.cream_mode = "sometimes"; }),
                      {"'cream_mode'", "per_block, per_sample, continuity, relativity"});
  expect_error_naming(with(c, [](auto& o) { o.cream_block_size = 0; }), {"'cream_block_size'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_continuity_prob = 1.5; }), {"'cream_continuity_prob'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_continuity_prob = std::nan(""); }), {"'cream_continuity_prob'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_sigma = 0; }), {"'cream_sigma'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_sigma = INFINITY; }), {"'cream_sigma'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_mu = -2; }), {"'cream_mu'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_continuity_len = 0; }), {"'cream_continuity_len'"});
  expect_error_naming(with(c, [](auto& o) { o.cream_table_points = 1; }), {"'cream_table_points'"});
  expect_error_naming(with(c, [](auto& o) { o.short_docs = "pad"; }), {"'short_docs'", "skip, error"});
  // Room: continuity k = 4f = 32 needs N >= 65; relativity needs N >= 3.
  expect_error_naming(cream(60, 8, "per_block"), {"'train_len'", "continuity", "65", "cream_continuity_len"});
  expect_error_naming(cream(2, 8, "relativity"), {"'train_len'", "relativity", ">= 3"});
  EXPECT_NO_THROW(make_sampler(cream(60, 8, "relativity")));  // continuity never used
  EXPECT_NO_THROW(make_sampler(opts("contiguous", 4096, 0)));
}

// ---------------------------------------------------------------------------
// Strict JSON options

TEST(SamplerOptionsJson, RoundTripAndStrictness) {
  SamplerOptions o = cream(4096, 8, "per_sample");
  o.cream_sigma = 2.5;
  o.cream_mu = -1;
  o.cream_continuity_len = 12;
  const nlohmann::json j = sampler_options_to_json(o);
  const SamplerOptions back = sampler_options_from_json(j, "data.sampler");
  EXPECT_EQ(sampler_options_to_json(back), j);
  EXPECT_EQ(back.cream_continuity_len, 12);
  EXPECT_EQ(sampler_options_from_json(nlohmann::json::object(), "x").name, "contiguous");  // defaults

  auto error_of = [](const nlohmann::json& bad) {
    try {
      (void)sampler_options_from_json(bad, "data.sampler");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string unknown = error_of({{"cream_sigm", 3.0}});
  EXPECT_NE(unknown.find("'cream_sigm'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("'cream_sigma'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("data.sampler"), std::string::npos) << unknown;
  const std::string as_string = error_of({{"train_len", "4096"}});
  EXPECT_NE(as_string.find("data.sampler.train_len"), std::string::npos) << as_string;
  EXPECT_NE(as_string.find("an integer"), std::string::npos) << as_string;
  EXPECT_NE(error_of({{"train_len", 4096.5}}).find("an integer"), std::string::npos);
  EXPECT_NE(error_of({{"cream_sigma", "3"}}).find("a number"), std::string::npos);
  EXPECT_NE(error_of({{"name", 3}}).find("a string"), std::string::npos);
  EXPECT_NE(error_of({{"train_len", 18446744073709551615ull}}).find("out of range"), std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::array()).find("an object"), std::string::npos);
  // Integers are accepted where numbers are expected.
  EXPECT_EQ(sampler_options_from_json({{"cream_sigma", 4}}, "x").cream_sigma, 4.0);
}

// ---------------------------------------------------------------------------
// Coverage summary

TEST(Coverage, MatchesABruteForceCountOverAllPairs) {
  const int64_t l = 1000;
  auto s = make_sampler(opts("randpos", 50, l));
  auto c = make_sampler(cream(90, 11, "per_sample"));
  Rng rng(61);
  CoverageSummary fast, cream_fast;
  std::array<int64_t, 16> positions{}, distances{};
  std::vector<int64_t> log2(10, 0);  // bit_width(999) = 10
  for (int i = 0; i < 30; ++i) {
    const PositionPlan plan = s->sample(50, rng);
    accumulate_coverage(fast, plan, l);
    const auto& p = plan.position_id;
    for (int64_t a : p) ++positions[static_cast<size_t>(a * 16 / l)];
    for (size_t i2 = 0; i2 < p.size(); ++i2) {
      for (size_t j = i2 + 1; j < p.size(); ++j) {
        const int64_t d = p[j] - p[i2];
        ++distances[static_cast<size_t>(d * 16 / l)];
        ++log2[static_cast<size_t>(std::bit_width(static_cast<uint64_t>(d)) - 1)];
      }
    }
    accumulate_coverage(cream_fast, c->sample(400, rng), 990);
  }
  EXPECT_EQ(fast.position_bins, positions);
  EXPECT_EQ(fast.distance_bins, distances);
  EXPECT_EQ(fast.distance_log2_bins, log2);
  EXPECT_EQ(fast.plans, 30);
  EXPECT_EQ(fast.position_ids, 30 * 50);
  EXPECT_EQ(fast.pairs, 30 * 50 * 49 / 2);
  for (const CoverageSummary* sum : {&fast, &cream_fast}) {
    EXPECT_EQ(std::accumulate(sum->distance_bins.begin(), sum->distance_bins.end(), int64_t{0}), sum->pairs);
    EXPECT_EQ(std::accumulate(sum->distance_log2_bins.begin(), sum->distance_log2_bins.end(), int64_t{0}), sum->pairs);
  }
  // CREAM always covers the first and last sixteenth (head at 0, tail at L - 1).
  EXPECT_EQ(cream_fast.position_bins.front() > 0 && cream_fast.position_bins.back() > 0, true);

  const nlohmann::json j = coverage_to_json(fast);
  EXPECT_EQ(j["pairs"], fast.pairs);
  EXPECT_EQ(j["bin_edges"].size(), 17u);
  const std::string text = coverage_to_text(fast);
  EXPECT_NE(text.find("position ids by region"), std::string::npos) << text;
  EXPECT_NE(text.find("[512, 1024)"), std::string::npos) << text;
}

TEST(Coverage, RejectsBadPlans) {
  CoverageSummary s;
  EXPECT_THROW(accumulate_coverage(s, {{0, 1}, {5, 5}}, 10), std::invalid_argument);   // not increasing
  EXPECT_THROW(accumulate_coverage(s, {{0, 1}, {5, 10}}, 10), std::invalid_argument);  // outside [0, L)
  accumulate_coverage(s, {{0, 1}, {5, 9}}, 10);
  EXPECT_THROW(accumulate_coverage(s, {{0, 1}, {5, 9}}, 20), std::invalid_argument);   // L changed
}

// ---------------------------------------------------------------------------
// When plans are drawn: once per example, or anew each epoch

TEST(ExampleRng, OnceKeepsAPlanAcrossEpochsPerEpochRedraws) {
  SamplerOptions o;
  o.name = "cream";
  o.train_len = 256;
  o.target_len = 2048;
  o.cream_mode = "relativity";
  auto sampler = make_sampler(o);
  auto plan_of = [&](uint64_t example, uint64_t epoch) {
    Rng r = example_rng(42, example, epoch, o);
    return sampler->sample(4096, r).position_id;
  };
  EXPECT_EQ(plan_of(7, 0), plan_of(7, 3));   // once: same plan every epoch
  EXPECT_NE(plan_of(7, 0), plan_of(8, 0));   // different examples differ
  o.resample = "per_epoch";
  sampler = make_sampler(o);
  EXPECT_EQ(plan_of(7, 2), plan_of(7, 2));   // deterministic
  EXPECT_NE(plan_of(7, 0), plan_of(7, 1));   // but redrawn per epoch
  o.resample = "sometimes";
  EXPECT_THROW(make_sampler(o), std::invalid_argument);
}

}  // namespace
}  // namespace ropex
