// Checkpoints that scale and survive, end to end through the ropex binary on Gloo ranks:
//   * the state read back equals the state written, bit for bit, across world sizes 1-3 and ZeRO
//     stages 0-2 (every rank writes only its share; a rank reads only what it keeps);
//   * an async save writes the same bytes as a synchronous one;
//   * a corrupt or truncated checkpoint is refused naming the file; resume=auto falls back past it;
//   * ENOSPC/EIO at a write or fsync of one rank fail the save on every rank, naming the path, and
//     leave the previous checkpoint intact; short writes change nothing;
//   * SIGTERM (to one rank, to all, or during evaluation) stops every rank with a checkpoint and
//     status 75, and the resumed run ends with the uninterrupted run's weights; a second SIGINT exits;
//   * non-finite steps are skipped up to optim.skip_nonfinite, leaving the state untouched, then stop.
// The numeric equalities here are exact: the same arithmetic in the same order on both sides.
#include "tests/train_fixture.h"
#include "trainer/checkpoint.h"
#include "trainer/log.h"

#include <chrono>
#include <random>

namespace ropex::test {
namespace {

// Every state tensor of two checkpoints, compared bit for bit (keys and shapes too).
void expect_same_state(const std::string& a, const std::string& b, const std::string& what) {
  const CheckpointFiles fa(a), fb(b);
  ASSERT_EQ(fa.manifest().tensors, fb.manifest().tensors) << what;
  for (const auto& [key, shape] : fa.manifest().tensors)
    EXPECT_TRUE(at::equal(fa.read_whole(key), fb.read_whole(key))) << what << ": " << key;
}

std::string ckpt(const std::string& run, int64_t step) { return run + "/checkpoints/" + checkpoint_name(step); }

uint64_t file_size(const std::string& path) { return fs::file_size(path); }

// The largest file of a checkpoint folder.
std::string largest_file(const std::string& dir) {
  std::string best;
  for (const auto& e : fs::directory_iterator(dir))
    if (best.empty() || fs::file_size(e.path()) > fs::file_size(best)) best = e.path().string();
  return best;
}

// Whether two checkpoint folders hold the same bytes in every file, run_config.json apart (it names
// the run folder and the options under test) and its record in manifest.json; counts the files.
int expect_same_files(const std::string& a, const std::string& b, const std::string& what) {
  auto manifest = [](const std::string& dir) {
    nlohmann::json m = nlohmann::json::parse(read_text(dir + "/manifest.json"));
    auto& files = m["files"];
    for (auto it = files.begin(); it != files.end();)
      it = (*it)["name"] == "run_config.json" ? files.erase(it) : it + 1;
    return m;
  };
  int compared = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    const std::string name = e.path().filename().string();
    if (name == "run_config.json") continue;
    if (name == "manifest.json") EXPECT_TRUE(manifest(a) == manifest(b)) << what << ": manifest.json differs";
    else EXPECT_TRUE(read_text(e.path().string()) == read_text(b + "/" + name)) << what << ": " << name << " differs";
    ++compared;
  }
  return compared;
}

// Sets for a global batch of 12 examples on `world` ranks (1, 2 or 3) at a ZeRO stage.
std::string layout(int world, int stage) {
  return cat("--set batch.micro_batch_size=", 6 / world, " --set batch.grad_accum=2 --set distributed.zero_stage=", stage,
             " --set distributed.bucket_mb=0.01");
}

TEST(Checkpoint, StateReadBackEqualsStateWrittenAtAnyWorldSizeAndStage) {
  TinySetup s;
  struct Source {
    int world, stage;
    std::vector<std::pair<int, int>> targets;
  };
  std::vector<std::pair<int, int>> every;
  for (int w = 1; w <= 3; ++w)
    for (int z = 0; z <= 2; ++z) every.emplace_back(w, z);
  const std::vector<Source> sources = {{3, 2, every}, {2, 0, {{1, 1}, {3, 2}}}, {1, 0, {{2, 2}}}};
  for (const auto& src : sources) {
    const std::string from = s.dir.str() + cat("/src_w", src.world, "_z", src.stage);
    ASSERT_EQ(train_ranks(s, src.world, from, layout(src.world, src.stage) + " --set run.stop_after=3"), 0)
        << read_text(from + ".rank0.log");
    const std::string written = ckpt(from, 3);
    // Every rank wrote its own share, about 1/W of the state (rank 0 no heavier).
    const CheckpointFiles f(written);
    EXPECT_EQ(f.manifest().world, src.world);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int r = 0; r < src.world; ++r) {
      const uint64_t n = file_size(written + "/" + shard_file_name(r, src.world));
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    EXPECT_LE(static_cast<double>(hi), 1.1 * static_cast<double>(lo)) << "unequal shards at W=" << src.world;
    for (const auto& [w, z] : src.targets) {
      const std::string what = cat("W=", src.world, " ZeRO-", src.stage, " read back at W=", w, " ZeRO-", z);
      const std::string to = s.dir.str() + cat("/from_w", src.world, "_z", src.stage, "_to_w", w, "_z", z);
      ASSERT_EQ(train_ranks(s, w, to, layout(w, z) + " --set checkpoint.resume=" + written, "", "ROPEX_FAULT_INJECT=resave-after-resume"),
                0)
          << what << "\n" << read_text(to + ".rank0.log");
      expect_same_state(written, ckpt(to, 3), what);
      const CheckpointFiles g(ckpt(to, 3));
      EXPECT_EQ(g.manifest().world, w) << what;
      EXPECT_EQ(g.trainer_state()["optimizer_steps"], 3) << what;
      if (w == src.world)  // the sampler's state of every rank too
        for (int r = 0; r < w; ++r)
          EXPECT_EQ(read_text(written + "/" + rank_state_file(r)), read_text(ckpt(to, 3) + "/" + rank_state_file(r))) << what;
    }
  }
}

TEST(Checkpoint, AnAsyncSaveWritesTheSameBytesAsASynchronousOne) {
  TinySetup s;
  const std::string sets = layout(2, 1);
  const std::string sync_run = s.dir.str() + "/sync", async_run = s.dir.str() + "/async";
  ASSERT_EQ(train_ranks(s, 2, sync_run, sets), 0) << read_text(sync_run + ".rank0.log");
  // The writer is slowed down (300 ms a save) so that training visibly goes on while it writes.
  ASSERT_EQ(train_ranks(s, 2, async_run, sets + " --set checkpoint.async=true --set logging.every=1", "",
                        "ROPEX_FAULT_INJECT=slow-writer:300"),
            0)
      << read_text(async_run + ".rank0.log");
  const std::string log = read_text(async_run + ".rank0.log");
  const size_t step3 = log.find("step 3/8"), committed = log.find("checkpoint " + ckpt(async_run, 2));
  ASSERT_NE(step3, std::string::npos) << log;
  ASSERT_NE(committed, std::string::npos) << log;
  EXPECT_LT(step3, committed) << "step 3 ran while step 2 was being written\n" << log;
  int compared = 0;
  for (int64_t step : {2, 4, 6, 8}) {
    ASSERT_TRUE(fs::exists(ckpt(async_run, step) + "/manifest.json")) << step;
    compared += expect_same_files(ckpt(sync_run, step), ckpt(async_run, step), cat("step ", step));
  }
  EXPECT_EQ(compared, 4 * 8);  // 2 shards, 2 rank states, config, trainer state, tokenizer, manifest
  const auto a = metrics(sync_run), b = metrics(async_run);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << i + 1;
}

TEST(Checkpoint, ACorruptCheckpointIsRefusedAndAutoResumeFallsBackPastIt) {
  TinySetup s;
  const std::string straight = s.dir.str() + "/straight", run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(straight, "--set checkpoint.keep_last=2"), 0) << s.out_text;
  ASSERT_EQ(s.train(run, "--set checkpoint.keep_last=2 --set run.stop_after=6"), 0) << s.out_text;
  ASSERT_TRUE(fs::exists(ckpt(run, 4)) && fs::exists(ckpt(run, 6)));
  EXPECT_FALSE(fs::exists(ckpt(run, 2))) << "keep_last=2 should have pruned step 2";
  ASSERT_EQ(s.run("verify-checkpoint " + ckpt(run, 6)), 0) << s.out_text;
  // One byte flipped in the middle of step 6's largest file.
  const std::string victim = largest_file(ckpt(run, 6));
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(file_size(victim) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(file_size(victim) / 2));
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
  }
  EXPECT_EQ(s.run("verify-checkpoint " + ckpt(run, 6)), 1);
  EXPECT_NE(s.out_text.find(victim + ": checksum"), std::string::npos) << s.out_text;
  // Asked for by name: refused, naming the file.
  EXPECT_EQ(s.train(s.dir.str() + "/explicit", "--set checkpoint.resume=" + ckpt(run, 6)), 1);
  EXPECT_NE(s.out_text.find("failed verification"), std::string::npos) << s.out_text;
  EXPECT_NE(s.out_text.find(victim), std::string::npos) << s.out_text;
  // resume=auto: step 6 is refused and set aside, step 4 is used, the run ends as the straight one.
  ASSERT_EQ(s.train(run, "--set checkpoint.keep_last=2"), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("failed verification, falling back to the previous one"), std::string::npos) << s.out_text;
  EXPECT_NE(s.out_text.find("resumed from " + ckpt(run, 4)), std::string::npos) << s.out_text;
  EXPECT_TRUE(fs::exists(ckpt(run, 6) + ".corrupt"));
  expect_same_state(ckpt(straight, 8), ckpt(run, 8), "resumed past a corrupt checkpoint");
  EXPECT_FALSE(fs::exists(ckpt(run, 4))) << "retention: steps 6 and 8 are the two kept";
  // A truncated newest file: refused too, and with nothing older left, auto says so.
  fs::resize_file(largest_file(ckpt(run, 8)), file_size(largest_file(ckpt(run, 8))) - 8);
  fs::remove_all(ckpt(run, 6));
  EXPECT_EQ(s.train(run, "--set schedule.steps=10"), 1);
  EXPECT_NE(s.out_text.find("bytes, the manifest records"), std::string::npos) << s.out_text;
  EXPECT_NE(s.out_text.find("every checkpoint under"), std::string::npos) << s.out_text;
  // The next start does not silently begin again from step 0 while corrupt ones are kept aside.
  EXPECT_EQ(s.train(run, "--set schedule.steps=10"), 1);
  EXPECT_NE(s.out_text.find("set aside as corrupt"), std::string::npos) << s.out_text;
  EXPECT_TRUE(fs::exists(ckpt(run, 6) + ".corrupt") && fs::exists(ckpt(run, 8) + ".corrupt"));
}

std::string fault_name(const ::testing::TestParamInfo<std::pair<std::string, std::string>>& info) {
  const char* names[] = {"EnospcAtFirstWrite", "EnospcAtThirdWrite", "EioAtFsync", "NoFreeSpaceBeforeTheSave",
                         "EnospcAtRank0sManifest", "EnospcInAnAsyncSave"};
  return names[info.index];
}

class StorageFault : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

// One rank hits the fault in the save of step 4 (2 ranks, ZeRO-1; rank 1 in the writing phase,
// rank 0 at the commit's manifest; also an async save, whose failure surfaces at a later step):
// both ranks stop naming the path, step 2 is intact, no partial folder is left; the same command
// then finishes as a clean run.
TEST_P(StorageFault, FailsTheSaveOnEveryRankAndKeepsThePreviousCheckpoint) {
  const auto [fault, reason] = GetParam();
  const bool before_writing = fault.find("FREE") != std::string::npos;  // nothing written: no path inside the folder
  TinySetup s;
  const std::string sets = layout(2, 1);
  const std::string clean = s.dir.str() + "/clean", run = s.dir.str() + "/run";
  ASSERT_EQ(train_ranks(s, 2, clean, sets), 0) << read_text(clean + ".rank0.log");
  const bool async = fault.find("async") != std::string::npos;
  const std::string injected = fault.substr(0, fault.find(" async"));
  const bool at_commit = fault.find("manifest") != std::string::npos;  // rank 0's phase
  const std::vector<int> rc = ranks_status(s, 2, run, sets + (async ? " --set checkpoint.async=true" : ""),
                                           at_commit ? "" : "ROPEX_FAULT_INJECT=" + injected, "",
                                           at_commit ? "ROPEX_FAULT_INJECT=" + injected : "");
  EXPECT_NE(rc[0], 0);
  EXPECT_NE(rc[1], 0);
  for (int r = 0; r < 2; ++r) {
    const std::string log = read_text(run + ".rank" + std::to_string(r) + ".log");
    EXPECT_NE(log.find("checkpoint at step 4 not saved"), std::string::npos) << log;
    EXPECT_NE(log.find(before_writing ? run + "/checkpoints/step_00000004" : run + "/checkpoints/.step_00000004.partial/"),
              std::string::npos)
        << "the path is named\n" << log;
    EXPECT_NE(log.find(reason), std::string::npos) << log;
    EXPECT_NE(log.find("the previous checkpoint is intact: " + ckpt(run, 2)), std::string::npos) << log;
  }
  EXPECT_FALSE(fs::exists(run + "/checkpoints/.step_00000004.partial"));
  EXPECT_FALSE(fs::exists(ckpt(run, 4)));
  EXPECT_TRUE(verify_checkpoint(ckpt(run, 2)).empty());
  ASSERT_EQ(train_ranks(s, 2, run, sets), 0) << read_text(run + ".rank0.log");
  expect_same_state(ckpt(clean, 8), ckpt(run, 8), "resumed after a storage fault");
}
INSTANTIATE_TEST_SUITE_P(
    Checkpoint, StorageFault,
    ::testing::Values(std::pair<std::string, std::string>{"storage-fault:ENOSPC:4:1", "No space left on device"},
                      std::pair<std::string, std::string>{"storage-fault:ENOSPC:4:3", "No space left on device"},
                      std::pair<std::string, std::string>{"storage-fault:EIO-fsync:4:1", "Input/output error"},
                      std::pair<std::string, std::string>{"storage-fault:FREE:4", "has 0 available; free space"},
                      std::pair<std::string, std::string>{"storage-fault:ENOSPC-manifest:4", "manifest.json: No space left on device"},
                      std::pair<std::string, std::string>{"storage-fault:ENOSPC:4:3 async", "No space left on device"}),
    fault_name);

TEST(Checkpoint, ShortWritesStillWriteEveryByte) {
  TinySetup s;
  const std::string a = s.dir.str() + "/a", b = s.dir.str() + "/b";
  ASSERT_EQ(s.train(a, "--set run.stop_after=2"), 0) << s.out_text;
  ASSERT_EQ(s.train(b, "--set run.stop_after=2", "ROPEX_FAULT_INJECT=short-writes"), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("short writes completed so far: "), std::string::npos) << "the injection did not act\n" << s.out_text;
  EXPECT_EQ(expect_same_files(ckpt(a, 2), ckpt(b, 2), "short writes"), 6);  // shard, rank state, config, trainer state, tokenizer, manifest
}

// A stop signal to rank 1 only (before step 4): both ranks agree, save step 4 and exit 75; the
// same command then ends with the uninterrupted run's state.
TEST(Checkpoint, ASignalToOneRankStopsEveryRankWithACheckpoint) {
  TinySetup s;
  const std::string sets = layout(2, 0);
  const std::string straight = s.dir.str() + "/straight", run = s.dir.str() + "/run", eval = s.dir.str() + "/eval";
  ASSERT_EQ(train_ranks(s, 2, straight, sets), 0) << read_text(straight + ".rank0.log");
  EXPECT_EQ(ranks_status(s, 2, run, sets, "ROPEX_FAULT_INJECT=signal-at-step:3"), (std::vector<int>{75, 75}))
      << read_text(run + ".rank0.log") << read_text(run + ".rank1.log");
  EXPECT_NE(read_text(run + ".rank0.log").find("stop requested (signal on another rank): stopped at step 4"), std::string::npos)
      << read_text(run + ".rank0.log");
  EXPECT_NE(read_text(run + ".rank1.log").find("stop requested (signal 15): stopped at step 4"), std::string::npos);
  EXPECT_TRUE(verify_checkpoint(ckpt(run, 4)).empty());
  EXPECT_FALSE(fs::exists(ckpt(run, 6)));
  ASSERT_EQ(train_ranks(s, 2, run, sets), 0) << read_text(run + ".rank0.log");
  expect_same_state(ckpt(straight, 8), ckpt(run, 8), "resumed after a stop signal");
  // During the evaluation after step 3 (eval every step): the evaluation is abandoned, step 3 saved.
  const std::string with_eval = sets + " --set eval.every=1 --set eval.docs=6";
  EXPECT_EQ(ranks_status(s, 2, eval, with_eval, "ROPEX_FAULT_INJECT=signal-in-eval:3"), (std::vector<int>{75, 75}))
      << read_text(eval + ".rank1.log");
  EXPECT_TRUE(verify_checkpoint(ckpt(eval, 3)).empty());
  const auto m = metrics(eval);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_TRUE(m[1].contains("eval_loss"));
  EXPECT_FALSE(m[2].contains("eval_loss")) << "the interrupted evaluation is not reported";
}

// SIGTERM from outside to every rank of a running job, at a moment picked at random: exit 75 with
// a checkpoint within a step of the signal; the same command then ends as the uninterrupted run.
TEST(Checkpoint, SigtermToAllRanksAtRandomMomentsResumesToTheSameWeights) {
  TinySetup s;
  const std::string sets = layout(2, 1) + " --set schedule.steps=30 --set checkpoint.every=100";
  const std::string straight = s.dir.str() + "/straight";
  ASSERT_EQ(train_ranks(s, 2, straight, sets), 0) << read_text(straight + ".rank0.log");
  std::mt19937 rng(std::random_device{}());
  for (int trial = 0; trial < 3; ++trial) {
    const std::string run = s.dir.str() + cat("/run", trial);
    const int after = std::uniform_int_distribution<int>(1, 20)(rng);  // steps logged before the signal
    const std::string during = cat("while [ \"$(wc -l < $RUN/metrics.jsonl 2>/dev/null || echo 0)\" -lt ", after,
                                   " ]; do sleep 0.01; done; kill -TERM ${pids[@]}; wc -l < $RUN/metrics.jsonl > $RUN.at_signal");
    EXPECT_EQ(ranks_status(s, 2, run, sets, "", during), (std::vector<int>{75, 75})) << read_text(run + ".rank0.log");
    const int at_signal = std::stoi(read_text(run + ".at_signal"));
    const auto saved = latest_checkpoint(run);
    ASSERT_TRUE(saved.has_value()) << read_text(run + ".rank0.log");
    const int64_t step = CheckpointFiles(*saved).manifest().step;
    EXPECT_GE(step, at_signal);
    EXPECT_LE(step, at_signal + 2) << "stopped later than the step after the signal";
    ASSERT_EQ(train_ranks(s, 2, run, sets), 0) << read_text(run + ".rank0.log");
    expect_same_state(ckpt(straight, 30), ckpt(run, 30), cat("SIGTERM after ", at_signal, " steps"));
  }
  // A second SIGINT does not wait for the checkpoint (the save is slowed to 3 s so that the second
  // one, 0.3 s after the first, comes while it is written; two signals sent at once could merge).
  const std::string run = s.dir.str() + "/twice";
  const std::vector<int> rc = ranks_status(
      s, 1, run, sets, "", "while [ ! -s $RUN/metrics.jsonl ]; do sleep 0.01; done; kill -INT ${pids[0]}; sleep 0.3; kill -INT ${pids[0]}",
      "ROPEX_FAULT_INJECT=slow-writer:3000");
  EXPECT_EQ(rc[0], 130) << read_text(run + ".rank0.log");
}

// NaN losses on rank 1 at steps 3 and 4: skipped on both ranks, the state left exactly as after
// step 2; a third in a row, or any with skip_nonfinite = 0, stops the run naming the step.
TEST(Checkpoint, NonFiniteStepsAreSkippedUpToTheLimitThenStopTheRun) {
  TinySetup s;
  const std::string sets = layout(2, 1);
  const std::string run = s.dir.str() + "/skip";
  ASSERT_EQ(train_ranks(s, 2, run, sets + " --set optim.skip_nonfinite=2", "ROPEX_FAULT_INJECT=nan-at-step:2,3"), 0)
      << read_text(run + ".rank1.log");
  expect_same_state(ckpt(run, 2), ckpt(run, 4), "two skipped steps");
  const CheckpointFiles f(ckpt(run, 4));
  EXPECT_EQ(f.trainer_state()["optimizer_steps"], 2);
  EXPECT_EQ(f.trainer_state()["skipped_steps"], 2);
  const auto m = metrics(run);
  ASSERT_EQ(m.size(), 8u);
  EXPECT_TRUE(m[2].value("skipped", false) && m[3].value("skipped", false) && !m[4].contains("skipped"));
  EXPECT_NE(read_text(run + ".rank1.log").find("step 3: this rank's loss is not finite"), std::string::npos);
  EXPECT_NE(read_text(run + ".rank0.log").find("step 4: loss nan"), std::string::npos) << read_text(run + ".rank0.log");
  for (const auto& [limit, failing_step] : {std::pair<int, int>{1, 4}, {0, 3}}) {
    const std::string stop = s.dir.str() + cat("/stop", limit);
    const std::vector<int> rc = ranks_status(s, 2, stop, sets + cat(" --set optim.skip_nonfinite=", limit),
                                             "ROPEX_FAULT_INJECT=nan-at-step:2,3");
    EXPECT_EQ(rc, (std::vector<int>{1, 1}));
    EXPECT_NE(read_text(stop + ".rank0.log").find(cat("step ", failing_step, ": loss nan")), std::string::npos)
        << read_text(stop + ".rank0.log");
    EXPECT_NE(read_text(stop + ".rank0.log").find(cat("optim.skip_nonfinite = ", limit, ": stopping")), std::string::npos);
  }
}

// ropex export and ropex score read a checkpoint tensor by tensor; a format-1 checkpoint (one
// model.safetensors + optimizer.safetensors + COMPLETE, written before sharding) still exports to
// the same bytes and resumes to the same end.
TEST(Checkpoint, ExportAndScoreReadEitherFormat) {
  TinySetup s;
  const std::string straight = s.dir.str() + "/straight";
  ASSERT_EQ(s.train(straight, ""), 0) << s.out_text;
  const std::string v2 = ckpt(straight, 4), v1_run = s.dir.str() + "/v1run", v1 = ckpt(v1_run, 4);
  // Format 1, from the same state.
  write_as_format1(v2, v1);
  nlohmann::json ts = nlohmann::json::parse(read_text(v2 + "/trainer_state.json"));
  std::ofstream(v1 + "/trainer_state.json") << nlohmann::json{{"step", 4}, {"tokens_seen", ts["tokens_seen"]}, {"world_size", 1},
                                                               {"seed", ts["seed"]}, {"format", "ropex-checkpoint"}, {"version", 1}};
  std::ofstream(v1 + "/COMPLETE") << "4\n";
  for (const auto& [dir, out] : {std::pair<std::string, std::string>{v2, "/e2"}, {v1, "/e1"}})
    ASSERT_EQ(s.run("export --checkpoint " + dir + " --output " + s.dir.str() + out + " --dtype float32 --max-shard-size 0"), 0)
        << s.out_text;
  EXPECT_TRUE(read_text(s.dir.str() + "/e1/model.safetensors") == read_text(s.dir.str() + "/e2/model.safetensors"));
  EXPECT_EQ(read_text(s.dir.str() + "/e1/config.json"), read_text(s.dir.str() + "/e2/config.json"));
  // score on the checkpoint folder = score on its export.
  const std::string text = (s.dir.path / "corpus.txt").string();
  ASSERT_EQ(s.run("score --json --max-tokens 64 --model " + v2 + " --text " + text), 0) << s.out_text;
  const auto from_checkpoint = nlohmann::json::parse(s.out_text.substr(s.out_text.find('{')));
  ASSERT_EQ(s.run("score --json --max-tokens 64 --model " + s.dir.str() + "/e2 --text " + text), 0) << s.out_text;
  const auto from_export = nlohmann::json::parse(s.out_text.substr(s.out_text.find('{')));
  EXPECT_EQ(from_checkpoint["nll"], from_export["nll"]);  // the same weights and arithmetic: equal
  EXPECT_EQ(from_checkpoint["predicted"], 63);
  // Resume from format 1: the same end as the straight run.
  ASSERT_EQ(s.train(v1_run, ""), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("resumed from " + v1), std::string::npos) << s.out_text;
  expect_same_state(ckpt(straight, 8), ckpt(v1_run, 8), "resumed from format 1");
}

}  // namespace
}  // namespace ropex::test
