// ropex bench: its JSON line has baseline_hf.py's fields, its FLOP count follows bench/FLOPS.md
// (checked against the model's real parameter count), its first loss is ln(vocab) at random init,
// and bench/compare.py puts it beside a transformers line from the same machine with a ratio.
#include "models/llama.h"
#include "test_util.h"
#include "tests/tolerance.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace ropex {
namespace {
using namespace ropex::test;
using json = nlohmann::json;

TEST(Bench, RopexAndTransformersLinesCompareSideBySide) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TempDir dir("bench");
  const std::string ours = dir.str() + "/ropex.jsonl", theirs = dir.str() + "/hf.jsonl";
  const std::string common = " --shape debug --seq 64 --batch 2 --dtype float32 --device cpu --warmup 1 --steps 2 --json --out ";
  std::string out;
  ASSERT_EQ(run_command("'" + ropex_binary() + "' bench" + common + ours + " --breakdown-steps 1", &out), 0) << out;
  ASSERT_EQ(run_python(py, "../bench/baseline_hf.py", {"--shape", "debug", "--seq", "64", "--batch", "2", "--dtype", "float32",
                                                        "--device", "cpu", "--warmup", "1", "--steps", "2", "--json", "--out", theirs},
                       &out), 0) << out;
  std::ifstream in(ours);
  std::string line;
  std::getline(in, line);
  const json r = json::parse(line);
  for (const char* k : {"impl", "shape", "params", "seq", "batch", "dtype", "device", "ckpt", "tokens_per_s", "step_ms", "fwd_ms",
                        "bwd_ms", "opt_ms", "peak_mem_gib", "tensor_peak_bytes", "flops_per_token", "mfu"})
    EXPECT_TRUE(r.contains(k)) << k;
  EXPECT_EQ(r["impl"], "ropex");
  EXPECT_GT(r["tensor_peak_bytes"].get<int64_t>(), 0);  // counted on the CPU (trainer/cpu_tensor_count.h)
  EXPECT_GT(r["tokens_per_s"].get<double>(), 0);
  // Both are float64 from the same step time (printed with 17 digits, exact): 3 operations within 1 ulp
  // (2u) each on either side, 16u with margin.
  EXPECT_NEAR(r["tokens_per_s"].get<double>(), 2 * 64 / (r["step_ms"].get<double>() / 1e3),
              16 * tol::kFloat64 * r["tokens_per_s"].get<double>());
  {
    // Random init; three steps at lr 1e-5 move no weight by more than 3e-5 (AdamW), 0.15% of its std.
    LlamaConfig debug;
    debug.vocab_size = 500, debug.hidden_size = 64;  // the debug shape (cmd_bench.cpp)
    EXPECT_NEAR(r["loss"].get<double>(), std::log(500.0), tol::random_init_loss_band(debug));
  }

  // FLOPs per token: 6 x (every matmul parameter: all linears, lm_head included, not the embedding)
  // + 6 x layers x T x heads x head_dim, counted from a real model.
  LlamaConfig c;
  c.vocab_size = 500, c.hidden_size = 64, c.intermediate_size = 128, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.tie_word_embeddings = false;
  LlamaForCausalLM m(c);
  int64_t total = 0, embed = 0;
  for (const auto& p : m->named_parameters()) {
    total += p.value().numel();
    if (p.key().find("embed_tokens") != std::string::npos) embed += p.value().numel();
    if (p.key().find("norm") != std::string::npos) embed += p.value().numel();  // norms are not matmuls either
  }
  EXPECT_EQ(r["params"].get<int64_t>(), total);
  EXPECT_DOUBLE_EQ(r["flops_per_token"].get<double>(), 6.0 * static_cast<double>(total - embed) + 6.0 * 2 * 64 * 64);

  const json hf = json::parse(std::ifstream(theirs));
  EXPECT_EQ(hf["impl"], "hf-eager");
  EXPECT_EQ(hf["flops_per_token"].get<double>(), r["flops_per_token"].get<double>()) << "same FLOP formula on both sides";
  ASSERT_EQ(run_python(py, "../bench/compare.py", {ours, theirs}, &out), 0) << out;
  EXPECT_NE(out.find("debug"), std::string::npos) << out;
  EXPECT_NE(out.find("ropex/eager"), std::string::npos) << out;
}

}  // namespace
}  // namespace ropex
