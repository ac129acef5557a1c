// HF directories in and out: export round trips (single file and sharded) that transformers loads
// with identical logits and no config warnings, ropex reloading its own export bit-exactly, and bad
// input (config.json and weights) failing with messages that name the file and tensor/key.
#include "models/hf_checkpoint.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"
#include "tests/train_fixture.h"

#include <filesystem>
#include <fstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 32;
  return c;
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream out(p);
  out << s;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// A valid tiny HF directory written by ropex itself.
void write_tiny(const std::string& dir, LlamaConfig c = tiny_config()) {
  LlamaForCausalLM m(c);
  m->init_weights(7);
  save_pretrained(m, dir);
}

TEST(HFExport, RoundTripsThroughTransformersSingleAndSharded) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const std::string ref = reference_dir(py);
  for (const std::string name : {"gqa_tied", "yarn_v5", "head_dim_bias", "linear_v4", "llama3_v5"}) {
    SCOPED_TRACE(name);
    LlamaForCausalLM model = load_pretrained(ref + "/" + name);
    for (uint64_t shard : {uint64_t{0}, uint64_t{20000}}) {
      TempDir out("export");
      SaveOptions so;
      so.max_shard_bytes = shard;
      save_pretrained(model, out.str(), so);
      EXPECT_EQ(fs::exists(out.path / "model.safetensors.index.json"), shard != 0);
      // ropex reads its own export back bit-exactly.
      LlamaForCausalLM again = load_pretrained(out.str());
      auto a = model->named_parameters(), b = again->named_parameters();
      ASSERT_EQ(a.size(), b.size());
      for (auto& p : a) EXPECT_TRUE(at::equal(p.value(), b[p.key()])) << p.key();
      // transformers loads it with the same logits, the same rope type and no config warnings.
      const LlamaConfig& c = model->config();
      std::string out_text;
      // Two transformers float32 forwards of the same weights, possibly under other CPU kernels (the
      // reference was made once, natively): the forward's rounding at the reference's length.
      const std::string ref_file = ref + "/" + name + "/reference.safetensors";
      int64_t T = 0;
      const st::SafetensorsFile ref_st(ref_file);
      for (const auto& info : ref_st.tensors())
        if (info.name == "input_ids") T = info.shape.at(1);
      ASSERT_GT(T, 0) << ref_file << " lacks input_ids";
      int rc = run_python(py, "hf_check.py", {"export", out.str(), ref_file, "--limit", std::to_string(tol::llama_forward(c, T)),
                                              "--rope-type", c.rope.type, "--max-pos", std::to_string(c.max_position_embeddings)},
                          &out_text);
      EXPECT_EQ(rc, 0) << out_text;
    }
  }
}

TEST(HFExport, ConfigCarriesBothRopeLayoutsAndLegacyOption) {
  LlamaConfig c = tiny_config();
  c.rope.type = "linear";
  c.rope.factor = 8;
  c.max_position_embeddings = 256;
  nlohmann::json j = config_to_json(c);
  EXPECT_EQ(j["rope_scaling"]["type"], "linear");
  EXPECT_EQ(j["rope_scaling"]["rope_type"], "linear");
  EXPECT_TRUE(j["rope_scaling"]["factor"].is_number_float());
  EXPECT_EQ(j["rope_parameters"]["rope_theta"], 10000.0);
  ConfigWriteOptions legacy;
  legacy.legacy_linear = true;
  nlohmann::json l = config_to_json(c, legacy);
  EXPECT_EQ(l["rope_scaling"], (nlohmann::json{{"type", "linear"}, {"factor", 8.0}}));
  EXPECT_FALSE(l.contains("rope_parameters"));
  // Reading the written config gives back the same scaling.
  LlamaConfig back = config_from_json(j, "written");
  EXPECT_EQ(back.rope.type, "linear");
  EXPECT_EQ(back.rope.factor, 8.0);
  EXPECT_EQ(back.max_position_embeddings, 256);
}

TEST(HFConfig, ReadsV4AndV5LayoutsAndRopeScalingWins) {
  nlohmann::json base = config_to_json(tiny_config());
  base.erase("rope_parameters");
  base["rope_theta"] = 5e5;
  base["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2}};
  LlamaConfig v4 = config_from_json(base, "v4");
  EXPECT_EQ(v4.rope.type, "dynamic");
  EXPECT_EQ(v4.rope_theta, 5e5);
  nlohmann::json v5j = base;
  v5j.erase("rope_scaling");
  v5j.erase("rope_theta");
  v5j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 1e6}};
  LlamaConfig v5 = config_from_json(v5j, "v5");
  EXPECT_EQ(v5.rope.type, "yarn");
  EXPECT_EQ(v5.rope_theta, 1e6);
  EXPECT_EQ(v5.rope.original_max_position_embeddings, 32);  // filled from max_position_embeddings, as 5.x does
  v5j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 3.0}};
  EXPECT_EQ(config_from_json(v5j, "both").rope.type, "linear");
}

TEST(HFConfig, BadConfigsNameFileAndKey) {
  TempDir d("badcfg");
  const fs::path p = d.path / "config.json";
  write_text(p, "{\"vocab_size\": 10,");
  expect_error([&] { load_config(p.string()); }, {p.string(), "not valid JSON"});
  write_text(p, "[1, 2]");
  expect_error([&] { load_config(p.string()); }, {p.string(), "expected a JSON object"});
  nlohmann::json j = config_to_json(tiny_config());
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json k = j;
    edit(k);
    write_text(p, k.dump());
  };
  with([](auto& k) { k.erase("hidden_size"); });
  expect_error([&] { load_config(p.string()); }, {p.string(), "hidden_size", "missing"});
  with([](auto& k) { k["num_attention_heads"] = "four"; });
  expect_error([&] { load_config(p.string()); }, {"num_attention_heads", "expected an integer"});
  with([](auto& k) { k["num_key_value_heads"] = 3; });
  expect_error([&] { load_config(p.string()); }, {"num_key_value_heads", "must divide"});
  with([](auto& k) { k["rope_scaling"] = {{"type", "spline"}, {"factor", 2.0}}; });
  expect_error([&] { load_config(p.string()); }, {"rope_type", "spline", "allowed", "yarn"});
  with([](auto& k) { k["rope_scaling"] = {{"type", "linear"}, {"factor", 0.5}}; });
  expect_error([&] { load_config(p.string()); }, {"factor", "needs factor > 1"});
  with([](auto& k) { k["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}, {"fator", 3}}; });
  expect_error([&] { load_config(p.string()); }, {"rope_scaling.fator", "unknown"});
  with([](auto& k) { k["model_type"] = "gemma"; });  // mistral and qwen2 load (tests/test_model_families.cpp)
  expect_error([&] { load_config(p.string()); }, {"model_type", "gemma"});
  expect_error([&] { load_config((d.path / "nope.json").string()); }, {"nope.json", "cannot open"});
}

TEST(HFCheckpoint, StrictLoadReportsMissingUnexpectedAndShapeProblemsByName) {
  TempDir d("badckpt");
  write_tiny(d.str());
  // Rewrite the weights without one tensor and with an extra one.
  {
    st::CheckpointReader r(d.str());
    std::vector<st::TensorView> views;
    for (const auto& n : r.names())
      if (n != "model.layers.1.mlp.up_proj.weight") views.push_back({n, r.info(n).dtype, r.info(n).shape, r.data(n)});
    float extra[4] = {1, 2, 3, 4};
    views.push_back({"model.layers.9.self_attn.q_proj.weight", st::DType::F32, {2, 2}, extra});
    TempDir tmp("w");
    st::write_checkpoint(tmp.str(), views, 0);
    fs::copy_file(tmp.path / "model.safetensors", d.path / "model.safetensors", fs::copy_options::overwrite_existing);
  }
  expect_error([&] { load_pretrained(d.str()); },
               {d.str(), "missing tensors", "model.layers.1.mlp.up_proj.weight", "unexpected tensors",
                "model.layers.9.self_attn.q_proj.weight"});
  LoadOptions lax;
  lax.strict = false;
  EXPECT_NO_THROW(load_pretrained(d.str(), lax));

  // A shape that disagrees with config.json.
  TempDir e("shape");
  write_tiny(e.str());
  nlohmann::json cfg = read_json(e.path / "config.json");
  cfg["intermediate_size"] = 40;
  write_text(e.path / "config.json", cfg.dump());
  expect_error([&] { load_pretrained(e.str()); }, {"model.safetensors", "mlp.gate_proj.weight", "has shape", "[32, 48]"});

  // An integer tensor where a weight belongs.
  TempDir f("dtype");
  write_tiny(f.str());
  {
    st::CheckpointReader r(f.str());
    std::vector<st::TensorView> views;
    std::vector<int32_t> ints(64 * 32, 1);
    for (const auto& n : r.names()) {
      if (n == "model.embed_tokens.weight") views.push_back({n, st::DType::I32, {64, 32}, ints.data()});
      else views.push_back({n, r.info(n).dtype, r.info(n).shape, r.data(n)});
    }
    TempDir tmp("w");
    st::write_checkpoint(tmp.str(), views, 0);
    fs::copy_file(tmp.path / "model.safetensors", f.path / "model.safetensors", fs::copy_options::overwrite_existing);
  }
  expect_error([&] { load_pretrained(f.str()); }, {"model.embed_tokens.weight", "I32", "floating-point"});

  // No weights at all / not a directory.
  TempDir g("noweights");
  write_text(g.path / "config.json", config_to_json(tiny_config()).dump());
  expect_error([&] { load_pretrained(g.str()); }, {g.str()});
  expect_error([&] { load_pretrained((g.path / "missing").string()); }, {"missing", "not a directory"});
}

TEST(HFCheckpoint, TruncatedWeightsFileIsAnErrorNotACrash) {
  TempDir d("trunc");
  write_tiny(d.str());
  const fs::path w = d.path / "model.safetensors";
  fs::resize_file(w, fs::file_size(w) / 2);
  expect_error([&] { load_pretrained(d.str()); }, {"model.safetensors"});
}

TEST(HFCheckpoint, TiedCheckpointWithLmHeadStillLoads) {
  TempDir d("tied");
  LlamaConfig c = tiny_config();
  c.tie_word_embeddings = true;
  write_tiny(d.str(), c);
  st::CheckpointReader r(d.str());
  EXPECT_FALSE(r.contains("lm_head.weight"));  // never written when tied
  std::vector<st::TensorView> views;
  for (const auto& n : r.names()) views.push_back({n, r.info(n).dtype, r.info(n).shape, r.data(n)});
  views.push_back({"lm_head.weight", r.info("model.embed_tokens.weight").dtype, r.info("model.embed_tokens.weight").shape,
                   r.data("model.embed_tokens.weight")});
  views.push_back({"model.rotary_emb.inv_freq", st::DType::F32, {4}, r.data("model.norm.weight")});
  TempDir tmp("w");
  st::write_checkpoint(tmp.str(), views, 0);
  fs::copy_file(tmp.path / "model.safetensors", d.path / "model.safetensors", fs::copy_options::overwrite_existing);
  EXPECT_NO_THROW(load_pretrained(d.str()));
}

}  // namespace
}  // namespace ropex::test

namespace ropex::test {
namespace {
// Streaming load (hf_checkpoint.h): `ropex score` of a 51M-parameter float32 model peaks at no more
// than the model's own bytes, its largest tensor and a small buffer above the same command on a
// tiny model (the process, the tokenizer, the scoring). Building the model in float32 first and then
// copying the weights in from a mapping whose pages stay resident (what ropex did before) costs
// about 1.6 times the model here (the mapping's pages stayed resident).
TEST(HFCheckpoint, LoadHoldsOneCopyOfTheModel) {
  ROPEX_SKIP_PEAK_RSS_CHECKS_UNDER_ASAN();
  TinySetup t;
  const std::string big = (t.dir.path / "big").string();
  ASSERT_EQ(t.run("new-model --output " + big + " --tokenizer " + (t.dir.path / "tok.model").string() +
                  " --set vocab_size=320 --set hidden_size=1024 --set intermediate_size=2816 --set num_hidden_layers=4"
                  " --set num_attention_heads=8 --set num_key_value_heads=8 --set max_position_embeddings=64"),
            0)
      << t.out_text;
  const std::string text = (t.dir.path / "corpus.txt").string();
  auto score = [&](const std::string& model) {
    return peak_rss_bytes({ropex_binary(), "score", "--model", model, "--text", text, "--max-tokens", "32", "--device", "cpu",
                           "--dtype", "float32"});
  };
  const int64_t model_bytes = static_cast<int64_t>(std::filesystem::file_size(big + "/model.safetensors"));
  // The allowance: the model, its largest tensor (one tensor's conversion buffer) and a
  // small buffer, here 32 MiB: scoring 32 tokens keeps well under 1 MiB of activations and logits,
  // and the rest is room for the allocator's rounding of 40 freshly mapped tensors.
  const int64_t largest = int64_t{1024} * 2816 * 4, buffer = int64_t{32} << 20;
  const int64_t tiny = score(t.model()), loaded = score(big);
  std::cout << "[load] score peak RSS: tiny model " << tiny / (1 << 20) << " MiB, " << model_bytes / (1 << 20)
            << " MiB model " << loaded / (1 << 20) << " MiB\n";
  // Measured by hand on the same layers with a vocabulary of 8000 (a 259 MiB model): ropex before
  // the change peaked 424 MiB above the tiny run (over this limit), after it 151 MiB. The tiny run's
  // peak includes start-up memory that the larger run has released by the time its weights arrive,
  // so the difference can be below the model's size; the weights' values are the parity tests' business.
  EXPECT_LE(loaded - tiny, model_bytes + largest + buffer);
  EXPECT_GT(loaded, tiny);
}
}  // namespace
}  // namespace ropex::test
