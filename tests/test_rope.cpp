// Frequency scaling against transformers (default, linear, dynamic, yarn, llama3) and against an
// independent float64 evaluation of the formulas (ntk, dynamic-yarn), over the grid written by
// tests/rope_reference.py: head_dim 64/128, rope_theta 1e4/5e5/1e6, factors 2..64 with
// non-integers, original lengths 2048/4096/8192, non-default betas, truncate on/off, mscale, the
// dynamic types below and above their switch points. Each case's limit is derived from the float32
// operations both sides run (inv_freq_limit below). Plus the rotary application itself and the config
// errors a user can make.
#include "models/rope.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"

#include <fstream>

namespace ropex::test {
namespace {

nlohmann::json rope_cases(const std::string& py) {
  static nlohmann::json cached;
  if (!cached.is_null()) return cached;
  TempDir d("rope-ref");
  const std::string path = (d.path / "rope.json").string();
  std::string out;
  int rc = run_python(py, "rope_reference.py", {path}, &out);
  if (rc != 0) throw std::runtime_error("rope_reference.py failed: " + out);
  std::ifstream in(path);
  cached = nlohmann::json::parse(in);
  return cached;
}

TEST(RopeParity, InvFreqAndAttentionFactorMatchTransformersAndFormulas) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  nlohmann::json cases = rope_cases(py);
  ASSERT_GT(cases.size(), 1000u);
  std::map<std::string, int> per_type;
  std::map<std::string, double> worst;
  for (const auto& c : cases) {
    const std::string label = c["config"].dump() + " seq_len=" + std::to_string(c["seq_len"].get<int64_t>());
    LlamaConfig cfg = config_from_json(c["config"], "case");
    RopeParams p = compute_rope_params(cfg, c["seq_len"].get<int64_t>());
    std::vector<double> expected = c["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(p.inv_freq.numel(), static_cast<int64_t>(expected.size())) << label;
    at::Tensor exp = at::tensor(expected, at::kDouble);
    at::Tensor rel = ((p.inv_freq.to(at::kDouble) - exp).abs() / exp.abs());
    const double e = rel.max().item<double>();
    EXPECT_LE(e, tol::inv_freq(cfg, c["seq_len"].get<int64_t>(), *std::min_element(expected.begin(), expected.end()),
                               c["source"] == "formula")) << label;
    const double a = c["attention_factor"].get<double>();
    EXPECT_NEAR(p.attention_factor, a, tol::kAttentionFactor * std::abs(a)) << label;
    const std::string key = cfg.rope.type + " (" + c["source"].get<std::string>() + ")";
    per_type[key]++;
    worst[key] = std::max(worst[key], e);
  }
  for (const auto& [t, n] : per_type) std::cout << "[rope] " << t << ": " << n << " cases, worst relative error " << worst[t] << "\n";
  for (const std::string t : {"default", "linear", "dynamic", "yarn", "llama3", "ntk", "dynamic-yarn"})
    EXPECT_TRUE(std::any_of(per_type.begin(), per_type.end(), [&](const auto& kv) { return kv.first.rfind(t + " ", 0) == 0; }))
        << "no case for " << t;
}

TEST(Rope, RotateHalfAndApplyMatchTheDefinition) {
  at::Tensor x = at::randn({2, 3, 5, 8}, at::kDouble);
  at::Tensor r = rotate_half(x);
  EXPECT_TRUE(at::equal(r.narrow(-1, 0, 4), -x.narrow(-1, 4, 4)));
  EXPECT_TRUE(at::equal(r.narrow(-1, 4, 4), x.narrow(-1, 0, 4)));
  // Rotating a pair (x_i, x_{i+D/2}) by angle p*inv_freq[i] preserves its norm and, for position 0, is the identity.
  LlamaConfig c;
  c.hidden_size = 32;
  c.num_attention_heads = 4;  // head_dim 8
  RopeParams p = compute_rope_params(c);
  at::Tensor pos = at::tensor({0L, 1L, 7L, 1000L, 262143L}, at::kLong).unsqueeze(0);
  auto [cos, sin] = rope_cos_sin(p, pos, at::kDouble);
  at::Tensor q = at::randn({1, 1, 5, 8}, at::kDouble);
  at::Tensor rq = apply_rope(q, cos, sin);
  // At position 0, cos = 1 and sin = 0 exactly (float32 cos(0), sin(0)), so x * 1 + r * 0 is x exactly.
  EXPECT_TRUE(at::equal(rq.select(2, 0), q.select(2, 0)));
  at::Tensor pair_norm = (q.narrow(-1, 0, 4).pow(2) + q.narrow(-1, 4, 4).pow(2));
  at::Tensor rpair_norm = (rq.narrow(-1, 0, 4).pow(2) + rq.narrow(-1, 4, 4).pow(2));
  // The angles are float32 (as transformers'), so cos^2 + sin^2 = 1 holds to float32 rounding: cos and sin
  // each within 1 ulp (2u), squared and added: 2 * 2 * 2u + 2u = 10u relative; the rotation's own
  // float64 products and the norms add ~8 float64 ulps. Limit 2 * 10u.
  EXPECT_TRUE(at::allclose(pair_norm, rpair_norm, 20 * tol::kFloat32, 0));
  // Relative property: <R(m)q, R(n)k> depends on m - n only.
  at::Tensor k = at::randn({1, 1, 1, 8}, at::kDouble);
  auto dot_at = [&](int64_t m, int64_t n) {
    at::Tensor pm = at::tensor({m, n}, at::kLong).unsqueeze(0);
    auto [cc, ss] = rope_cos_sin(p, pm, at::kDouble);
    at::Tensor both = at::cat({q.select(2, 0).unsqueeze(2), k}, 2);
    at::Tensor r2 = apply_rope(both, cc, ss);
    return (r2.select(2, 0) * r2.select(2, 1)).sum().item<double>();
  };
  // Each side sums 4 rotated pairs, each |q_pair| |k_pair| <= 72 (randn entries below 6) times the
  // cosine of its relative angle; the angles are float32 (as transformers'): each rounded (p up to 107:
  // 107u absolute) and cos/sin within 2u, so a pair's term moves by at most 72 * 2 * (107 + 2)u. Both
  // sides: 2 * 4 * 72 * 218u = 1.3e5u = 7.5e-3 at worst.
  EXPECT_NEAR(dot_at(10, 3), dot_at(107, 100), 2 * 4 * 72 * 218 * tol::kFloat32);
}

TEST(Rope, AttentionFactorScalesCosAndSin) {
  LlamaConfig c;
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  c.rope.type = "yarn";
  c.rope.factor = 16;
  c.rope.original_max_position_embeddings = 4096;
  RopeParams p = compute_rope_params(c);
  EXPECT_NEAR(p.attention_factor, 0.1 * std::log(16.0) + 1.0, tol::kAttentionFactor);  // the same float64 expression
  auto [cos, sin] = rope_cos_sin(p, at::arange(50, at::kLong).unsqueeze(0), at::kFloat);
  at::Tensor norm2 = cos.pow(2) + sin.pow(2);
  // float32: cos and sin within 1 ulp (2u), each times the factor (u), squared and added: 2 * (2 * 3u) + u
  // = 13u relative; the expected value is float64. Limit 2 * 13u.
  EXPECT_TRUE(at::allclose(norm2, at::full_like(norm2, p.attention_factor * p.attention_factor), 26 * tol::kFloat32, 0));
}

TEST(Rope, BadScalingConfigsNameTheKey) {
  auto parse = [](nlohmann::json rope) { return rope_scaling_from_json(rope, "cfg.json", 0); };
  expect_error([&] { parse({{"rope_type", "ntk-by-parts"}, {"factor", 2.0}}); }, {"cfg.json", "unknown rope type", "ntk-by-parts", "dynamic-yarn", "llama3"});
  expect_error([&] { parse({{"rope_type", "linear"}, {"factor", 1.0}}); }, {"factor", "needs factor > 1"});
  expect_error([&] { parse({{"rope_type", "ntk"}, {"factor", 0.5}}); }, {"factor"});
  expect_error([&] { parse({{"rope_type", "yarn"}, {"factor", 4.0}}); }, {"original_max_position_embeddings", "yarn"});
  expect_error([&] { parse({{"rope_type", "dynamic-yarn"}, {"factor", 1.0}}); }, {"original_max_position_embeddings"});
  expect_error([&] { parse({{"rope_type", "llama3"}, {"factor", 8.0}, {"original_max_position_embeddings", 8192}}); }, {"low_freq_factor"});
  expect_error([&] { parse({{"rope_type", "yarn"}, {"factor", "8"}, {"original_max_position_embeddings", 4096}}); }, {"factor", "expected a number"});
  expect_error([&] { parse({{"rope_type", "linear"}, {"factor", 2.0}, {"scale", 2.0}}); }, {"rope_scaling.scale", "unknown"});
  expect_error([&] { parse({{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 4096}, {"beta_fast", 1.0}, {"beta_slow", 8.0}}); },
               {"beta_fast", "beta_slow"});
  EXPECT_NO_THROW(parse({{"type", "dynamic"}, {"factor", 2.0}}));
}

}  // namespace
}  // namespace ropex::test
