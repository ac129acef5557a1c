// See pictures.h.
#include "trainer/pictures.h"

#include <cstdlib>
#include <filesystem>

#ifndef ROPEX_SOURCE_DIR
#define ROPEX_SOURCE_DIR ""
#endif

namespace ropex {
namespace fs = std::filesystem;
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string picture_python(const std::string& requested) {
  if (!requested.empty()) return requested;
  if (const char* env = std::getenv("ROPEX_PYTHON"); env && *env) return env;
  const fs::path venv = fs::path(ROPEX_SOURCE_DIR) / ".venv" / "bin" / "python";
  if (!std::string(ROPEX_SOURCE_DIR).empty() && fs::exists(venv)) return venv.string();
  return "python3";
}

PictureRun run_picture_script(const std::string& python, const std::string& script, const std::vector<std::string>& args,
                              bool echo_output) {
  const fs::path path = fs::path(ROPEX_SOURCE_DIR) / "trainer" / script;
  PictureRun run;
  run.command = shell_quote(python) + " " + shell_quote(path.string());
  for (const auto& a : args) run.command += " " + shell_quote(a);
  run.ok = fs::exists(path) && std::system((run.command + (echo_output ? " >&2" : " >/dev/null")).c_str()) == 0;
  return run;
}

std::string run_picture_path(const std::string& run_dir) { return (fs::path(run_dir) / "run.png").string(); }

PictureRun draw_run_picture(const std::string& run_dir, const std::string& out, const std::string& python) {
  return run_picture_script(picture_python(python), "plot_run.py",
                            {run_dir, "--output", out.empty() ? run_picture_path(run_dir) : out}, /*echo_output=*/false);
}

}  // namespace ropex
