// A new user's first hour (issue 15), each case as a user meets it, through the ropex binary on the
// tiny setup of train_fixture.h: the run folder (a lock, start-over under resume = never, metrics
// across a resume, config changes on resume, a finished run run again), data tied to its model (the
// store's tokenizer, a model without one, train-tokenizer on .jsonl), one strictness everywhere
// (new-model, scale factors, rope.type keep, suggestions, bounds, llama3 and inspect rope,
// --print-config), and defaults and messages (eval's cells that cannot fit, eval's documents,
// run.sh from another folder, a rank waiting for the others, export of a run folder, the start-up
// summary). The numbers in the test names are the issue's.
#include "tests/test_util.h"
#include "tests/train_fixture.h"
#include "data/token_store.h"
#include "trainer/run_folder.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace ropex::test {
namespace {
namespace fs = std::filesystem;

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

std::string host() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

std::vector<int64_t> steps_of(const std::vector<nlohmann::json>& records) {
  std::vector<int64_t> out;
  for (const auto& r : records) out.push_back(r["step"].get<int64_t>());
  return out;
}

// ---- the run folder ----

TEST(FirstHour, Item01_ASecondRunOnTheSameFolderIsRefusedNamingTheHolder) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  {
    RunFolderLock held(run);  // this process holds the folder, as a running `ropex train` would
    EXPECT_EQ(s.train(run, "--set schedule.steps=2"), 1) << s.out_text;
    EXPECT_TRUE(has(s.out_text, "is in use by another ropex run")) << s.out_text;
    EXPECT_TRUE(has(s.out_text, "pid " + std::to_string(::getpid()) + " on host " + host())) << s.out_text;
    EXPECT_FALSE(fs::exists(run + "/checkpoints")) << "the refused run wrote into the folder";
  }
  // A run killed with SIGKILL while holding the folder leaves no stale lock: the kernel releases it.
  EXPECT_EQ(s.train(run, "--set schedule.steps=4", "ROPEX_FAULT_INJECT=kill-in-checkpoint:4"), 137) << s.out_text;
  EXPECT_TRUE(fs::exists(run + "/" + RunFolderLock::file_name()));
  EXPECT_EQ(s.train(run, "--set schedule.steps=4"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "resumed from " + run + "/checkpoints/step_00000002")) << s.out_text;
}

TEST(FirstHour, Item02_ResumeNeverOnAFolderWithCheckpointsIsRefusedUnlessToldWhatToDoWithThem) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set schedule.steps=2"), 0) << s.out_text;
  EXPECT_EQ(s.train(run, "--set schedule.steps=2 --set checkpoint.resume=never"), 1) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "already holds checkpoints (newest: " + run + "/checkpoints/step_00000002)")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "checkpoint.start_over=move_aside")) << s.out_text;

  ASSERT_EQ(s.train(run, "--set schedule.steps=2 --set checkpoint.resume=never --set checkpoint.start_over=move_aside"), 0)
      << s.out_text;
  std::vector<fs::path> aside;
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().filename().string().rfind("previous-", 0) == 0) aside.push_back(e.path());
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_TRUE(fs::exists(aside[0] / "checkpoints" / "step_00000002"));
  EXPECT_EQ(steps_of(metrics(aside[0].string())), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(steps_of(metrics(run)), (std::vector<int64_t>{1, 2})) << "the new run's metrics start afresh";
  // TensorBoard's event files go aside with the metrics (TensorBoard then shows previous-DATE as a run of its own).
  int events_aside = 0;
  for (const auto& e : fs::directory_iterator(aside[0])) events_aside += e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_EQ(events_aside, 1);

  ASSERT_EQ(s.train(run, "--set schedule.steps=2 --set checkpoint.resume=never --set checkpoint.start_over=delete"), 0)
      << s.out_text;
  EXPECT_TRUE(has(s.out_text, "deleted checkpoints, metrics.jsonl, export, 1 TensorBoard event file(s) of the earlier run"))
      << s.out_text;
  // An export folder that is the run folder itself is never taken for the export to delete.
  ASSERT_EQ(s.train(run, "--set schedule.steps=2 --set checkpoint.resume=never --set checkpoint.start_over=delete "
                         "--set export.dir=" + run + "/"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "deleted checkpoints, metrics.jsonl, 1 TensorBoard event file(s) of the earlier run")) << s.out_text;
  EXPECT_TRUE(fs::exists(aside[0])) << "the run folder's other contents were deleted";

  // Under never, a stop does not tell the user to run the same command again (it would be refused).
  const std::string fresh = s.dir.str() + "/fresh";
  ASSERT_EQ(s.train(fresh, "--set checkpoint.resume=never --set run.stop_after=2"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "run again with --set checkpoint.resume=auto")) << s.out_text;
  EXPECT_FALSE(has(s.out_text, "run the same command again")) << s.out_text;
}

TEST(FirstHour, Item03_MetricsAfterAResumeHoldEachStepOnceInSegmentsWithAContinuingClock) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  // Killed after step 5 (its last checkpoint is step 4), with a line cut mid-write.
  EXPECT_NE(s.train(run, "", "ROPEX_FAULT_INJECT=exit-at-step:5"), 0);
  ASSERT_EQ(steps_of(metrics(run)), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  std::ofstream(run + "/metrics.jsonl", std::ios::app) << "{\"step\": 6, \"lo";
  ASSERT_EQ(s.train(run, ""), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "1 record(s) of steps after 4 removed")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "1 cut or unreadable line(s) removed")) << s.out_text;
  const auto m = metrics(run);
  ASSERT_EQ(steps_of(m), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  for (const auto& r : m) EXPECT_EQ(r["segment"], r["step"].get<int64_t>() <= 4 ? 1 : 2) << r.dump();
  for (size_t i = 1; i < m.size(); ++i)
    EXPECT_GE(m[i]["elapsed_s"].get<double>(), m[i - 1]["elapsed_s"].get<double>()) << "elapsed_s restarted at step " << i + 1;

  // metrics.jsonl as a link to a file elsewhere: trimmed where it points, the link kept.
  const std::string linked = s.dir.str() + "/linked", elsewhere = s.dir.str() + "/elsewhere.jsonl";
  EXPECT_NE(s.train(linked, "", "ROPEX_FAULT_INJECT=exit-at-step:5"), 0);
  fs::rename(linked + "/metrics.jsonl", elsewhere);
  fs::create_symlink(elsewhere, linked + "/metrics.jsonl");
  ASSERT_EQ(s.train(linked, ""), 0) << s.out_text;
  EXPECT_TRUE(fs::is_symlink(linked + "/metrics.jsonl"));
  EXPECT_EQ(steps_of(metrics(linked)), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  // A write that fails (a full disk: /dev/full) is reported, and training goes on.
  ASSERT_TRUE(fs::exists("/dev/full")) << "this check needs /dev/full (every Linux and container runtime has it)";
  const std::string full = s.dir.str() + "/full";
  fs::create_directories(full);
  fs::create_symlink("/dev/full", full + "/metrics.jsonl");
  ASSERT_EQ(s.train(full, "--set schedule.steps=2"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "writing " + full + "/metrics.jsonl failed at step 1: No space left on device")) << s.out_text;
}

TEST(FirstHour, Item04_ResumingWithChangesThatBreakTheExactResumeIsRefusedUnlessAccepted) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set run.stop_after=2"), 0) << s.out_text;
  struct Case {
    std::string sets, shown;
  };
  // Values other than the fixture's (optim.lr 3e-3, data.train_len 32 with target 128 — 16 keeps
  // CREAM's target a multiple of the window —, run.seed 0); `shown` is how the change is logged:
  // both values as JSON.
  for (const Case& c : std::vector<Case>{{"--set optim.lr=1e-3", "optim.lr: 0.003 -> 0.001"},
                                         {"--set data.train_len=16", "data.train_len: 32 -> 16"},
                                         {"--set run.seed=5", "run.seed: 0 -> 5"}}) {
    EXPECT_EQ(s.train(run, c.sets), 1) << c.sets << "\n" << s.out_text;
    EXPECT_TRUE(has(s.out_text, c.shown) && has(s.out_text, "--accept-change")) << c.sets << "\n" << s.out_text;
  }
  // Another global batch changes the data order: refused by the checkpoint itself, with the way out.
  EXPECT_EQ(s.train(run, "--set batch.grad_accum=1"), 1);
  EXPECT_TRUE(has(s.out_text, "written with a global batch of 4 examples (1 ranks), this run has 2")) << s.out_text;
  EXPECT_EQ(steps_of(metrics(run)), (std::vector<int64_t>{1, 2})) << "a refused resume trained";
  // How the run is carried out may change; the change is logged.
  // How the run is carried out may change (the same global batch split otherwise included); the change is logged.
  ASSERT_EQ(s.train(run, "--set logging.every=2 --set run.stop_after=4 --set batch.micro_batch_size=1 --set batch.grad_accum=4"), 0)
      << s.out_text;
  EXPECT_TRUE(has(s.out_text, "config change since " + run + "/checkpoints/step_00000002: logging.every: 1 -> 2")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "batch.grad_accum: 2 -> 4")) << s.out_text;
  // The device may change while the compute dtype does not (float32 is explicit here).
  ASSERT_EQ(s.train(run, "--set model.device=auto --set run.stop_after=6"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "model.device: \"cpu\" -> \"auto\"")) << s.out_text;
  // model.dtype auto on another machine would change the arithmetic: the checkpoint records what it
  // resolved to (runtime.compute_dtype), and a change of it is refused like any other.
  const std::string bf = s.dir.str() + "/bf16";
  ASSERT_EQ(s.train(bf, "--set model.dtype=bfloat16 --set run.stop_after=2"), 0) << s.out_text;
  EXPECT_EQ(s.train(bf, "--set model.dtype=auto --accept-change model"), 1);
  EXPECT_TRUE(has(s.out_text, "runtime.compute_dtype: \"bfloat16\" -> \"float32\"")) << s.out_text;
  // Accepted explicitly (by section): trains on, with a warning.
  ASSERT_EQ(s.train(run, "--set optim.lr=1e-3 --accept-change optim"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "optim.lr: 0.003 -> 0.001 (accepted")) << s.out_text;
  EXPECT_EQ(metrics(run).back()["step"], 8);
}

TEST(FirstHour, Item05_AFinishedRunRunAgainSaysItIsCompleteWithItsLastLoss) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set schedule.steps=2"), 0) << s.out_text;
  const auto config_time = fs::last_write_time(run + "/export/config.json");
  const double last = metrics(run).back()["loss"].get<double>();
  ASSERT_EQ(s.train(run, "--set schedule.steps=2"), 0) << s.out_text;
  std::ostringstream want;
  want << "already complete: 2 steps, last loss " << last;
  EXPECT_TRUE(has(s.out_text, want.str())) << s.out_text;
  EXPECT_FALSE(has(s.out_text, "last loss 0,")) << s.out_text;
  EXPECT_EQ(fs::last_write_time(run + "/export/config.json"), config_time) << "the export was written again";
}

// ---- data tied to its model ----

TEST(FirstHour, Item06_AStoreMadeWithAnotherTokenizerOfTheSameSizeIsRefusedNamingBoth) {
  TinySetup s;
  {
    std::ofstream other(s.dir.path / "other.txt");
    for (int i = 0; i < 300; ++i) other << "Another corpus, line " << i << ": zebras " << i * 13 << " and quartz.\n\n";
  }
  ASSERT_EQ(s.run("train-tokenizer --input " + (s.dir.path / "other.txt").string() + " --output " +
                  (s.dir.path / "other").string() + " --vocab-size 320"), 0) << s.out_text;
  const std::string other_store = s.dir.str() + "/other-store";
  ASSERT_EQ(s.run("prepare --tokenizer " + (s.dir.path / "other.model").string() + " --input " +
                  (s.dir.path / "corpus.txt").string() + " --output " + other_store + " --txt-split blank_line"), 0)
      << s.out_text;
  EXPECT_EQ(s.train(s.dir.str() + "/run", "--set data.store=" + other_store), 1) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "was made with tokenizer " + fs::absolute(s.dir.path / "other.model").string())) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "but the model's is " + s.model() + "/tokenizer.model")) << s.out_text;
}

TEST(FirstHour, Item07_AModelWithoutATokenizerIsReportedAtStart) {
  TinySetup s;
  const std::string bare = s.dir.str() + "/bare-model";
  fs::copy(s.model(), bare);
  fs::remove(bare + "/tokenizer.model");
  ASSERT_EQ(s.train(s.dir.str() + "/run", "--set model.path=" + bare + " --set schedule.steps=2"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "model.path " + bare + " has no tokenizer.json or tokenizer.model")) << s.out_text;
  ASSERT_EQ(s.train(s.dir.str() + "/run2", "--set schedule.steps=2"), 0) << s.out_text;
  EXPECT_FALSE(has(s.out_text, "has no tokenizer")) << s.out_text;
}

TEST(FirstHour, Item08_TrainTokenizerReadsJsonLinesByTheirText) {
  TinySetup s;
  const fs::path jsonl = s.dir.path / "docs.jsonl", text = s.dir.path / "docs.txt";
  {
    std::ofstream j(jsonl), t(text);
    for (int i = 0; i < 80; ++i) {
      const std::string doc = "Paragraph \"" + std::to_string(i) + "\" says: the fox jumps.\nA second line, number " +
                              std::to_string(i * 7) + ", with quotes \"like these\".";
      j << nlohmann::json{{"text", doc}, {"id", i}}.dump() << "\n";
      t << doc << "\n\n";  // the same documents as plain text, a blank line between them
    }
  }
  ASSERT_EQ(s.run("train-tokenizer --input " + jsonl.string() + " --output " + (s.dir.path / "from-jsonl").string() +
                  " --vocab-size 330"), 0) << s.out_text;
  ASSERT_EQ(s.run("train-tokenizer --input " + text.string() + " --output " + (s.dir.path / "from-text").string() +
                  " --vocab-size 330"), 0) << s.out_text;
  // Trained on the texts, not on JSON: the same pieces and scores as from the plain text (the .model
  // files differ only in the input path they record), no escape pieces.
  const std::string vocab = read_text((s.dir.path / "from-jsonl.vocab").string());
  EXPECT_EQ(vocab, read_text((s.dir.path / "from-text.vocab").string()));
  EXPECT_FALSE(has(vocab, "\\")) << "a piece holds a JSON escape";
  EXPECT_FALSE(has(vocab, "text\"")) << "a piece holds the JSON field name";
  EXPECT_FALSE(fs::exists(s.dir.path / "from-jsonl.input.txt")) << "the intermediate text was left behind";
}

// ---- one strictness everywhere ----

TEST(FirstHour, Item09_NewModelRefusesUnknownKeysWrongTypesAndAnExistingFolder) {
  TinySetup s;
  const std::string out = s.dir.str() + "/m";
  EXPECT_EQ(s.run("new-model --output " + out + " --set hidden_sise=64"), 2);
  EXPECT_TRUE(has(s.out_text, "unknown config.json key 'hidden_sise' (did you mean 'hidden_size'?)")) << s.out_text;
  EXPECT_EQ(s.run("new-model --output " + out + " --set hidden_size=wide"), 2);
  EXPECT_TRUE(has(s.out_text, "key 'hidden_size' expects number (an integer), got \"wide\"")) << s.out_text;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(s.run("new-model --output " + s.model() + " --set hidden_size=64"), 2);
  EXPECT_TRUE(has(s.out_text, "already exists and is not an empty folder (pass --overwrite")) << s.out_text;
  EXPECT_EQ(load_config(s.model()).hidden_size, 32) << "the existing model was overwritten";
  // Rebuilt in place, its own tokenizer copied in, the folder named with a trailing slash.
  ASSERT_EQ(s.run("new-model --output " + s.model() + "/ --overwrite --tokenizer " + s.model() + "/tokenizer.model "
                  "--set hidden_size=64 --set rope_theta=500000"), 0) << s.out_text;
  EXPECT_EQ(load_config(s.model()).hidden_size, 64);
  EXPECT_EQ(load_config(s.model()).rope_theta, 500000.0);
  EXPECT_TRUE(fs::exists(s.model() + "/tokenizer.model"));
  EXPECT_EQ(s.run("new-model --output " + s.dir.str() + " --overwrite"), 2) << "a folder that is not a model was replaced";
  EXPECT_TRUE(has(s.out_text, "has no config.json; refusing to delete it")) << s.out_text;
}

TEST(FirstHour, Item10_ATargetBelowThePretrainedLengthIsRefusedForEveryType) {
  TinySetup s;
  for (const std::string type : {"default", "linear", "ntk", "dynamic", "yarn", "dynamic-yarn", "llama3"}) {
    const std::string extra = type == "llama3" ? " --set 'rope.extra={\"low_freq_factor\":1,\"high_freq_factor\":4}'" : "";
    EXPECT_EQ(s.run("train " + s.config() + " --print-config --set sampler.name=contiguous --set rope.type=" + type +
                    " --set rope.target_len=16" + extra), 1) << type;
    EXPECT_TRUE(has(s.out_text, "key 'rope.target_len': 16 is below the model's pre-trained length 32")) << type << s.out_text;
    EXPECT_EQ(s.run("train " + s.config() + " --print-config --set rope.type=" + type + " --set rope.factor=0.5" + extra), 1)
        << type;
    EXPECT_TRUE(has(s.out_text, "key 'rope.factor': must be >= 1")) << type << s.out_text;
  }
}

TEST(FirstHour, Item11_KeepTrainsThePositionsRopeTargetLenAsks) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set rope.type=keep --set rope.target_len=128 --set schedule.steps=2"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "positions < 128")) << s.out_text;
  EXPECT_EQ(load_config(run + "/export").max_position_embeddings, 128);
  EXPECT_TRUE(load_config(run + "/export").rope.is_default()) << "keep changed the rope";
  EXPECT_EQ(s.run("train " + s.config() + " --print-config --set rope.type=keep --set rope.factor=2"), 1);
  EXPECT_TRUE(has(s.out_text, "key 'rope.factor': has no meaning with rope.type 'keep'")) << s.out_text;
}

TEST(FirstHour, Item12_SuggestionsComeFromTheRightSection) {
  TinySetup s;
  struct Case {
    std::string set, want, not_want;
  };
  // Each mistake as a user makes it (the value only needs to parse); `not_want` is the wrong
  // suggestion the old nearest-of-all-keys search gave, or the one the near-miss would invite.
  for (const Case& c : std::vector<Case>{
           {"optim.learning_rate=1e-3", "(did you mean 'optim.lr'?)", "data.train_len"},
           {"sampeler.name=pose", "(did you mean 'sampler.name'?)", "run.name"},
           {"model.dtype=fp16", "train in \"bfloat16\"", "\"auto\"?"},
           {"model.dtype=bf16", "(did you mean \"bfloat16\"?)", "\"auto\"?"},
           {"optim.gradclip=1", "(did you mean 'optim.grad_clip'?)", "run."},
           {"schedule.warmup=5", "(did you mean 'schedule.warmup_steps'?)", "'schedule.steps'"}}) {
    EXPECT_EQ(s.run("train " + s.config() + " --print-config --set " + c.set), 1) << c.set;
    EXPECT_TRUE(has(s.out_text, c.want)) << c.set << "\n" << s.out_text;
    EXPECT_FALSE(has(s.out_text, c.not_want)) << c.set << "\n" << s.out_text;
  }
}

TEST(FirstHour, Item13_ValuesThatCannotTrainAreRefusedNamingTheKey) {
  TinySetup s;
  for (const auto& [set, want] : std::vector<std::pair<std::string, std::string>>{
           {"optim.lr=1e38", "key 'optim.lr' must be in [0.0, 1.0], got 1e+38"},
           {"optim.eps=5", "key 'optim.eps' must be in [0.0, 1.0]"},
           {"optim.weight_decay=1000", "key 'optim.weight_decay': each step scales the weights by 1 - optim.lr x"},
           {"rope.factor=1e300", "key 'rope.factor' must be in [0.0, 4096.0]"},
           {"distributed.bucket_mb=1e300", "key 'distributed.bucket_mb' must be in"}}) {
    EXPECT_EQ(s.run("train " + s.config() + " --print-config --set " + set), 1) << set;
    EXPECT_TRUE(has(s.out_text, want)) << set << "\n" << s.out_text;
  }
}

TEST(FirstHour, Item14_Llama3SaysWhereItsKeysGoAndInspectRopeFillsTheOriginalLength) {
  TinySetup s;
  EXPECT_EQ(s.run("train " + s.config() + " --print-config --set rope.type=llama3"), 1);
  EXPECT_TRUE(has(s.out_text, "key 'rope.extra': rope.type 'llama3' needs low_freq_factor and high_freq_factor there"))
      << s.out_text;
  ASSERT_EQ(s.run("train " + s.config() + " --print-config --set rope.type=llama3 "
                  "--set 'rope.extra={\"low_freq_factor\":1,\"high_freq_factor\":4}'"), 0) << s.out_text;
  // transformers takes original_max_position_embeddings from the config's max_position_embeddings (32).
  ASSERT_EQ(s.run("inspect rope --model " + s.model() + " --rope-scaling '{\"type\":\"yarn\",\"factor\":8}'"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "yarn (rope_theta=10000, factor=8, original_max_position_embeddings=32)")) << s.out_text;
}

TEST(FirstHour, Item15_PrintConfigChecksWhatTrainChecks) {
  TinySetup s;
  EXPECT_EQ(s.run("train " + s.config() + " --print-config --set rope.type=yarn --set 'rope.extra={\"beta_fastt\":3}'"), 1);
  EXPECT_TRUE(has(s.out_text, "key 'rope.extra' (rope.type 'yarn')") && has(s.out_text, "beta_fastt")) << s.out_text;
  EXPECT_EQ(s.run("train " + s.config() + " --print-config --set data.store=" + s.dir.str() + "/nowhere"), 1);
  EXPECT_TRUE(has(s.out_text, "key 'data.store'") && has(s.out_text, s.dir.str() + "/nowhere")) << s.out_text;
  ASSERT_EQ(s.run("train " + s.config() + " --print-config"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "\"cream_table_points\"")) << s.out_text;
}

// ---- defaults that work, messages that help ----

TEST(FirstHour, Item16_EvalSkipsTheCellsThatCannotFitAndWritesWhatItMeasured) {
  TinySetup s;
  const std::string out = s.dir.str() + "/eval";
  // The passkey and kv prompts of this vocabulary need about 230 tokens: length 64 cannot hold one.
  ASSERT_EQ(s.run("eval --model " + s.model() + " --lengths 64,400 --depths 2 --samples 1 --no-plot --output " + out), 0)
      << s.out_text;
  EXPECT_TRUE(has(s.out_text, "eval: passkey at length 64 skipped")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "eval: kv at length 64 skipped")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "perplexity needs --data")) << s.out_text;
  const nlohmann::json r = nlohmann::json::parse(read_text(out + "/results.json"));
  EXPECT_EQ(r["passkey"]["lengths"], nlohmann::json({400}));
  EXPECT_EQ(r["kv"]["lengths"], nlohmann::json({400}));
  EXPECT_EQ(r["skipped"]["passkey"][0]["length"], 64);
  EXPECT_FALSE(r.contains("ppl"));
  EXPECT_TRUE(has(read_text(out + "/results.md"), "passkey at length 64 skipped"));
  // Nothing fits: an error before anything runs, naming why.
  EXPECT_EQ(s.run("eval --model " + s.model() + " --lengths 64 --no-plot --output " + s.dir.str() + "/none"), 1);
  EXPECT_TRUE(has(s.out_text, "eval: no task fits at lengths [64]")) << s.out_text;
  EXPECT_FALSE(fs::exists(s.dir.str() + "/none/results.json"));
  // The launcher the help names exists.
  ASSERT_EQ(s.run("eval --help"), 0);
  EXPECT_TRUE(has(s.out_text, "./run.sh eval --nproc N")) << s.out_text;
  EXPECT_TRUE(has(read_text(source_dir() + "/run.sh"), "\n  eval) eval_local \"$@\" ;;\n"));
}

TEST(FirstHour, Item17_EvalTakesTheDocumentsTrainingHoldsOut) {
  TinySetup s;
  const std::string out = s.dir.str() + "/eval";
  ASSERT_EQ(s.run("eval --model " + s.model() + " --tasks ppl --data " + s.store() +
                  " --lengths 32 --docs 3 --protocols truncated --no-plot --output " + out), 0) << s.out_text;
  const nlohmann::json r = nlohmann::json::parse(read_text(out + "/results.json"));
  const size_t n = TokenStore::open(s.store()).num_documents();
  // Every document is longer than 32 tokens: the last three, which eval.docs = 3 holds out of training.
  EXPECT_EQ(r["ppl"]["truncated"]["rows"][0]["documents"], nlohmann::json({n - 1, n - 2, n - 3}));
  EXPECT_TRUE(has(s.out_text, "documents [" + std::to_string(n - 1) + "," + std::to_string(n - 2))) << s.out_text;
}

TEST(FirstHour, Item18_RunShTrainAndEvalResolvePathsInTheCallersFolder) {
  TinySetup s;
  const fs::path caller = s.dir.path / "elsewhere";
  fs::create_directories(caller);
  // A config with paths relative to the caller's folder.
  fs::create_directory_symlink(s.model(), caller / "model");
  fs::create_directory_symlink(s.store(), caller / "store");
  {
    nlohmann::json cfg = nlohmann::json::parse(read_text(s.config()));
    cfg["model"]["path"] = "model";
    cfg["data"]["store"] = "store";
    cfg["run"]["output_dir"] = "runs/mine";
    cfg["schedule"]["steps"] = 2;
    std::ofstream(caller / "mine.json") << cfg.dump(2);
  }
  const std::string env = "cd '" + caller.string() + "' && ROPEX_SKIP_BUILD=1 ROPEX_BUILD_DIR='" +
                          fs::path(ropex_binary()).parent_path().string() + "' bash '" + source_dir() + "/run.sh' ";
  std::string out;
  ASSERT_EQ(run_command(env + "train mine.json", &out), 0) << out;
  EXPECT_TRUE(fs::exists(caller / "runs/mine/checkpoints/step_00000002")) << out;
  ASSERT_EQ(run_command(env + "eval --nproc 2 --model model --tasks passkey --lengths 400 --depths 2 --samples 1 --no-plot "
                              "--output ev", &out), 0) << out;
  EXPECT_TRUE(fs::exists(caller / "ev/results.json")) << out;
}

TEST(FirstHour, Item19_ARankWaitingForTheOthersSaysWhatAndWhere) {
  TinySetup s;
  const int port = 30000 + static_cast<int>(::getpid() % 20000);
  // MASTER_ADDR unset, no second rank: the message names the address and what is missing.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.train(s.dir.str() + "/alone", "--set distributed.timeout_s=2",
                    "env -u MASTER_ADDR RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_PORT=" + std::to_string(port)), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60)) << "the rank waited far past its timeout";
  EXPECT_TRUE(has(s.out_text, "listening for the other ranks on port " + std::to_string(port))) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "only 1 of 2 ranks joined at 127.0.0.1:" + std::to_string(port) + " within 2 s")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "MASTER_ADDR/MASTER_PORT not both set")) << s.out_text;
  // Rank 1 of another launch (another config: its own run folder and an lr other than the
  // fixture's 3e-3) on the same port: both ranks stop at once saying so, instead of training
  // together or dying later with "Connection reset by peer". The 20 s timeout only bounds a
  // failure of this check; the refusal comes after the configs are exchanged, in about a second.
  // Rank 0 is told to delete what its folder holds: the mismatch is found before it touches it.
  ASSERT_EQ(s.train(s.dir.str() + "/jobA", "--set schedule.steps=2"), 0) << s.out_text;
  const std::string cmd =
      "cd '" + s.dir.str() + "' && (RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port + 1) +
      " '" + ropex_binary() + "' train " + s.config() + " --set run.output_dir=jobA --set distributed.timeout_s=20"
      " --set checkpoint.resume=never --set checkpoint.start_over=delete > a.log 2>&1 & "
      "RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port + 1) + " '" + ropex_binary() +
      "' train " + s.config() + " --set run.output_dir=jobB --set optim.lr=1e-3 --set distributed.timeout_s=20 > b.log 2>&1; "
      "echo b=$?; wait $!; echo a=$?)";
  std::string out;
  const auto t1 = std::chrono::steady_clock::now();
  run_command(cmd, &out);
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::seconds(20)) << "the mismatch waited for the timeout";
  EXPECT_TRUE(has(out, "b=1") && has(out, "a=1")) << out;
  for (const char* log : {"/a.log", "/b.log"}) {
    const std::string text = read_text(s.dir.str() + log);
    EXPECT_TRUE(has(text, "ranks were started with different configurations (or a rank of another launch joined at 127.0.0.1:" +
                              std::to_string(port + 1))) << log << "\n" << text;
  }
  EXPECT_TRUE(fs::exists(s.dir.path / "jobA" / "checkpoints" / "step_00000002")) << "rank 0 deleted the earlier run";

  // Two launches told apart by their ids (ROPEX_JOB_ID, as ./run.sh sets it) on one port: neither
  // counts the other's rank, and both say which launch id they waited for.
  const std::string launch = "RANK=%R WORLD_SIZE=2 LOCAL_RANK=%R MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port + 2) +
                             " ROPEX_JOB_ID=%J '" + ropex_binary() + "' train " + s.config() +
                             " --set run.output_dir=%J --set distributed.timeout_s=3 > %J.log 2>&1";
  auto with = [&](std::string cmd, const std::string& r, const std::string& j) {
    for (size_t p; (p = cmd.find("%R")) != std::string::npos;) cmd.replace(p, 2, r);
    for (size_t p; (p = cmd.find("%J")) != std::string::npos;) cmd.replace(p, 2, j);
    return cmd;
  };
  run_command("cd '" + s.dir.str() + "' && (" + with(launch, "0", "launchC") + " & " + with(launch, "1", "launchD") + "; wait)",
              &out);
  EXPECT_TRUE(has(read_text(s.dir.str() + "/launchC.log"), "only 1 of 2 ranks joined at 127.0.0.1:" + std::to_string(port + 2) +
                                                             " within 3 s (launch id 'launchC')"))
      << read_text(s.dir.str() + "/launchC.log");
  EXPECT_TRUE(has(read_text(s.dir.str() + "/launchD.log"), "(launch id 'launchD')")) << read_text(s.dir.str() + "/launchD.log");

  // A rank started twice: once ranks 0 and 1 have joined (and are kept busy by a slow checkpoint
  // write), a second rank 1 is refused at once; the launch trains on without it.
  const std::string twice = "RANK=%R WORLD_SIZE=2 LOCAL_RANK=%R MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port + 3) +
                            " ROPEX_FAULT_INJECT=slow-writer:8000 '" + ropex_binary() + "' train " + s.config() +
                            " --set run.output_dir=twice --set schedule.steps=2 --set distributed.timeout_s=30 > %J.log 2>&1";
  run_command("cd '" + s.dir.str() + "' && (" + with(twice, "0", "r0") + " & " + with(twice, "1", "r1a") + " & " +
                  "for i in $(seq 300); do grep -q 'rank 0/2 joined' r0.log 2>/dev/null && break; sleep 0.1; done; " +
                  with(twice, "1", "r1b") + "; wait)",
              &out);
  int refused = 0, done = 0;
  for (const char* log : {"/r0.log", "/r1a.log", "/r1b.log"}) {
    const std::string text = read_text(s.dir.str() + log);
    refused += has(text, "3 ranks joined at 127.0.0.1:" + std::to_string(port + 3) + " but WORLD_SIZE is 2") ? 1 : 0;
    done += has(text, "done: 2 steps") ? 1 : 0;
  }
  EXPECT_TRUE(has(read_text(s.dir.str() + "/r1b.log"), "3 ranks joined at 127.0.0.1:" + std::to_string(port + 3) +
                                                          " but WORLD_SIZE is 2: this rank is one too many"))
      << read_text(s.dir.str() + "/r1b.log");
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(done, 2) << read_text(s.dir.str() + "/r0.log");
}

TEST(FirstHour, Item20_ExportOfARunFolderNamesItsNewestCheckpoint) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set schedule.steps=4"), 0) << s.out_text;
  EXPECT_EQ(s.run("export --checkpoint " + run + " --output " + s.dir.str() + "/hf"), 1);
  EXPECT_TRUE(has(s.out_text, run + " is a run folder, not a checkpoint: its newest complete checkpoint is " + run +
                                  "/checkpoints/step_00000004")) << s.out_text;
}

TEST(FirstHour, Item21_TheResolvedConfigGoesToTheRunFolderNotTheConsole) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set schedule.steps=2"), 0) << s.out_text;
  EXPECT_FALSE(has(s.out_text, "cream_table_points")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "(full config: " + run + "/run_config.json)")) << s.out_text;
  EXPECT_TRUE(has(read_text(run + "/run_config.json"), "\"cream_table_points\""));
  ASSERT_EQ(s.train(s.dir.str() + "/debug", "--set schedule.steps=2 --set run.log_level=debug"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "\"cream_table_points\"")) << "the debug log lacks the resolved config";
}

}  // namespace
}  // namespace ropex::test
