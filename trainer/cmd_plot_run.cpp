// ropex plot-run RUN_DIR [--output FILE]: the picture of a training run (trainer/plot_run.py, from
// RUN_DIR/metrics.jsonl), the same picture `ropex train` draws when a run ends. Only the command
// line lives here; the drawing is the script's, the Python choice trainer/pictures.h's.
#include <filesystem>
#include <iostream>

#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/log.h"
#include "trainer/pictures.h"

namespace ropex {

int cmd_plot_run(const Args& argv) {
  ArgParser args("plot-run",
                 "Draws a training run: the training and evaluation loss, the learning rate and the gradient norm\n"
                 "against the step, from RUN_DIR/metrics.jsonl, to RUN_DIR/run.png (or --output), and prints the\n"
                 "path. `ropex train` draws the same picture when a run ends; this redraws it at any time, also\n"
                 "while the run is going.");
  args.positional("RUN_DIR", "a run folder (a run config's run.output_dir)")
      .option("output", "FILE", "the PNG to write (default RUN_DIR/run.png)")
      .option("plot-python", "PYTHON", "Python with matplotlib (default: $ROPEX_PYTHON, the source tree's .venv, python3)");
  args.parse(argv);
  const std::filesystem::path run_dir = args.get("RUN_DIR");
  if (!std::filesystem::is_directory(run_dir)) throw UsageError("plot-run: '" + run_dir.string() + "' is not a directory");
  const std::string out = args.has("output") ? args.get("output") : run_picture_path(run_dir.string());
  const PictureRun run = draw_run_picture(run_dir.string(), out, args.has("plot-python") ? args.get("plot-python") : "");
  if (!run.ok) {
    log::error("picture not drawn (needs Python with matplotlib, and RUN_DIR/metrics.jsonl); draw it with: " + run.command);
    return 1;
  }
  std::cout << out << std::endl;
  return 0;
}

}  // namespace ropex
