// TensorBoard event files (trainer/tensorboard): the CRC32C and framing against the standard check
// value and TensorBoard's own Python CRC, the protobuf runtime in this linked binary, a full disk,
// and `ropex train` runs read back by TensorBoard's EventAccumulator (tests/tb_read.py) and compared
// with metrics.jsonl: a straight run with evaluations, a killed and resumed one, and logging off.
#include "tests/train_fixture.h"
#include "trainer/tensorboard/event_file.h"
#include "trainer/tensorboard/scalar_log.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <regex>
#include <set>
#include <sstream>

namespace ropex::test {
namespace {
namespace tb = ropex::tensorboard;
using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Every scalar TensorBoard's EventAccumulator finds in run_dir (tests/tb_read.py); null if it failed.
json tb_scalars(const std::string& python, const std::string& run_dir) {
  const std::string out = run_dir + ".tb.json";
  std::string text;
  const int rc = run_python(python, "tb_read.py", {"scalars", run_dir, out}, &text);
  EXPECT_EQ(rc, 0) << text;
  return rc == 0 ? read_json(out) : json();
}

std::vector<std::string> event_files(const std::string& run_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(run_dir))
    if (e.path().filename().string().find("tfevents") != std::string::npos) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// TensorBoard's scalars equal metrics.jsonl: every record's loss, lr, grad_norm and tokens_per_s
// under train/..., eval_loss and eval_ppl under eval/... at the records that have them, nothing else.
// Exact float32 equality is the right tolerance: both sides are the same double (metrics.jsonl
// prints doubles so that they read back exactly), TensorBoard's rounded once to float32; tb_read.py
// prints that float32 as a double, exactly.
void expect_scalars_equal_metrics(const json& tbs, const std::vector<json>& records) {
  ASSERT_TRUE(tbs.is_object());
  EXPECT_EQ(tbs["file_version"], 2.0);
  const std::vector<std::pair<std::string, std::string>> tags = {
      {"loss", "train/loss"}, {"lr", "train/lr"}, {"grad_norm", "train/grad_norm"}, {"tokens_per_s", "train/tokens_per_s"},
      {"eval_loss", "eval/loss"}, {"eval_ppl", "eval/ppl"}};
  std::set<std::string> expected_tags;
  for (const auto& [key, tag] : tags) {
    std::vector<std::pair<int64_t, json>> want;
    for (const json& r : records)
      if (r.contains(key)) want.emplace_back(r["step"].get<int64_t>(), r[key]);
    if (want.empty()) continue;
    expected_tags.insert(tag);
    ASSERT_TRUE(tbs["scalars"].contains(tag)) << tag << " missing";
    const json& got = tbs["scalars"][tag];
    ASSERT_EQ(got.size(), want.size()) << tag << ": " << got.dump();
    for (size_t i = 0; i < want.size(); ++i) {
      const auto& [step, v] = want[i];
      EXPECT_EQ(got[i][0].get<int64_t>(), step) << tag << " event " << i;
      if (v.is_null()) {  // not finite: null in metrics.jsonl, NaN in TensorBoard (null from tb_read.py)
        EXPECT_TRUE(got[i][1].is_null()) << tag << " step " << step;
        continue;
      }
      ASSERT_TRUE(got[i][1].is_number()) << tag << " step " << step << ": " << got[i][1];
      const double t = got[i][1].get<double>();
      EXPECT_EQ(t, static_cast<double>(static_cast<float>(t))) << tag << " step " << step << " is not a float32";
      EXPECT_EQ(static_cast<float>(t), static_cast<float>(v.get<double>())) << tag << " step " << step;
    }
  }
  std::set<std::string> got_tags;
  for (const auto& [tag, events] : tbs["scalars"].items()) got_tags.insert(tag);
  EXPECT_EQ(got_tags, expected_tags);
}

}  // namespace

TEST(TensorBoard, Crc32cCheckValueAndMask) {
  // The standard check value of CRC-32C (Castagnoli; RFC 3720's iSCSI CRC): crc of "123456789".
  EXPECT_EQ(tb::crc32c("123456789", 9), 0xe3069283u);
  EXPECT_EQ(tb::crc32c("", 0), 0u);
  // RFC 3720 B.4: 32 bytes of zeros, of 0xff.
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(tb::crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(tb::crc32c(ones.data(), ones.size()), 0x62a8ab43u);
  // mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, by hand for the check value.
  EXPECT_EQ(tb::mask_crc(0xe3069283u), static_cast<uint32_t>(((0xe3069283u >> 15) | (0xe3069283u << 17)) + 0xa282ead8u));
  EXPECT_EQ(tb::mask_crc(0), 0xa282ead8u);
  // The framing: length (LE), its masked CRC, data, its masked CRC.
  const std::string rec = tb::frame_record("abc");
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(rec.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(rec[at + i]);
    return v;
  };
  EXPECT_EQ(u32(8), tb::mask_crc(tb::crc32c(rec.data(), 8)));
  EXPECT_EQ(rec.substr(12, 3), "abc");
  EXPECT_EQ(u32(15), tb::mask_crc(tb::crc32c("abc", 3)));
}

TEST(TensorBoard, Crc32cEqualsTensorBoardsOwn) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  // Random buffers of several lengths (ISA-L takes other code paths for short, aligned and long ones).
  std::mt19937_64 rng(7);
  std::vector<std::string> bufs, hexes;
  for (size_t n : {1, 7, 8, 9, 31, 64, 255, 1000, 4099}) {
    std::string b(n, '\0'), h;
    for (char& c : b) c = static_cast<char>(rng() & 0xff);
    char two[3];
    for (unsigned char c : b) std::snprintf(two, sizeof two, "%02x", c), h += two;
    bufs.push_back(b);
    hexes.push_back(h);
  }
  TempDir d("tb_crc");
  const std::string out = d.str() + "/crc.json";
  std::vector<std::string> args = {"crc32c", out};
  args.insert(args.end(), hexes.begin(), hexes.end());
  std::string text;
  ASSERT_EQ(run_python(py, "tb_read.py", args, &text), 0) << text;
  const json want = read_json(out);
  ASSERT_EQ(want.size(), bufs.size());
  for (size_t i = 0; i < bufs.size(); ++i) {
    const uint32_t crc = tb::crc32c(bufs[i].data(), bufs[i].size());
    EXPECT_EQ(crc, want[i][0].get<uint32_t>()) << bufs[i].size() << " bytes";
    EXPECT_EQ(tb::mask_crc(crc), want[i][1].get<uint32_t>()) << bufs[i].size() << " bytes";
  }
}

// The protobuf-c code linked into this binary (beside LibTorch and SentencePiece, whose C++ protobuf
// runtime once took over these calls and crashed) serializes and parses an event.
TEST(TensorBoard, EventRoundTripsThroughTheLinkedProtobufRuntime) {
  const std::string bytes = tb::encode_scalars(1.7e9 + 0.25, 42, {{"train/loss", 2.5}, {"train/lr", 0.0}});
  const tb::DecodedEvent e = tb::decode_event(bytes);
  EXPECT_EQ(e.wall_time, 1.7e9 + 0.25);
  EXPECT_EQ(e.step, 42);
  ASSERT_EQ(e.scalars.size(), 2u);
  EXPECT_EQ(e.scalars[0], (std::pair<std::string, float>{"train/loss", 2.5f}));
  EXPECT_EQ(e.scalars[1], (std::pair<std::string, float>{"train/lr", 0.0f}));
  EXPECT_EQ(tb::decode_event(tb::encode_file_version(1.0)).file_version, "brain.Event:2");
  const tb::DecodedEvent start = tb::decode_event(tb::encode_start(1.0, 5));
  EXPECT_TRUE(start.start);
  EXPECT_EQ(start.step, 5);
  EXPECT_THROW(tb::decode_event(std::string("\xff\xff\xff", 3)), std::runtime_error);
  // Beyond float32's range: infinity with its sign (scalar_log.h).
  const tb::DecodedEvent big = tb::decode_event(tb::encode_scalars(1.0, 1, {{"a", 1e300}, {"b", -1e300}}));
  EXPECT_EQ(big.scalars[0].second, std::numeric_limits<float>::infinity());
  EXPECT_EQ(big.scalars[1].second, -std::numeric_limits<float>::infinity());
}

// A failed write returns false and never throws (training goes on); that it is logged once is not
// checked here (the log is not captured in this process).
TEST(TensorBoard, AWriteToAFullDiskFailsWithoutThrowing) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  tb::EventFile f("/dev/full");  // every write fails with ENOSPC
  EXPECT_FALSE(f.append("one"));
  EXPECT_FALSE(f.append("two"));
  tb::EventFile missing("/nonexistent-dir/events.out.tfevents.x");
  EXPECT_FALSE(missing.append("one"));
}

// The writer alone: the file's name, a segment's START, non-finite values, read by EventAccumulator.
TEST(TensorBoard, ScalarLogIsReadByEventAccumulator) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TempDir d("tb_log");
  {
    tb::ScalarLog none(d.str(), 0, 1);  // nothing written: no file
    EXPECT_EQ(none.path(), "");
  }
  EXPECT_TRUE(event_files(d.str()).empty());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<json> records;
  {
    tb::ScalarLog first(d.str(), 0, 1);
    // Synthetic values (none is a limit): they are compared exactly, as float32, with what comes back.
    for (int s = 1; s <= 3; ++s) {
      json r = {{"step", s}, {"loss", 3.0 / s}, {"lr", 1e-3 * s}, {"grad_norm", s == 2 ? nan : 0.5}, {"tokens_per_s", 1e5}};
      first.write_record(r);
      if (s == 2) r["grad_norm"] = nullptr;  // as metrics.jsonl writes it
      if (s <= 2) records.push_back(r);      // step 3: orphaned, the next segment starts at 2
    }
    EXPECT_NE(first.path().find("events.out.tfevents."), std::string::npos);
  }
  {
    tb::ScalarLog second(d.str(), 2, 2);  // same second: its name must still sort after the first
    for (int s = 3; s <= 4; ++s) {
      const json r = {{"step", s}, {"loss", 1.0 / s}, {"lr", 0.0}, {"grad_norm", 0.25}, {"tokens_per_s", 2e5}};
      second.write_record(r);
      records.push_back(r);
    }
  }
  const auto files = event_files(d.str());
  ASSERT_EQ(files.size(), 2u);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::smatch a, b;
  const std::regex name("events\\.out\\.tfevents\\.([0-9]{10})\\.(.+)\\.([0-9]+)\\.([0-9]+)");
  ASSERT_TRUE(std::regex_match(files[0], a, name)) << files[0];
  ASSERT_TRUE(std::regex_match(files[1], b, name)) << files[1];
  EXPECT_EQ(a[2], host);
  EXPECT_EQ(a[3], std::to_string(::getpid()));
  EXPECT_EQ(a[4], "1");
  EXPECT_EQ(b[4], "2");
  EXPECT_LT(std::stoll(a[1]), std::stoll(b[1])) << "the second segment's name must sort after the first's";
  expect_scalars_equal_metrics(tb_scalars(py, d.str()), records);
}

// (b) A short training run with evaluations: TensorBoard finds every step's values of metrics.jsonl.
TEST(TensorBoard, TrainingRunEqualsMetrics) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set eval.every=3 --set eval.docs=4"), 0) << s.out_text;
  ASSERT_EQ(event_files(run).size(), 1u);
  const auto m = metrics(run);
  ASSERT_EQ(m.size(), 8u);
  int evals = 0;
  for (const auto& r : m) evals += r.contains("eval_loss");
  EXPECT_EQ(evals, 2);  // steps 3 and 6
  expect_scalars_equal_metrics(tb_scalars(py, run), m);
}

// (c) Killed after a checkpoint with a step logged after it, then resumed: two event files, and what
// EventAccumulator makes of them equals the final metrics.jsonl (no step twice, none stale).
TEST(TensorBoard, KilledAndResumedRunEqualsMetrics) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  const std::string sets = "--set eval.every=3 --set eval.docs=4 --set checkpoint.every=4";
  // Dies before step 7: checkpoints at 4, steps 5 and 6 (an evaluation at 6) logged after it.
  EXPECT_NE(s.train(run, sets, "ROPEX_FAULT_INJECT=exit-at-step:6"), 0) << s.out_text;
  ASSERT_EQ(metrics(run).size(), 6u);
  const json before = tb_scalars(py, run);
  ASSERT_TRUE(before.is_object());
  ASSERT_EQ(before["scalars"]["train/loss"].size(), 6u);
  ASSERT_EQ(s.train(run, sets), 0) << s.out_text;
  EXPECT_NE(s.out_text.find("resumed from"), std::string::npos) << s.out_text;
  const auto files = event_files(run);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].substr(files[0].size() - 2), ".1");
  EXPECT_EQ(files[1].substr(files[1].size() - 2), ".2");
  const auto m = metrics(run);
  ASSERT_EQ(m.size(), 8u);
  EXPECT_EQ(m[5]["segment"], 2);  // step 6 redone by the second segment
  expect_scalars_equal_metrics(tb_scalars(py, run), m);
}

// (d) logging.tensorboard = false: no event file.
TEST(TensorBoard, OffWritesNoEventFile) {
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set logging.tensorboard=false --set run.stop_after=2"), 0) << s.out_text;
  EXPECT_EQ(metrics(run).size(), 2u);
  EXPECT_TRUE(event_files(run).empty());
}

}  // namespace ropex::test
