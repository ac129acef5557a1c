// Pictures drawn by the project's matplotlib scripts (trainer/plot_eval.py for `ropex eval`,
// trainer/plot_run.py for a training run): which Python draws them, and running a script.
//
// The Python: the one asked for (--plot-python), else $ROPEX_PYTHON, else the source tree's .venv,
// else python3 on the PATH. Scripts are found in the source tree ropex was built from. A picture
// that cannot be drawn (no matplotlib, the script gone, an unwritable folder) is reported with the
// command to draw it by hand; it never fails the work whose results it shows. It draws nothing
// itself and does not parse what the scripts read.
#pragma once

#include <string>
#include <vector>

namespace ropex {

// The Python that draws: `requested` when non-empty, else $ROPEX_PYTHON, the .venv, python3.
std::string picture_python(const std::string& requested);

struct PictureRun {
  bool ok = false;
  std::string command;  // the shell command run (for "draw them with: ...")
};

// Runs `python trainer/<script> args...`: its errors on stderr, its output (the paths it wrote) on
// stderr too, or dropped when the caller prints the paths itself (`echo_output` false).
PictureRun run_picture_script(const std::string& python, const std::string& script, const std::vector<std::string>& args,
                              bool echo_output = true);

// The picture of a training run: trainer/plot_run.py RUN_DIR --output OUT (default RUN_DIR/run.png),
// with picture_python(python); the path is the caller's to print.
PictureRun draw_run_picture(const std::string& run_dir, const std::string& out = "", const std::string& python = "");
// Where draw_run_picture writes by default: RUN_DIR/run.png.
std::string run_picture_path(const std::string& run_dir);

}  // namespace ropex
