// The training job end to end through the ropex binary, on a tiny model and corpus built in the test:
// the loss falls; 2 Gloo ranks equal 1 rank on the union batch; stop + resume equals a straight
// run for every sampler (identical losses and weights); a SIGKILL in the middle of writing a
// checkpoint loses nothing; the export loads in transformers with identical logits and the right
// rope config; bad configs and data fail with messages naming the key or file.
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"
#include "tests/train_fixture.h"
#include "trainer/log.h"
#include "trainer/run_config.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;

TEST(Train, LossFallsOnASmallCorpus) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set schedule.steps=30 --set checkpoint.every=0 --set sampler.name=contiguous --set rope.type=keep"), 0)
      << s.out_text;
  auto m = metrics(run);
  ASSERT_EQ(m.size(), 30u);
  const double first = m.front()["loss"].get<double>(), last = m.back()["loss"].get<double>();
  EXPECT_LT(last, first * 0.8) << "loss " << first << " -> " << last;
  EXPECT_NEAR(first, std::log(320.0), tol::random_init_loss_band(load_config(s.model())));  // step 1: random init
}

// How far apart two runs of the same steps ended: ||a - b|| / ||b - origin|| over every tensor together
// (origin absent: ||a - b|| / ||b||). For weights the origin is the model's initial weights, so the
// update is the scale: AdamW moves each weight by about lr per step whatever its gradient's size, and a
// rounding difference in a gradient moves it by a fraction of lr: small against the update, and it
// can be large against float32 epsilon times the weight.
double distance(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b,
                const std::map<std::string, at::Tensor>* origin = nullptr) {
  double diff = 0, scale = 0;
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [k, y] : b) {
    if (!a.count(k) || (origin && !origin->count(k))) {
      ADD_FAILURE() << "a run lacks " << k;
      continue;
    }
    const at::Tensor x = a.at(k).to(at::kDouble), yd = y.to(at::kDouble);
    diff += (x - yd).pow(2).sum().item<double>();
    scale += (origin ? yd - origin->at(k).to(at::kDouble) : yd).pow(2).sum().item<double>();
  }
  return std::sqrt(diff) / std::max(std::sqrt(scale), 1e-300);  // 1e-300 only guards 0 / 0
}

// Worst relative difference of a logged metric (loss, grad_norm) over the steps `a` logged, each
// against the same step of `b` (a resumed run logs only the steps after its checkpoint).
double metric_distance(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b, const char* key) {
  std::map<int64_t, double> by_step;
  for (const auto& m : b) by_step[m["step"].get<int64_t>()] = m[key].get<double>();
  EXPECT_FALSE(a.empty()) << key;
  double worst = 0;
  for (const auto& m : a) {
    const auto it = by_step.find(m["step"].get<int64_t>());
    if (it == by_step.end()) {
      ADD_FAILURE() << key << ": the reference did not log step " << m["step"];
      continue;
    }
    worst = std::max(worst, std::abs(m[key].get<double>() - it->second) / std::abs(it->second));
  }
  return worst;
}

// The reordering noise of TinySetup's training steps, measured on one rank: the examples of `world`
// ranks at micro-batch 1 x accumulation 2 taken as micro-batch `world` x accumulation 2 (`ref`, the run
// others are compared with) and as micro-batch 1 x accumulation 2 * world (summed in another order).
// Limits for a run of the same steps in yet another order (ranks, ZeRO shards, a resumed stage) are
// tol::spread_limit of these two runs' distances and of the a-priori floors. The spread itself must stay
// within kSpreadFactor floors: a reference that depends on its micro-batch split is a defect (it would
// otherwise widen every limit built on it).
struct Reordering {
  struct Run {
    std::map<std::string, at::Tensor> weights, moments;
    std::vector<nlohmann::json> metrics;
  };
  int64_t step;
  std::map<std::string, at::Tensor> init;
  Run ref;
  double weights_limit = 0, moments_limit = 0, loss_limit = 0, grad_norm_limit = 0;

  Reordering(TinySetup& s, const std::string& sets, int world, int64_t step_) : step(step_) {
    const std::string ref_dir = s.dir.str() + cat("/ref", world, "_union"), reordered_dir = s.dir.str() + cat("/ref", world, "_reordered");
    EXPECT_EQ(s.train(ref_dir, sets + cat(" --set batch.micro_batch_size=", world, " --set batch.grad_accum=2")), 0) << s.out_text;
    EXPECT_EQ(s.train(reordered_dir, sets + cat(" --set batch.micro_batch_size=1 --set batch.grad_accum=", 2 * world)), 0)
        << s.out_text;
    init = weights(s.model());
    ref = read(ref_dir);
    const Run reordered = read(reordered_dir);
    const LlamaConfig cfg = load_config(s.model());
    const int64_t T = 32, tokens_per_step = 2 * world * T;  // data.train_len; examples per step x T
    const double grad_floor = tol::llama_backward(cfg, T, tokens_per_step);
    // AdamW's moments average the gradients and their squares (twice the relative error).
    const double moments_floor = 2 * grad_floor;
    // Relative floor of a step's loss: tol::mean_nll with logits taken below ln(V) in size, as a model a
    // few steps from random init has (its losses stay above ln(V) - 2, checked), over a loss >= ln(V) - 2.
    const double lnV = std::log(static_cast<double>(cfg.vocab_size));
    for (const auto& m : ref.metrics) EXPECT_GT(m["loss"].get<double>(), lnV - 2);
    const double loss_floor = tol::mean_nll(cfg, T, tokens_per_step, lnV, lnV) / (lnV - 2);
    auto limit = [&](double spread, double floor, const char* what) {
      EXPECT_LE(spread, tol::kSpreadFactor * floor) << "one rank's " << what << " depend on the micro-batch split";
      return tol::spread_limit(spread, floor);
    };
    weights_limit = limit(distance(reordered.weights, ref.weights, &init), grad_floor, "updates");
    moments_limit = limit(distance(reordered.moments, ref.moments), moments_floor, "moments");
    loss_limit = limit(metric_distance(reordered.metrics, ref.metrics, "loss"), loss_floor, "losses");
    grad_norm_limit = limit(metric_distance(reordered.metrics, ref.metrics, "grad_norm"), grad_floor, "gradient norms");
  }
  std::string checkpoint(const std::string& run) const {
    char name[32];
    std::snprintf(name, sizeof name, "/checkpoints/step_%08lld", static_cast<long long>(step));
    return run + name;
  }
  Run read(const std::string& run) const {
    return {weights(checkpoint(run)), moments(checkpoint(run)), metrics(run)};
  }

  // Expects `run`, the same steps as `ref` in another order, to end within the limits.
  void expect_close(const std::string& run, const std::string& what) const {
    const Run r = read(run);
    const double w = distance(r.weights, ref.weights, &init), m = distance(r.moments, ref.moments);
    const double l = metric_distance(r.metrics, ref.metrics, "loss"), g = metric_distance(r.metrics, ref.metrics, "grad_norm");
    EXPECT_LE(w, weights_limit) << what << ": update distance";
    EXPECT_LE(m, moments_limit) << what << ": AdamW moments";
    EXPECT_LE(l, loss_limit) << what << ": losses";
    EXPECT_LE(g, grad_norm_limit) << what << ": gradient norms";
    std::cout << "[order] " << what << " vs one rank: update distance " << w << " (limit " << weights_limit << "), moments " << m
              << " (" << moments_limit << "), loss " << l << " (" << loss_limit << "), grad norm " << g << " (" << grad_norm_limit
              << ")\n";
  }
};

// A bfloat16 run on 2 ranks at ZeRO stages 1 and 2 reads each rank's float32 masters from the
// float32 weights file, from the offsets its shard starts at: with a learning rate of 0 the
// checkpointed masters are the file's values bit for bit (not the bfloat16 parameters cast back up).
TEST(Train, BfloatRanksTakeTheirMastersFromTheWeightsFile) {
  TinySetup s;
  const std::map<std::string, at::Tensor> file = weights(s.model());
  int64_t low_bits = 0;
  for (const auto& [k, v] : file) low_bits += v.ne(v.to(at::kBFloat16).to(at::kFloat)).sum().item<int64_t>();
  ASSERT_GT(low_bits, 0) << "the test needs weights that bfloat16 cannot hold exactly";
  for (int stage : {1, 2}) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    const std::string run = s.dir.str() + "/bf16_z" + std::to_string(stage);
    ASSERT_EQ(train_ranks(s, 2, run,
                          "--set model.dtype=bfloat16 --set optim.lr=0 --set optim.weight_decay=0 --set schedule.steps=1 --set schedule.warmup_steps=0 "
                          "--set batch.micro_batch_size=1 --set distributed.bucket_mb=0.01 --set export.at_end=false "
                          "--set distributed.zero_stage=" + std::to_string(stage)),
              0)
        << read_text(run + ".rank0.log") << read_text(run + ".rank1.log");
    const std::map<std::string, at::Tensor> masters = weights(run + "/checkpoints/step_00000001");
    ASSERT_EQ(masters.size(), file.size());
    for (const auto& [k, v] : file) EXPECT_TRUE(at::equal(masters.at(k), v)) << k;
  }
}

TEST(Train, TwoGlooRanksEqualOneRankOnTheUnionBatch) {
  TinySetup s;
  const std::string two = s.dir.str() + "/two";
  const Reordering order(s, "--set schedule.steps=4", 2, 4);
  // Small buckets (10 KiB) so the tiny model's gradients span several, reduced while backward runs.
  ASSERT_EQ(train_ranks(s, 2, two, "--set batch.micro_batch_size=1 --set schedule.steps=4 --set distributed.bucket_mb=0.01"), 0);
  {
    std::ifstream log(two + ".rank0.log");
    std::stringstream text;
    text << log.rdbuf();
    const auto at = text.str().find("gradient all-reduce: ");
    ASSERT_NE(at, std::string::npos) << text.str();
    int buckets = 0, early = 0;
    std::sscanf(text.str().c_str() + at, "gradient all-reduce: %d buckets, %d launched", &buckets, &early);
    EXPECT_GT(buckets, 3);
    EXPECT_GT(early, 0) << "no bucket's all-reduce overlapped the backward pass";
    std::cout << "[ddp] " << buckets << " buckets, " << early << " launched during backward\n";
  }
  order.expect_close(two, "2 ranks");
}

// ZeRO-0, 1 and 2 on 2 Gloo ranks, and ZeRO-0 and 2 on 3, each against one rank on the union batch:
// float32, weight decay on (0.01, not on norms), clipping active at every step (grad_clip 0.05 is below
// every norm), two micro-batches per step, 10 KiB buckets so chunks cut through parameters, activation
// checkpointing (gradients accumulated by a backward inside the backward).
TEST(Train, ZeroStagesEqualTheReplicatedOptimizerOnTwoAndThreeGlooRanks) {
  TinySetup s;
  const std::string common = "--set optim.grad_clip=0.05 --set distributed.bucket_mb=0.01 --set model.activation_checkpointing=true";
  const std::string sets = common + " --set batch.micro_batch_size=1";
  std::string run[3];
  for (int stage = 0; stage < 3; ++stage) {
    run[stage] = s.dir.str() + "/zero" + std::to_string(stage);
    ASSERT_EQ(train_ranks(s, 2, run[stage], sets + " --set distributed.zero_stage=" + std::to_string(stage)), 0)
        << read_text(run[stage] + ".rank0.log") << read_text(run[stage] + ".rank1.log");
    const std::string log = read_text(run[stage] + ".rank1.log");
    EXPECT_NE(log.find(cat("(ZeRO-", stage, " over 2 ranks")), std::string::npos) << log;
    const std::string reduction = stage == 0 ? "gradient all-reduce: " : cat("gradient reduce-scatter (ZeRO-", stage, "): ");
    EXPECT_NE(log.find(reduction), std::string::npos) << log;
  }
  auto m0 = metrics(run[0]);
  ASSERT_EQ(m0.size(), 8u);
  for (const auto& m : m0) EXPECT_GT(m["grad_norm"].get<double>(), 0.05) << "clipping is not active";
  const Reordering two(s, common, 2, 8);
  for (int stage = 0; stage < 3; ++stage) {
    two.expect_close(run[stage], cat("2 ranks, ZeRO-", stage));
    if (stage > 0 && identical_checkpoints(two.checkpoint(run[0]), two.checkpoint(run[stage])))
      std::cout << "[zero] 2 ranks: ZeRO-" << stage << " and ZeRO-0 weights and moments bit-identical\n";
  }
  // 3 ranks: chunks padded, boundaries elsewhere; sums of three may round in another order.
  const Reordering three(s, common, 3, 8);
  for (int stage : {0, 2}) {
    const std::string dir = s.dir.str() + "/three" + std::to_string(stage);
    ASSERT_EQ(train_ranks(s, 3, dir, sets + " --set distributed.zero_stage=" + std::to_string(stage)), 0)
        << read_text(dir + ".rank0.log");
    three.expect_close(dir, cat("3 ranks, ZeRO-", stage));
  }
}

// A ZeRO-1 run stopped at step 3 and resumed equals a straight one bit for bit; its step-3
// checkpoint also resumes at stages 0 and 2 and on one rank (the format depends on neither), where
// only the order of the reductions changes.
TEST(Train, ZeroStopAndResumeEqualsAStraightRunAtAnyStage) {
  TinySetup s;
  const std::string common = "--set optim.grad_clip=0.05 --set distributed.bucket_mb=0.01";
  const std::string sets = common + " --set batch.micro_batch_size=1";
  const std::string straight = s.dir.str() + "/straight", resumed = s.dir.str() + "/resumed";
  ASSERT_EQ(train_ranks(s, 2, straight, sets + " --set distributed.zero_stage=1"), 0) << read_text(straight + ".rank0.log");
  ASSERT_EQ(train_ranks(s, 2, resumed, sets + " --set distributed.zero_stage=1 --set run.stop_after=3"), 0)
      << read_text(resumed + ".rank0.log");
  EXPECT_EQ(metrics(resumed).size(), 3u);
  ASSERT_EQ(train_ranks(s, 2, resumed, sets + " --set distributed.zero_stage=1"), 0) << read_text(resumed + ".rank0.log");
  EXPECT_NE(read_text(resumed + ".rank1.log").find("resumed from"), std::string::npos);
  auto a = metrics(straight), b = metrics(resumed);
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << "step " << i + 1;
  const Reordering order(s, common, 2, 8);
  EXPECT_TRUE(identical_checkpoints(order.checkpoint(straight), order.checkpoint(resumed)));
  for (int stage : {0, 2}) {
    const std::string other = s.dir.str() + "/as_stage" + std::to_string(stage);
    ASSERT_EQ(train_ranks(s, 2, other, sets + " --set distributed.zero_stage=" + std::to_string(stage) +
                                           " --set checkpoint.resume=" + resumed + "/checkpoints/step_00000003"), 0)
        << read_text(other + ".rank0.log");
    order.expect_close(other, cat("ZeRO-1 checkpoint resumed at ZeRO-", stage));
  }
  // On one rank with the same global batch (micro-batch 2): the data order is a function of the step
  // and the global batch, so only the reduction order changes again.
  const std::string one = s.dir.str() + "/as_one_rank";
  ASSERT_EQ(s.train(one, common + " --set batch.micro_batch_size=2 --set checkpoint.resume=" + resumed +
                             "/checkpoints/step_00000003"), 0)
      << s.out_text;
  order.expect_close(one, "2-rank ZeRO-1 checkpoint resumed on 1 rank");
}

TEST(Train, AFailingRankTakesTheOthersDownWithAMessage) {
  TinySetup s;
  const std::string run = s.dir.str() + "/fail";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(train_ranks(s, 2, run, "--set distributed.timeout_s=30", "ROPEX_FAULT_INJECT=exit-at-step:2"), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 60) << "the surviving rank hung";
  std::ifstream log(run + ".rank0.log");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("another rank probably died"), std::string::npos) << text.str();
}

class ResumeBySampler : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeBySampler, StopAndResumeEqualsAStraightRun) {
  TinySetup s;
  const std::string sampler = "--set sampler.name=" + GetParam() + (GetParam() == "contiguous" ? " --set rope.type=keep" : "");
  const std::string straight = s.dir.str() + "/straight", resumed = s.dir.str() + "/resumed";
  ASSERT_EQ(s.train(straight, sampler), 0) << s.out_text;
  ASSERT_EQ(s.train(resumed, sampler + " --set run.stop_after=3"), 0) << s.out_text;
  EXPECT_EQ(metrics(resumed).size(), 3u);
  ASSERT_EQ(s.train(resumed, sampler), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("resumed from"), std::string::npos) << s.out_text;
  auto a = metrics(straight), b = metrics(resumed);
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << "step " << i + 1;
  auto wa = weights(straight + "/checkpoints/step_00000008"), wb = weights(resumed + "/checkpoints/step_00000008");
  for (auto& [k, v] : wa) EXPECT_TRUE(at::equal(v, wb.at(k))) << k;
}
INSTANTIATE_TEST_SUITE_P(Samplers, ResumeBySampler, ::testing::Values("contiguous", "randpos", "pose", "cream"),
                         [](const auto& info) { return info.param; });

TEST(Train, KilledWhileWritingACheckpointResumesFromThePreviousOne) {
  TinySetup s;
  const std::string straight = s.dir.str() + "/straight", crashed = s.dir.str() + "/crashed";
  ASSERT_EQ(s.train(straight, ""), 0) << s.out_text;
  const int rc = s.train(crashed, "", "ROPEX_FAULT_INJECT=kill-in-checkpoint:4");
  EXPECT_NE(rc, 0) << "the fault injection did not kill the run";
  EXPECT_TRUE(fs::exists(crashed + "/checkpoints/.step_00000004.partial"));
  EXPECT_FALSE(fs::exists(crashed + "/checkpoints/step_00000004"));
  EXPECT_TRUE(fs::exists(crashed + "/checkpoints/step_00000002/manifest.json"));
  ASSERT_EQ(s.train(crashed, ""), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("step_00000002"), std::string::npos) << s.out_text;
  auto wa = weights(straight + "/checkpoints/step_00000008"), wb = weights(crashed + "/checkpoints/step_00000008");
  for (auto& [k, v] : wa) EXPECT_TRUE(at::equal(v, wb.at(k))) << k;
}

TEST(Train, ExportLoadsInTransformersWithTheTrainedRope) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set schedule.steps=2"), 0) << s.out_text;
  const std::string exp = run + "/export";
  ASSERT_TRUE(fs::exists(exp + "/model.safetensors.index.json")) << "20KB shards expected";
  ASSERT_TRUE(fs::exists(exp + "/tokenizer.model"));
  // Reference logits from ropex on the export, at positions past the original window.
  LlamaForCausalLM m = load_pretrained(exp);
  EXPECT_EQ(m->config().rope.type, "linear");
  EXPECT_EQ(m->config().rope.factor, 4.0);
  EXPECT_EQ(m->config().max_position_embeddings, 128);
  torch::NoGradGuard ng;
  at::Tensor ids = at::randint(0, 320, {1, 100}, at::kLong), pos = at::arange(100, at::kLong).unsqueeze(0) + 20;
  at::Tensor logits = m->forward(ids, pos).contiguous();
  const std::string ref = s.dir.str() + "/ref.safetensors";
  st::write_file(ref, {{"input_ids", st::DType::I64, {1, 100}, ids.data_ptr()},
                       {"position_ids", st::DType::I64, {1, 100}, pos.contiguous().data_ptr()},
                       {"logits", st::DType::F32, {1, 100, 320}, logits.data_ptr()}});
  std::string out;
  const std::string limit = std::to_string(tol::llama_forward(m->config(), 100));  // two float32 forwards of 100 tokens
  EXPECT_EQ(run_python(py, "hf_check.py", {"export", exp, ref, "--limit", limit, "--rope-type", "linear", "--max-pos", "128"}, &out), 0)
      << out;
  // The CLI export of a checkpoint (another dtype, one file).
  EXPECT_EQ(s.run("export --checkpoint " + run + "/checkpoints/step_00000002 --output " + s.dir.str() +
                  "/exp2 --max-shard-size 0 --dtype bfloat16"), 0) << s.out_text;
  EXPECT_TRUE(fs::exists(s.dir.str() + "/exp2/model.safetensors"));
}

TEST(Train, BadConfigAndDataGiveClearErrors) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  EXPECT_EQ(s.train(run, "--set optim.lrr=1"), 1);
  EXPECT_NE(s.out_text.find("optim.lrr"), std::string::npos) << s.out_text;
  EXPECT_NE(s.out_text.find("optim.lr"), std::string::npos) << s.out_text;
  EXPECT_EQ(s.train(run, "--set schedule.steps=ten"), 1);
  EXPECT_NE(s.out_text.find("schedule.steps"), std::string::npos) << s.out_text;
  EXPECT_EQ(s.train(run, "--set data.store=/nonexistent/store"), 1);
  EXPECT_NE(s.out_text.find("/nonexistent/store"), std::string::npos) << s.out_text;
  EXPECT_EQ(s.train(run, "--set sampler.name=cream --set rope.target_len=32"), 1);
  EXPECT_NE(s.out_text.find("rope.target_len"), std::string::npos) << s.out_text;
  EXPECT_EQ(s.train(run, "--set sampler.cream_sigma=-2"), 1);
  EXPECT_NE(s.out_text.find("sampler.cream_sigma"), std::string::npos) << s.out_text;
  EXPECT_EQ(s.train(run, "--set data.train_len=100000 --set sampler.name=contiguous --set rope.type=keep"), 1);  // no document long enough
  EXPECT_NE(s.out_text.find("no document"), std::string::npos) << s.out_text;
  // A store tokenized with a larger vocabulary than the model's.
  std::ofstream(s.dir.path / "big.txt") << "some text for a second tokenizer with more pieces than the model has, "
                                           "repeated with variations 1 2 3 4 5 6 7 8 9 and letters abcdefghijklmnop\n";
  EXPECT_EQ(s.run("train-tokenizer --input " + (s.dir.path / "corpus.txt").string() + " --output " + s.dir.str() +
                  "/big --vocab-size 400"), 0) << s.out_text;
  EXPECT_EQ(s.run("prepare --tokenizer " + s.dir.str() + "/big.model --input " + (s.dir.path / "corpus.txt").string() +
                  " --output " + s.dir.str() + "/bigstore --txt-split blank_line"), 0) << s.out_text;
  EXPECT_EQ(s.train(run, "--set data.store=" + s.dir.str() + "/bigstore"), 1);
  EXPECT_NE(s.out_text.find("vocab"), std::string::npos) << s.out_text;
  // Resuming with another global batch (2 ranks, the same micro-batches) is refused, naming it; and
  // CREAM's per_block state is per rank, so it resumes only on as many ranks.
  ASSERT_EQ(s.train(run, "--set run.stop_after=2"), 0) << s.out_text;
  EXPECT_NE(train_ranks(s, 2, run, ""), 0);
  const std::string text = read_text(run + ".rank0.log");
  EXPECT_NE(text.find("global batch of 4 examples (1 ranks), this run has 8"), std::string::npos) << text;
  const std::string per_block = s.dir.str() + "/per_block";
  ASSERT_EQ(s.train(per_block, "--set run.stop_after=2 --set sampler.cream_mode=per_block --set sampler.cream_block_size=3 --set sampler.cream_continuity_len=8"), 0)
      << s.out_text;
  EXPECT_NE(train_ranks(s, 2, per_block, "--set sampler.cream_mode=per_block --set sampler.cream_block_size=3 --set sampler.cream_continuity_len=8 --set batch.micro_batch_size=1"), 0);
  EXPECT_NE(read_text(per_block + ".rank0.log").find("per_block mode keeps a block state per rank"), std::string::npos)
      << read_text(per_block + ".rank0.log");
}

TEST(Configs, EveryShippedConfigParsesAndEveryKeyIsDocumented) {
  TempDir d("cfgs");
  fs::create_directories(d.path / "model");
  int n = 0;
  for (const auto& e : fs::directory_iterator(source_dir() + "/configs")) {
    if (e.path().extension() != ".json") continue;
    ++n;
    // Parsed and validated as `train` does (--print-config also checks the model and the store,
    // which these recipes name but this machine does not have).
    try {
      RunConfig::load(e.path().string(), {"model.path=" + (d.path / "model").string()});
    } catch (const std::exception& err) {
      ADD_FAILURE() << e.path() << ": " << err.what();
    }
  }
  EXPECT_GE(n, 5);
  std::ifstream in(source_dir() + "/configs/README.md");
  std::stringstream readme;
  readme << in.rdbuf();
  RunConfig cfg;
  ConfigSchema schema;
  cfg.bind(schema);
  for (const auto& k : schema.keys()) EXPECT_NE(readme.str().find("`" + k + "`"), std::string::npos) << k << " undocumented";
}

// A randomly initialised GQA model of vocabulary 50 for the checkpointing tests.
LlamaForCausalLM small_model(int64_t layers, int64_t hidden, int64_t intermediate, int64_t heads, int64_t kv_heads) {
  LlamaConfig c;
  c.vocab_size = 50;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  LlamaForCausalLM m(c);
  m->init_weights(1);
  return m;
}

// Which layers are checkpointed: each is one CheckpointedLayer node in the autograd graph.
TEST(ActivationCheckpointing, EveryKthLayerIsRecomputed) {
  LlamaForCausalLM m = small_model(5, 16, 24, 2, 1);
  at::Tensor ids = at::randint(0, 50, {1, 8}, at::kLong), pos = at::arange(8, at::kLong).unsqueeze(0);
  auto checkpointed = [&](int64_t every) {
    ForwardOptions fo;
    fo.checkpoint_every = every;
    at::Tensor loss = lm_loss(m, ids, pos, ids, fo).mean;
    std::set<torch::autograd::Node*> seen;
    std::vector<torch::autograd::Node*> todo{loss.grad_fn().get()};
    int64_t n = 0;
    while (!todo.empty()) {
      torch::autograd::Node* node = todo.back();
      todo.pop_back();
      if (!node || !seen.insert(node).second) continue;
      n += node->name().find("CheckpointedLayer") != std::string::npos;
      for (const auto& e : node->next_edges()) todo.push_back(e.function.get());
    }
    return n;
  };
  EXPECT_EQ(checkpointed(0), 0);
  EXPECT_EQ(checkpointed(1), 5);  // layers 0-4
  EXPECT_EQ(checkpointed(2), 3);  // 0, 2, 4
  EXPECT_EQ(checkpointed(3), 2);  // 0, 3
  EXPECT_EQ(checkpointed(9), 1);  // 0
}

TEST(ActivationCheckpointing, GradientsEqualThePlainPath) {
  LlamaForCausalLM m = small_model(3, 32, 48, 4, 2);
  const LlamaConfig& c = m->config();
  at::Tensor ids = at::randint(0, 50, {2, 24}, at::kLong), pos = at::arange(24, at::kLong).repeat({2, 1});
  auto grads = [&](int64_t every) {
    m->zero_grad();
    ForwardOptions fo;
    fo.checkpoint_every = every;
    fo.loss_chunk_tokens = 0;
    causal_lm_loss(m->forward(ids, pos, fo), ids).mean.backward();
    std::map<std::string, at::Tensor> g;
    for (auto& p : m->named_parameters()) g[p.key()] = p.value().grad().clone();
    return g;
  };
  auto plain = grads(0);
  // Every layer (1), layers 0 and 2 (2), layer 0 only (3): the recomputed forward is the same float32
  // arithmetic; only the order in which the backward accumulates into the gradients may change: at
  // most the backward's own rounding.
  for (int64_t every : {1, 2, 3}) {
    auto ckpt = grads(every);
    for (auto& [k, v] : plain) EXPECT_LE(rel_err(ckpt.at(k), v), tol::llama_backward(c, 24, 2 * 24)) << "every " << every << ": " << k;
  }
}

}  // namespace
}  // namespace ropex::test
