// Mistral, Qwen2, Llama-3.2-shaped and LongRoPE models against transformers: logits, loss and every
// parameter's gradient on tiny random models saved by transformers' own classes
// (tests/make_family_reference.py), ropex's export loading back in transformers as the same class with
// the same logits (tests/family_check.py), LongRoPE's frequencies and attention factor against
// transformers' rotary embedding below and above the switch length, `inspect rope` showing both sets,
// the config errors a user can make with these families, and `ropex train` of each family ending in an
// export that transformers loads as the family's class with ropex's logits.
//
// Limits, as in tests/test_hf_parity.cpp (tests/tolerance.h's rounding model for the case's shape and
// length): float32 logits tol::llama_forward; the loss tol::mean_nll; gradients tol::llama_backward;
// bfloat16 logits 4 times transformers' own bfloat16-vs-float32 distance;
// inv_freq tol::inv_freq (transformers as the source: the same float32 operations on both sides);
// the attention factor tol::kAttentionFactor (float64 on both sides).
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "tests/parity_check.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"
#include "tests/train_fixture.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;

std::string quote_arg(const std::string& s) { return "'" + s + "'"; }  // paths here hold no quote

// The families' reference directory, written once per reference directory (the ctest fixture
// removes it for each run). Written to a private directory and renamed into place, so test
// processes running in parallel never see a half-written one.
std::string family_dir(const std::string& py) {
  const fs::path dir = fs::path(reference_dir(py)) / "families";
  if (fs::exists(dir / "cases.json")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(::getpid());
  std::string out;
  const int rc = run_python(py, "make_family_reference.py", {tmp.string()}, &out);
  if (rc != 0) throw std::runtime_error("make_family_reference.py failed (" + std::to_string(rc) + "): " + out);
  std::error_code ec;
  fs::rename(tmp, dir, ec);  // another process may have won the race: its directory is the same
  if (ec) fs::remove_all(tmp);
  return dir.string();
}

struct FamilyCase {
  std::string name, file, architecture;
};

std::vector<FamilyCase> family_cases() {
  // Must list every file make_family_reference.py writes (checked by EveryCaseIsTested).
  return {{"mistral_gqa", "reference_T40", "MistralForCausalLM"},
          {"mistral_default_window", "reference_T48", "MistralForCausalLM"},
          {"mistral_window", "reference_T48", "MistralForCausalLM"},
          {"mistral_window", "reference_T40", "MistralForCausalLM"},
          {"qwen2_tied", "reference_T40", "Qwen2ForCausalLM"},
          {"qwen2_yarn", "reference_T150", "Qwen2ForCausalLM"},
          {"llama32_like", "reference_T100", "LlamaForCausalLM"},
          {"longrope_llama", "reference_T50", "LlamaForCausalLM"},
          {"longrope_llama", "reference_T64", "LlamaForCausalLM"},
          {"longrope_llama", "reference_T65", "LlamaForCausalLM"},
          {"longrope_llama", "reference_T60", "LlamaForCausalLM"},
          {"longrope_phi3_layout", "reference_T30", "LlamaForCausalLM"},
          {"longrope_phi3_layout", "reference_T100", "LlamaForCausalLM"},
          {"longrope_qwen2_attention_factor", "reference_T40", "Qwen2ForCausalLM"},
          {"longrope_qwen2_attention_factor", "reference_T120", "Qwen2ForCausalLM"}};
}

void PrintTo(const FamilyCase& c, std::ostream* os) { *os << c.name << "/" << c.file; }

std::map<std::string, at::Tensor> load_reference(const std::string& path) {
  st::SafetensorsFile f(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& info : f.tensors()) out[info.name] = tensor_from_st(info, f.data(info), path);
  return out;
}

class FamilyParity : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(FamilyParity, LogitsLossAndGradientsMatchTransformers) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const FamilyCase c = GetParam();
  const std::string dir = family_dir(py) + "/" + c.name;
  auto ref = load_reference(dir + "/" + c.file + ".safetensors");
  const LlamaConfig cfg = load_config(dir);
  EXPECT_EQ(architecture_name(cfg.model_type), c.architecture);
  for (AttentionBackend backend : {AttentionBackend::reference, AttentionBackend::sdpa}) {
    SCOPED_TRACE(std::string("attention=") + attention_backend_name(backend));
    LlamaForCausalLM model = load_pretrained(dir);
    model->train();
    model->zero_grad();
    ForwardOptions fo;
    fo.attention = backend;
    at::Tensor logits = model->forward(ref["input_ids"], ref["position_ids"], fo);
    LossResult loss = causal_lm_loss(logits, ref["input_ids"]);
    loss.mean.backward();
    const ParityErrors e = expect_matches_reference(model, cfg, logits, loss.mean, ref, c.name);
    std::cout << "[family] " << c.name << "/" << c.file << " " << attention_backend_name(backend) << ": logits " << e.logits
              << " (limit " << e.logit_limit << "), loss " << e.loss << " (" << e.loss_limit << "), worst grad " << e.worst_grad
              << " (" << e.grad_limit << ")\n";
  }
}

// bfloat16 against the float32 reference: within 4 times the distance of transformers' own bfloat16 run
// of the same weights from its float32 run (the reasoning of tests/test_hf_parity.cpp's header).
TEST_P(FamilyParity, Bfloat16LogitsFollowTheFloat32Reference) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const FamilyCase c = GetParam();
  const std::string dir = family_dir(py) + "/" + c.name;
  auto ref = load_reference(dir + "/" + c.file + ".safetensors");
  LoadOptions lo;
  lo.dtype = at::kBFloat16;
  LlamaForCausalLM model = load_pretrained(dir, lo);
  torch::NoGradGuard ng;
  for (AttentionBackend backend : {AttentionBackend::reference, AttentionBackend::sdpa}) {
    ForwardOptions fo;
    fo.attention = backend;
    const at::Tensor logits = model->forward(ref["input_ids"], ref["position_ids"], fo);
    EXPECT_EQ(logits.scalar_type(), at::kBFloat16);
    const double limit = 4 * rel_err(ref["logits_bf16"], ref["logits"]);
    EXPECT_LE(rel_err(logits, ref["logits"]), limit) << c.name << " bf16 " << attention_backend_name(backend);
  }
}

// ropex's export of the model transformers saved: the same model_type and architecture, loads back
// in transformers as that class with the reference's logits (two float32 forwards of the same
// weights: the forward's limit), and in ropex bit-exactly with the same config.
TEST_P(FamilyParity, ExportLoadsBackInTransformersAsTheSameClass) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const FamilyCase c = GetParam();
  const std::string dir = family_dir(py) + "/" + c.name;
  LlamaForCausalLM model = load_pretrained(dir);
  TempDir out("family-export");
  save_pretrained(model, out.str());
  std::ifstream in(out.path / "config.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["architectures"], nlohmann::json::array({c.architecture}));
  EXPECT_EQ(j["model_type"], model->config().model_type);
  if (c.name == "llama32_like") {
    EXPECT_EQ(j["eos_token_id"], nlohmann::json::array({1, 2, 3}));  // the list is kept
  }
  LlamaForCausalLM again = load_pretrained(out.str());
  const LlamaConfig &a = model->config(), &b = again->config();
  EXPECT_EQ(b.model_type, a.model_type);
  EXPECT_EQ(b.sliding_window, a.sliding_window);
  EXPECT_EQ(b.qkv_bias, a.qkv_bias);
  EXPECT_EQ(b.rope.type, a.rope.type);
  EXPECT_EQ(b.rope.short_factor, a.rope.short_factor);
  EXPECT_EQ(b.rope.long_factor, a.rope.long_factor);
  EXPECT_EQ(b.rope.original_max_position_embeddings, a.rope.original_max_position_embeddings);
  EXPECT_EQ(b.rope.factor_from_lengths, a.rope.factor_from_lengths);
  auto pa = model->named_parameters(), pb = again->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (auto& p : pa) EXPECT_TRUE(at::equal(p.value(), pb[p.key()])) << p.key();
  const std::string ref_file = dir + "/" + c.file + ".safetensors";
  const int64_t T = load_reference(ref_file)["input_ids"].size(1);
  std::string text;
  const int rc = run_python(py, "family_check.py", {"export", out.str(), ref_file, "--limit", std::to_string(tol::llama_forward(a, T)),
                                                    "--arch", c.architecture, "--rope-type", a.rope.type}, &text);
  EXPECT_EQ(rc, 0) << text;
}

INSTANTIATE_TEST_SUITE_P(Cases, FamilyParity, ::testing::ValuesIn(family_cases()), [](const auto& info) {
  std::string n = info.param.name + "_" + info.param.file;
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

TEST(FamilyParityIndex, EveryCaseIsTested) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  std::ifstream in(family_dir(py) + "/cases.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::set<std::string> written, tested;
  for (const auto& [name, c] : j.items())
    for (const auto& f : c["files"]) written.insert(name + "/" + f.get<std::string>());
  for (const auto& c : family_cases()) tested.insert(c.name + "/" + c.file + ".safetensors");
  EXPECT_EQ(written, tested) << "make_family_reference.py and family_cases() disagree";
}

// LongRoPE: inv_freq and the attention factor after transformers' rotary embedding has run a forward
// at seq_len (short factors up to original_max_position_embeddings, long beyond), for factor given,
// absent (max_position_embeddings / original), attention_factor given and the Phi-3 top-level layout.
TEST(LongRope, FrequenciesAndAttentionFactorMatchTransformers) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TempDir d("longrope");
  const std::string path = (d.path / "longrope.json").string();
  std::string out;
  ASSERT_EQ(run_python(py, "family_check.py", {"longrope", path}, &out), 0) << out;
  std::ifstream in(path);
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 100u);
  size_t long_cases = 0;
  for (const auto& c : cases) {
    const int64_t seq_len = c["seq_len"].get<int64_t>();
    const std::string label = "seq_len=" + std::to_string(seq_len) + " " + c["config"].dump().substr(0, 300);
    const LlamaConfig cfg = config_from_json(c["config"], "case");
    ASSERT_EQ(cfg.rope.type, "longrope");
    const RopeParams p = compute_rope_params(cfg, seq_len);
    const std::vector<double> expected = c["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(p.inv_freq.numel(), static_cast<int64_t>(expected.size())) << label;
    const at::Tensor exp = at::tensor(expected, at::kDouble);
    const double e = ((p.inv_freq.to(at::kDouble) - exp).abs() / exp.abs()).max().item<double>();
    EXPECT_LE(e, tol::inv_freq(cfg, seq_len, *std::min_element(expected.begin(), expected.end()), false)) << label;
    const double a = c["attention_factor"].get<double>();
    EXPECT_NEAR(p.attention_factor, a, tol::kAttentionFactor * std::abs(a)) << label;
    long_cases += seq_len > cfg.rope.original_max_position_embeddings;
  }
  EXPECT_GT(long_cases, 0u);
  EXPECT_LT(long_cases, cases.size());
}

LlamaConfig longrope_config() {
  LlamaConfig c;
  c.hidden_size = 64;
  c.num_attention_heads = 4;  // head_dim 16: 8 pairs
  c.num_key_value_heads = 4;
  c.intermediate_size = 64;
  c.vocab_size = 64;
  c.num_hidden_layers = 1;
  c.max_position_embeddings = 256;
  c.rope.type = "longrope";
  c.rope.factor = 4.0;
  c.rope.original_max_position_embeddings = 64;
  c.rope.short_factor = {1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7};
  c.rope.long_factor = {2, 3, 4, 5, 6, 7, 8, 9};
  return c;
}

TEST(LongRope, ConfigRoundTripsThroughConfigJson) {
  for (bool from_lengths : {false, true}) {
    LlamaConfig c = longrope_config();
    c.rope.factor_from_lengths = from_lengths;
    if (!from_lengths) c.rope.attention_factor = 1.25;
    const nlohmann::json j = config_to_json(c);
    EXPECT_EQ(j["rope_scaling"]["rope_type"], "longrope");
    EXPECT_EQ(j["rope_parameters"]["short_factor"], nlohmann::json(c.rope.short_factor));
    EXPECT_EQ(j["original_max_position_embeddings"], 64);  // Phi-3's top-level key, read by 4.x and 5.x
    EXPECT_EQ(j["rope_scaling"].contains("factor"), !from_lengths);
    const LlamaConfig back = config_from_json(j, "written");
    EXPECT_EQ(back.rope.type, "longrope");
    EXPECT_EQ(back.rope.short_factor, c.rope.short_factor);
    EXPECT_EQ(back.rope.long_factor, c.rope.long_factor);
    EXPECT_EQ(back.rope.factor_from_lengths, from_lengths);
    EXPECT_EQ(back.rope.attention_factor, c.rope.attention_factor);
    EXPECT_EQ(back.rope.original_max_position_embeddings, 64);
    // Same frequencies on both sides of the switch (identical inputs, identical operations).
    for (int64_t L : {int64_t{0}, int64_t{64}, int64_t{65}}) {
      EXPECT_TRUE(at::equal(compute_rope_params(c, L).inv_freq, compute_rope_params(back, L).inv_freq)) << L;
      EXPECT_EQ(compute_rope_params(c, L).attention_factor, compute_rope_params(back, L).attention_factor);
    }
  }
}

TEST(LongRope, InspectRopeShowsBothSets) {
  LlamaConfig c = longrope_config();
  TempDir d("inspect-longrope");
  {
    std::ofstream out(d.path / "config.json");
    out << config_to_json(c).dump();
  }
  std::string text;
  ASSERT_EQ(run_command(quote_arg(ropex_binary()) + " inspect rope --model " + quote_arg(d.str()) + " --json", &text), 0) << text;
  const nlohmann::json j = nlohmann::json::parse(text.substr(text.find('{')));
  const auto as_vec = [](const at::Tensor& t) { return std::vector<double>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()); };
  EXPECT_EQ(j["inv_freq_short"].get<std::vector<double>>(), as_vec(compute_rope_params(c, 0).inv_freq));
  EXPECT_EQ(j["inv_freq_long"].get<std::vector<double>>(), as_vec(compute_rope_params(c, 65).inv_freq));
  EXPECT_EQ(j["rope_scaling"]["long_factor"], nlohmann::json(c.rope.long_factor));
  ASSERT_EQ(run_command(quote_arg(ropex_binary()) + " inspect rope --model " + quote_arg(d.str()), &text), 0) << text;
  EXPECT_NE(text.find("inv_freq short"), std::string::npos) << text;
  EXPECT_NE(text.find("inv_freq long"), std::string::npos) << text;
}

TEST(LongRope, BadConfigsNameTheKey) {
  auto parse = [](nlohmann::json rope) { return rope_scaling_from_json(rope, "cfg.json", 4096); };
  const std::vector<double> eight(8, 1.0);
  expect_error([&] { parse({{"rope_type", "longrope"}, {"long_factor", eight}}); }, {"cfg.json", "short_factor"});
  expect_error([&] { parse({{"rope_type", "longrope"}, {"short_factor", eight}}); }, {"cfg.json", "long_factor"});
  expect_error([&] { parse({{"rope_type", "longrope"}, {"short_factor", eight}, {"long_factor", {1.0, -2.0}}}); },
               {"long_factor[1]", "> 0"});
  expect_error([&] { parse({{"rope_type", "longrope"}, {"short_factor", "1,2"}, {"long_factor", eight}}); },
               {"short_factor", "list of numbers"});
  expect_error([&] { parse({{"rope_type", "linear"}, {"factor", 2.0}, {"short_factor", eight}}); }, {"short_factor", "longrope"});
  nlohmann::json j = config_to_json(longrope_config());
  j["rope_scaling"]["short_factor"] = std::vector<double>(6, 1.0);
  j["rope_scaling"]["long_factor"] = std::vector<double>(6, 1.0);
  j.erase("rope_parameters");
  expect_error([&] { config_from_json(j, "dir/config.json"); }, {"dir/config.json", "short_factor", "head_dim / 2 = 8"});
}

// Family config rules: transformers' defaults and the refusals.
TEST(ModelFamilies, ConfigKeysAndRefusals) {
  LlamaConfig base = longrope_config();
  base.rope = RopeScaling{};
  nlohmann::json llama = config_to_json(base);
  auto family = [&](const std::string& mt) {
    nlohmann::json j = llama;
    for (const char* k : {"attention_bias", "mlp_bias", "pretraining_tp"}) j.erase(k);
    j["model_type"] = mt;
    j["architectures"] = {architecture_name(mt)};
    return j;
  };
  // Mistral: no key = MistralConfig's 4096 window; null = none; a number = that window.
  nlohmann::json m = family("mistral");
  EXPECT_EQ(config_from_json(m, "m").sliding_window, 4096);
  m["sliding_window"] = nullptr;
  EXPECT_FALSE(config_from_json(m, "m").sliding_window.has_value());
  m["sliding_window"] = 100;
  EXPECT_EQ(config_from_json(m, "m").sliding_window, 100);
  m["sliding_window"] = 0;
  expect_error([&] { config_from_json(m, "m/config.json"); }, {"m/config.json", "sliding_window", "positive"});
  m["sliding_window"] = nullptr;
  m["attention_bias"] = true;  // MistralAttention has no biases whatever the key says
  EXPECT_FALSE(config_from_json(m, "m").attention_bias);
  // Qwen2: q/k/v biases, o_proj none; its sliding window refused.
  nlohmann::json q = family("qwen2");
  q["attention_bias"] = true;
  const LlamaConfig qc = config_from_json(q, "q");
  EXPECT_TRUE(qc.qkv_bias);
  EXPECT_FALSE(qc.attention_bias);
  LlamaForCausalLM qm(qc);
  auto params = qm->named_parameters();
  EXPECT_TRUE(params.contains("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE(params.contains("model.layers.0.self_attn.o_proj.bias"));
  int64_t n = 0;
  for (const auto& p : params) n += p.value().numel();
  EXPECT_EQ(n, parameter_count(qc));
  q["use_sliding_window"] = true;
  expect_error([&] { config_from_json(q, "q/config.json"); }, {"q/config.json", "use_sliding_window", "expected false"});
  q["use_sliding_window"] = false;
  q["layer_types"] = {"full_attention", "sliding_attention"};
  expect_error([&] { config_from_json(q, "q/config.json"); }, {"q/config.json", "layer_types[1]", "sliding_attention"});
  q["layer_types"] = {"full_attention"};
  q["max_window_layers"] = 3;
  EXPECT_EQ(config_from_json(q, "q").max_window_layers, 3);
  nlohmann::json g = family("qwen2");
  g["model_type"] = "gemma";
  g["architectures"] = {"GemmaForCausalLM"};
  expect_error([&] { config_from_json(g, "g/config.json"); }, {"g/config.json", "model_type", "gemma", "mistral", "qwen2"});
}

// The sliding window: both attention paths apply transformers' rule (key j visible to query i iff
// i - W < j <= i); a window at least as long as the keys changes nothing.
TEST(ModelFamilies, SlidingWindowAttention) {
  at::manual_seed(3);
  const at::Tensor q = at::randn({2, 4, 12, 8}), k = at::randn({2, 2, 12, 8}), v = at::randn({2, 2, 12, 8});
  const double scale = 1 / std::sqrt(8.0);
  const at::Tensor full = causal_attention(q, k, v, scale, AttentionBackend::reference);
  // Same kernel, same inputs, the window masks nothing: identical.
  EXPECT_TRUE(at::equal(causal_attention(q, k, v, scale, AttentionBackend::reference, 12), full));
  const at::Tensor win = causal_attention(q, k, v, scale, AttentionBackend::reference, 4);
  // Explicit float64 definition for query 7 of batch 0, head 3 (kv head 1): keys 4..7.
  const at::Tensor qi = q[0][3][7].to(at::kDouble), ks = k[0][1].narrow(0, 4, 4).to(at::kDouble), vs = v[0][1].narrow(0, 4, 4).to(at::kDouble);
  const at::Tensor expect = at::matmul(at::softmax(at::matmul(ks, qi) * scale, 0), vs);
  // float32 path of 8-term dot products, a 4-term softmax and a 4-term weighted sum: a few ulps of
  // values of size ~3; 1e3 u leaves a wide margin and still catches any wrong key (an O(0.1) change).
  EXPECT_TRUE(at::allclose(win[0][3][7].to(at::kDouble), expect, 0, 1e3 * tol::kFloat32)) << win[0][3][7] << expect;
  // SDPA with the window against the reference path: two float32 implementations of 8-term dots and
  // 4-term sums, errors of a few u each; 1e3 u as above.
  EXPECT_TRUE(at::allclose(causal_attention(q, k, v, scale, AttentionBackend::sdpa, 4), win, 0, 1e3 * tol::kFloat32));
  // And the window does change the output: queries past it lose keys whose softmax weights are
  // O(1/T) of values ~3, an O(0.1) change; 1e-3 is far above the float32 rounding above (1e3 u ~ 1e-4).
  EXPECT_FALSE(at::allclose(win, full, 0, 1e-3));
}

// `ropex train` on a Qwen2 (tied), a Mistral (window 16 < train_len 32) and a LongRoPE Llama (original
// 32, positions to 128: the long factors) model: two steps, then the run's export is the same family and
// transformers reproduces ropex's logits on it (two float32 forwards of the same weights: the forward's
// limit for the shape and length).
TEST(FamilyTrain, EachFamilyTrainsAndExportsAsItsOwnClass) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  struct Variant {
    std::string name, architecture, sets;
    std::function<void(LlamaConfig&)> edit;
  };
  const std::vector<Variant> variants = {
      {"qwen2", "Qwen2ForCausalLM", "", [](LlamaConfig& c) { c.model_type = "qwen2"; c.qkv_bias = true; c.tie_word_embeddings = true; }},
      {"mistral", "MistralForCausalLM", "", [](LlamaConfig& c) { c.model_type = "mistral"; c.sliding_window = 16; }},
      {"longrope", "LlamaForCausalLM", "--set rope.type=keep", [](LlamaConfig& c) {
         c.max_position_embeddings = 128;
         c.rope.type = "longrope";
         c.rope.factor_from_lengths = true;
         c.rope.original_max_position_embeddings = 32;
         c.rope.short_factor = {1.0, 1.1, 1.2, 1.3};
         c.rope.long_factor = {1.5, 2.5, 4.0, 6.0};
       }}};
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    TinySetup s;
    {
      LlamaConfig c = load_config(s.model());
      v.edit(c);
      LlamaForCausalLM m(c);
      m->init_weights(11);
      fs::remove(fs::path(s.model()) / "model.safetensors");
      save_pretrained(m, s.model());
    }
    const std::string run = s.dir.str() + "/run";
    ASSERT_EQ(s.train(run, "--set schedule.steps=2 " + v.sets), 0) << s.out_text;
    const auto m = metrics(run);
    ASSERT_FALSE(m.empty());
    const std::string exp = run + "/export";
    std::ifstream in(exp + "/config.json");
    const nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_EQ(j["architectures"], nlohmann::json::array({v.architecture}));
    LlamaForCausalLM trained = load_pretrained(exp);
    EXPECT_EQ(architecture_name(trained->config().model_type), v.architecture);
    LlamaConfig expected = load_config(s.model());  // the family's own settings survive training and export
    EXPECT_EQ(trained->config().qkv_bias, expected.qkv_bias);
    EXPECT_EQ(trained->config().sliding_window, expected.sliding_window);
    EXPECT_EQ(trained->config().tie_word_embeddings, expected.tie_word_embeddings);
    if (expected.rope.type == "longrope") {
      EXPECT_EQ(trained->config().rope.type, "longrope");
      EXPECT_EQ(trained->config().rope.long_factor, expected.rope.long_factor);
    }
    int steps_with_loss = 0;
    for (const auto& rec : m) steps_with_loss += rec.contains("loss") && rec["loss"].is_number() && std::isfinite(rec["loss"].get<double>());
    EXPECT_EQ(steps_with_loss, 2) << "two training steps with a finite loss expected";
    torch::NoGradGuard ng;
    const int64_t T = 100;
    at::Tensor ids = at::randint(0, 320, {1, T}, at::kLong), pos = at::arange(T, at::kLong).unsqueeze(0) + 20;
    at::Tensor logits = trained->forward(ids, pos).contiguous();
    const std::string ref = s.dir.str() + "/ref.safetensors";
    st::write_file(ref, {{"input_ids", st::DType::I64, {1, T}, ids.data_ptr()},
                         {"position_ids", st::DType::I64, {1, T}, pos.contiguous().data_ptr()},
                         {"logits", st::DType::F32, {1, T, 320}, logits.data_ptr()}});
    std::string out;
    EXPECT_EQ(run_python(py, "family_check.py", {"export", exp, ref, "--limit", std::to_string(tol::llama_forward(trained->config(), T)),
                                                 "--arch", v.architecture, "--rope-type", trained->config().rope.type}, &out), 0)
        << out;
  }
}

}  // namespace
}  // namespace ropex::test
