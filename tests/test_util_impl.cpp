// See test_util.h. (Named test_*.cpp so the test glob picks it up; it holds no tests.)
#include "tests/test_util.h"

#include <c10/util/Exception.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace ropex::test {
namespace fs = std::filesystem;

std::string source_dir() { return ROPEX_SOURCE_DIR; }
// ROPEX_TEST_BINARY runs the end-to-end tests against another build of ropex (e.g. an older
// commit's, to see a new test fail before its fix).
std::string ropex_binary() {
  const char* other = std::getenv("ROPEX_TEST_BINARY");
  return other != nullptr && *other != '\0' ? other : ROPEX_BINARY;
}

// The settings CMake configured for the tests (the venv's Python, which must then be there; the
// build's test-tmp folder; the transformers references), put into this process's environment, and so
// its children's, before any test runs, unless the environment already names them.
[[maybe_unused]] static const bool kConfiguredSettings = [] {
  const std::pair<const char*, const char*> settings[] = {
      {"ROPEX_PYTHON", ROPEX_TEST_PYTHON}, {"ROPEX_REQUIRE_PYTHON", *ROPEX_TEST_PYTHON ? "1" : ""},
      {"ROPEX_TEST_TMP", ROPEX_TEST_TMP_DIR}, {"ROPEX_REF_DIR", ROPEX_TEST_REF_DIR}};
  for (const auto& [name, value] : settings)
    if (*value) ::setenv(name, value, /*overwrite=*/0);
  return true;
}();

static fs::path tmp_root() {
  const char* t = std::getenv("ROPEX_TEST_TMP");
  fs::path root = t && *t ? fs::path(t) : fs::temp_directory_path();
  fs::create_directories(root);
  return root;
}

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    path = tmp_root() / (tag + "-" + std::to_string(rd()));
    if (fs::create_directory(path)) return;
  }
  throw std::runtime_error("cannot create a temp dir for " + tag);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::string python_or_skip() {
  const char* py = std::getenv("ROPEX_PYTHON");
  if (py && *py) return py;
  const char* req = std::getenv("ROPEX_REQUIRE_PYTHON");
  if (req && std::string(req) == "1") {
    ADD_FAILURE() << "ROPEX_PYTHON is unset but ROPEX_REQUIRE_PYTHON=1: reference tests need the venv's Python";
  } else {
    // GTEST_SKIP returns from the enclosing function; the caller sees "" and returns too.
    [] { GTEST_SKIP() << "ROPEX_PYTHON unset: reference comparison against transformers not run"; }();
  }
  return "";
}

int run_command(const std::string& cmd, std::string* out) {
  std::string full = cmd + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  std::string text;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), n);
  int status = pclose(pipe);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

int run_python(const std::string& python, const std::string& script, const std::vector<std::string>& args, std::string* out) {
  std::string cmd = quote(python) + " " + quote(source_dir() + "/tests/" + script);
  for (const auto& a : args) cmd += " " + quote(a);
  return run_command(cmd, out);
}

std::string reference_dir(const std::string& python) {
  const char* env = std::getenv("ROPEX_REF_DIR");
  std::string dir = env && *env ? env : (tmp_root() / "ref").string();
  if (!fs::exists(fs::path(dir) / "cases.json")) {
    std::string out;
    int rc = run_python(python, "make_reference.py", {dir}, &out);
    if (rc != 0) throw std::runtime_error("make_reference.py failed (" + std::to_string(rc) + "): " + out);
  }
  return dir;
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.detach().to(at::kCPU, at::kDouble), y = b.detach().to(at::kCPU, at::kDouble);
  if (x.sizes() != y.sizes()) throw std::runtime_error("rel_err: shapes differ " + c10::str(x.sizes()) + " vs " + c10::str(y.sizes()));
  const double denom = std::max(y.abs().max().item<double>(), 1e-30);
  return (x - y).abs().max().item<double>() / denom;
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message lacks '" << n << "': " << msg;
    return;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message lacks '" << n << "': " << msg;
    return;
  }
  ADD_FAILURE() << "expected an error mentioning " << (needles.empty() ? "" : needles[0]) << ", nothing was thrown";
}
int64_t peak_rss_bytes(const std::vector<std::string>& argv) {
  const char* python = std::getenv("ROPEX_PYTHON");
  if (!python || !*python) throw std::runtime_error("peak_rss_bytes needs ROPEX_PYTHON (tests/peak_rss.py measures)");
  std::string out;
  const int rc = run_python(python, "peak_rss.py", argv, &out);
  if (rc != 0) throw std::runtime_error("peak_rss.py failed (status " + std::to_string(rc) + "): " + out);
  // The figure is the last line (the command's own stderr comes first).
  const size_t end = out.find_last_not_of("\n");
  const size_t start = out.rfind('\n', end);
  return std::stoll(out.substr(start == std::string::npos ? 0 : start + 1));
}

}  // namespace ropex::test
