// The picture of a training run (trainer/plot_run.py through trainer/pictures.h): `ropex train`
// draws RUN/run.png when it ends (logging.picture) and says where; `ropex plot-run` redraws it,
// prints the path, and fails with the command to run by hand when it cannot draw; a run whose
// picture cannot be drawn still succeeds. What the picture holds is checked by tests/test_plot_run.py.
#include "tests/train_fixture.h"

#include <fstream>

namespace ropex::test {
namespace {

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// The PNG signature and size of `path` (0x0 when it is not a PNG).
std::pair<int, int> png_size(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[24] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (!in || std::string(reinterpret_cast<char*>(head), 8) != "\x89PNG\r\n\x1a\n") return {0, 0};
  auto be32 = [&](int at) { return head[at] << 24 | head[at + 1] << 16 | head[at + 2] << 8 | head[at + 3]; };
  return {be32(16), be32(20)};
}

TEST(RunPicture, TrainDrawsItAndPlotRunRedrawsIt) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  TinySetup s;
  const std::string run = s.dir.str() + "/run";
  ASSERT_EQ(s.train(run, "--set logging.picture=true --set eval.every=4"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "picture of the run: " + run + "/run.png")) << s.out_text;
  EXPECT_EQ(png_size(run + "/run.png"), (std::pair<int, int>{1080, 1080}));  // 9 x 9 inches at 120 dpi (plot_run.py)

  const std::string other = s.dir.str() + "/pictures/again.png";
  ASSERT_EQ(s.run("plot-run " + run + " --output " + other), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, other + "\n")) << s.out_text;
  EXPECT_EQ(png_size(other), (std::pair<int, int>{1080, 1080}));

  // Cannot draw: plot-run fails with the command to run by hand; a directory that is not one is a usage error.
  EXPECT_EQ(s.run("plot-run " + run + " --plot-python /bin/false"), 1) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "picture not drawn")) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "draw it with: '/bin/false'")) << s.out_text;
  EXPECT_EQ(s.run("plot-run " + s.dir.str() + "/nope"), 2) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "plot-run: '" + s.dir.str() + "/nope' is not a directory")) << s.out_text;
  fs::create_directories(s.dir.path / "empty");
  EXPECT_EQ(s.run("plot-run " + s.dir.str() + "/empty"), 1) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "metrics.jsonl: no such file")) << s.out_text;

  // A run whose picture cannot be drawn still succeeds, with a warning saying how to draw it.
  const std::string second = s.dir.str() + "/second";
  ASSERT_EQ(s.train(second, "--set logging.picture=true --set schedule.steps=2", "ROPEX_PYTHON=/bin/false"), 0) << s.out_text;
  EXPECT_TRUE(has(s.out_text, "picture of the run not drawn")) << s.out_text;
  EXPECT_FALSE(fs::exists(second + "/run.png"));
  // logging.picture=false (the fixture's default): nothing drawn, nothing said.
  const std::string third = s.dir.str() + "/third";
  ASSERT_EQ(s.train(third, "--set schedule.steps=2"), 0) << s.out_text;
  EXPECT_FALSE(has(s.out_text, "picture of the run")) << s.out_text;
  EXPECT_FALSE(fs::exists(third + "/run.png"));
}

}  // namespace
}  // namespace ropex::test
