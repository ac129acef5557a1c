// `ropex plan` and `ropex train --dry-run` (trainer/plan.h, trainer/dry_run.h): the arithmetic for
// Llama-2-7B against the byte counts of the layout, the parameter count against a built model, the
// plan against measured peaks of small CPU runs, and the dry run's checks.
#include "models/hf_checkpoint.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "trainer/plan.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace ropex::test {
namespace {

LlamaConfig llama2_7b() {
  LlamaConfig c;
  c.vocab_size = 32000, c.hidden_size = 4096, c.intermediate_size = 11008, c.num_hidden_layers = 32;
  c.num_attention_heads = 32, c.num_key_value_heads = 32, c.max_position_embeddings = 4096;
  c.tie_word_embeddings = false;
  return c;
}

void write_json(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(2); }

// A model directory with only config.json, and a run config for it.
struct PlanDir {
  TempDir dir{"plan"};
  PlanDir(const LlamaConfig& c, const nlohmann::json& run) {
    std::filesystem::create_directories(dir.path / "model");
    write_json((dir.path / "model" / "config.json").string(), config_to_json(c, {}));
    nlohmann::json r = run;
    r["model"]["path"] = (dir.path / "model").string();
    if (!r.contains("data")) r["data"] = nlohmann::json::object();
    r["data"]["store"] = "unused";
    write_json(config(), r);
  }
  std::string config() const { return (dir.path / "run.json").string(); }
  nlohmann::json plan(const std::string& args) const {
    std::string out;
    const int rc = run_command("'" + ropex_binary() + "' plan " + config() + " --json " + args + " 2>&1", &out);
    if (rc != 0) throw std::runtime_error("ropex plan failed: " + out);
    return nlohmann::json::parse(out);
  }
};

TEST(Plan, CountsParametersOfABuiltModel) {
  LlamaConfig gqa_tied = llama2_7b();
  gqa_tied.num_key_value_heads = 8, gqa_tied.tie_word_embeddings = true, gqa_tied.attention_bias = true;
  gqa_tied.mlp_bias = true, gqa_tied.num_hidden_layers = 3;
  for (const LlamaConfig& c : {llama2_7b(), gqa_tied}) {
    LlamaForCausalLM m(c, at::TensorOptions().device(at::kMeta));  // no memory
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(count_params(c), n);
  }
  EXPECT_EQ(count_params(llama2_7b()), 6738415616);  // Llama-2-7B's published count
}

// Llama-2-7B, PI to 32K (the shipped config's settings) on 8 ranks, bfloat16 on CUDA: the model
// states are the layout's byte counts per parameter, exactly.
TEST(Plan, Llama2_7bOnEightRanks) {
  const PlanDir d(llama2_7b(), {{"model", {{"dtype", "bfloat16"}, {"activation_checkpointing", true}, {"device", "cuda"}}},
                                {"data", {{"train_len", 32768}}},
                                {"rope", {{"type", "linear"}, {"target_len", 32768}}},
                                {"batch", {{"micro_batch_size", 1}, {"grad_accum", 8}}}});
  // At ZeRO >= 1 a rank's shard is its chunk of every bucket, each padded to a multiple of 8: between
  // N/8 and N/8 plus one element per bucket (at most one bucket per parameter, 291 of them).
  const int64_t N = 6738415616, shard = (N + 7) / 8, buckets_at_most = 291;
  const nlohmann::json z0 = d.plan("--world 8 --gpu-memory 80GiB --set distributed.zero_stage=0");
  const nlohmann::json z1 = d.plan("--world 8 --gpu-memory 80GiB --set distributed.zero_stage=1");
  EXPECT_EQ(z0["params"].get<int64_t>(), N);
  EXPECT_EQ(z0["per_rank"]["weights_bytes"].get<int64_t>(), 2 * N);
  EXPECT_EQ(z0["per_rank"]["optimizer_bytes"].get<int64_t>(), 12 * N);      // masters + 2 moments, float32
  const int64_t z1_optimizer = z1["per_rank"]["optimizer_bytes"].get<int64_t>();  // the same, sharded 8 ways
  EXPECT_GE(z1_optimizer, 12 * shard);
  EXPECT_LE(z1_optimizer, 12 * (shard + buckets_at_most));
  EXPECT_EQ(z0["per_rank"]["gradients_bytes"].get<int64_t>(), 2 * 2 * N);   // gradients + flat buckets
  EXPECT_EQ(z1["per_rank"]["gradients_bytes"].get<int64_t>(), 2 * N + z1_optimizer / 6);  // + the reduced chunk
  // ZeRO-0 holds 16 bytes a parameter before activations: 100 GiB, more than an 80 GiB card.
  EXPECT_FALSE(z0["fits"].get<bool>());
  EXPECT_TRUE(z1["fits"].get<bool>());
  EXPECT_GT(z0["per_rank"]["total_bytes"].get<int64_t>(), 80LL << 30);
  EXPECT_LT(z1["per_rank"]["total_bytes"].get<int64_t>(), 80LL << 30);
  // Activations: checkpointing every layer < every 2nd < none; the plain loss's 12 bytes per
  // token x vocab (12.0 GiB at 32K) against the chunked loss's one chunk.
  const int64_t all = z1["per_rank"]["activations_bytes"].get<int64_t>();
  const int64_t half = d.plan("--world 8 --set distributed.zero_stage=1 --set model.activation_checkpointing=2")["per_rank"]
                           ["activations_bytes"].get<int64_t>();
  EXPECT_LT(all, half);
  EXPECT_LT(half, z1["per_rank"]["activations_no_checkpointing_bytes"].get<int64_t>());
  const nlohmann::json plain = d.plan("--world 8 --set distributed.zero_stage=1 --set model.loss_chunk_tokens=0");
  EXPECT_EQ(plain["per_rank"]["loss_bytes"].get<int64_t>(), 12LL * 32768 * 32000);
  // The chunked loss (MEMORY.md, bf16): the hidden-state gradient s·BTh, the float32 lm_head gradient
  // 4·Vh, one chunk's float32 logits with the bf16 logits and their gradient 6·CV, the chunk's bf16
  // weight-gradient product 2·Vh: 1.17 GiB against 11.7 GiB for the plain path.
  EXPECT_EQ(z1["per_rank"]["loss_bytes"].get<int64_t>(),
            2LL * 32768 * 4096 + 4LL * 32000 * 4096 + 6LL * 1024 * 32000 + 2LL * 32000 * 4096);
  // Tokens and FLOPs: 32768 x 8 x 8 tokens; 6 FLOPs per matmul parameter and token plus attention.
  EXPECT_EQ(z1["tokens_per_step"].get<int64_t>(), 32768LL * 8 * 8);
  const double matmul = 32.0 * (4 * 4096.0 * 4096 + 3 * 4096.0 * 11008) + 32000.0 * 4096;
  EXPECT_DOUBLE_EQ(z1["flops_per_step"].get<double>(), (6 * matmul + 6.0 * 32 * 32768 * 4096) * 32768 * 64);
  // Without a memory size (no GPU here), `fits` is null, not a guess.
  if (!torch::cuda::is_available()) EXPECT_TRUE(d.plan("--world 8")["fits"].is_null());
}

// The plan against one float32 training step of `ropex bench` on the CPU (forward, chunked or plain
// loss, backward, AdamW), for shapes where each phase is the peak. Two measures:
// * the peak of live tensor bytes, counted by bench's allocator (trainer/cpu_tensor_count.h): what
//   the plan's tensor terms (its total less the allowance) model. They may not be below it (the
//   plan is an upper estimate, else a run it lets start fails), and to be of use at most a quarter
//   above it (1.000-1.043 on the machine this was written on, the same with 1, 32 and 64 threads
//   and ATEN_CPU_CAPABILITY=default: the count does not depend on the CPU);
// * the process's peak RSS, which the whole plan must cover: the allowance is for what the count
//   does not see (libtorch's code and heap, thread stacks, malloc's arenas, BLAS scratch).
// The RSS less a tiny run's RSS is not a measure of the tensors: the process's own part differs
// between machines (0.45 GiB here, 0.63 GiB on CI) and is partly reused by the tensors, by an amount
// that also differs.
TEST(Plan, BoundsMeasuredCpuPeaks) {
  ROPEX_SKIP_PEAK_RSS_CHECKS_UNDER_ASAN();
  struct Case {
    const char* name;
    int64_t vocab, hidden, inter, layers, heads, kv, seq, batch, ckpt, chunk;
  };
  const Case cases[] = {
      {"vocab32k_long", 32000, 128, 256, 1, 2, 1, 16384, 1, 0, 1024},  // the loss is the peak
      {"layers_no_ckpt", 2000, 256, 688, 4, 4, 2, 4096, 2, 0, 1024},   // the layer backward
      {"plain_loss_ckpt2", 8000, 256, 688, 4, 4, 2, 2048, 2, 2, 0},    // the full logits, every 2nd layer
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    LlamaConfig c;
    c.vocab_size = k.vocab, c.hidden_size = k.hidden, c.intermediate_size = k.inter, c.num_hidden_layers = k.layers;
    c.num_attention_heads = k.heads, c.num_key_value_heads = k.kv, c.max_position_embeddings = k.seq;
    const PlanDir d(c, {{"model", {{"device", "cpu"}, {"dtype", "float32"}, {"activation_checkpointing", k.ckpt},
                                   {"loss_chunk_tokens", k.chunk}}},
                        {"data", {{"train_len", k.seq}}},
                        {"rope", {{"type", "keep"}}},
                        {"batch", {{"micro_batch_size", k.batch}}}});
    const nlohmann::json per_rank = d.plan("--world 1")["per_rank"];
    const int64_t planned = per_rank["total_bytes"].get<int64_t>();
    const int64_t modelled = planned - per_rank["allowance_bytes"].get<int64_t>();
    const std::string out = (d.dir.path / "bench.jsonl").string();
    const int64_t rss = peak_rss_bytes({ropex_binary(), "bench", "--dtype", "float32", "--device", "cpu", "--warmup", "1",
                                        "--steps", "1", "--breakdown-steps", "0", "--out", out, "--config",
                                        (d.dir.path / "model" / "config.json").string(), "--seq", std::to_string(k.seq),
                                        "--batch", std::to_string(k.batch), "--ckpt-every", std::to_string(k.ckpt),
                                        "--loss-chunk", std::to_string(k.chunk)});
    std::ifstream in(out);
    std::string line;
    ASSERT_TRUE(std::getline(in, line)) << out;
    const nlohmann::json res = nlohmann::json::parse(line);
    ASSERT_FALSE(res.contains("error")) << line;
    const int64_t tensors = res.at("tensor_peak_bytes").get<int64_t>();
    // The plan bench prints is the one `ropex plan` prints for the same step.
    EXPECT_NEAR(res.at("plan_without_allowance_gib").get<double>() * (1 << 30), static_cast<double>(modelled), 1.0);
    std::cout << "[plan] " << k.name << ": modelled " << modelled / (1 << 20) << " MiB against a tensor peak of "
              << tensors / (1 << 20) << " MiB (" << static_cast<double>(modelled) / static_cast<double>(tensors)
              << "x); planned " << planned / (1 << 20) << " MiB against a peak RSS of " << rss / (1 << 20) << " MiB\n";
    EXPECT_GE(modelled, tensors);
    EXPECT_LE(static_cast<double>(modelled), 1.25 * static_cast<double>(tensors));
    EXPECT_GE(planned, rss);
  }
}

TEST(DryRun, ChecksModelAndStoreAndPrintsThePlan) {
  TinySetup t;
  const std::string run_dir = (t.dir.path / "runs").string();
  ASSERT_EQ(t.run("train " + t.config() + " --dry-run --set model.device=cpu --set run.output_dir=" + run_dir), 0) << t.out_text;
  EXPECT_NE(t.out_text.find("weights match"), std::string::npos) << t.out_text;
  EXPECT_NE(t.out_text.find("documents long enough"), std::string::npos) << t.out_text;
  EXPECT_NE(t.out_text.find("dry run: ok"), std::string::npos) << t.out_text;
  EXPECT_FALSE(std::filesystem::exists(run_dir)) << "a dry run must not create the run directory";
  // A window no document fills: refused naming the store.
  EXPECT_NE(t.run("train " + t.config() + " --dry-run --set model.device=cpu --set data.train_len=3000 --set rope.target_len=12000"), 0);
  EXPECT_NE(t.out_text.find(t.store()), std::string::npos) << t.out_text;
  // A model directory whose weights do not match its config.json: refused naming the tensor.
  nlohmann::json cfg;
  std::ifstream(t.model() + "/config.json") >> cfg;
  cfg["intermediate_size"] = 80;
  write_json(t.model() + "/config.json", cfg);
  EXPECT_NE(t.run("train " + t.config() + " --dry-run --set model.device=cpu"), 0);
  EXPECT_NE(t.out_text.find("mlp.gate_proj.weight"), std::string::npos) << t.out_text;
}

}  // namespace
}  // namespace ropex::test
