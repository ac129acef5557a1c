// Shared helpers for ropex's tests: temp dirs, running the venv's Python reference scripts,
// locating the transformers reference data, relative errors, and asserting error messages.
#pragma once
#include <gtest/gtest.h>
#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ropex::test {

// A fresh directory under $ROPEX_TEST_TMP (or the system temp dir), removed on destruction.
struct TempDir {
  explicit TempDir(const std::string& tag);
  ~TempDir();
  std::filesystem::path path;
  std::string str() const { return path.string(); }
};

// The Python with transformers (from $ROPEX_PYTHON). Fails the test if unset and
// $ROPEX_REQUIRE_PYTHON=1 (ctest sets both), skips otherwise. Returns "" after a skip/fail.
std::string python_or_skip();

// Runs `python script args...` from tests/; returns its exit code; stdout in *out if given.
int run_python(const std::string& python, const std::string& script, const std::vector<std::string>& args,
               std::string* out = nullptr);
// Runs a shell command, capturing stdout+stderr.
int run_command(const std::string& cmd, std::string* out);

// Runs argv (argv[0] a path) with stdout discarded through tests/peak_rss.py; returns its peak
// resident set in bytes (measured from that small process: see there). Throws if it does not exit 0.
// The command runs with OMP_NUM_THREADS=2, so per-thread buffers do not grow with the core count.
int64_t peak_rss_bytes(const std::vector<std::string>& argv);
// Under AddressSanitizer (the ROPEX_SANITIZE build) a process's peak RSS holds ASan's shadow memory,
// redzones and quarantine (up to 256 MB, growing with every allocation), so checks of measured peaks
// against a model of the program's own memory skip there; everything else in those tests runs.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#define ROPEX_SKIP_PEAK_RSS_CHECKS_UNDER_ASAN()                                                         \
  if (::ropex::test::kUnderAddressSanitizer)                                                           \
  GTEST_SKIP() << "peak RSS under AddressSanitizer includes its shadow memory and quarantine; this "   \
                  "check runs in the normal build"

// Directory of make_reference.py's output ($ROPEX_REF_DIR, or generated once under ROPEX_TEST_TMP).
std::string reference_dir(const std::string& python);

// max|a - b| / max|b| in float64.
double rel_err(const at::Tensor& a, const at::Tensor& b);

// Expects fn() to throw std::exception whose what() contains every one of `needles`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles);

std::string source_dir();
std::string ropex_binary();
}  // namespace ropex::test
