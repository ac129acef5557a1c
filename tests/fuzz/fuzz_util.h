// Shared helpers of the fuzz targets (tests/fuzz/fuzz_*.cpp): a scratch folder for inputs that
// the project reads from files, and the framing that packs several files into one fuzz input.
//
// Several parsers read a set of files (a token store is meta.json + index.bin + tokens.bin, a
// sharded checkpoint is an index and its shards). One fuzz input carries them all, cut at the
// line kPartSeparator; seeds are made that way by make_seeds.py, and the dictionaries hold the
// separator so that the fuzzer can add and drop parts.
//
// guard() runs one call of a target: the project's errors (std::exception and its subclasses) are
// clean rejections and are swallowed; anything else escapes and libFuzzer reports it. With
// ROPEX_FUZZ_STRICT=1 in the environment, raw library exceptions reaching the caller (nlohmann's
// json::exception, std::out_of_range, std::length_error, std::bad_alloc) abort too: they are not
// crashes, but a user would see a message that names no file or key.
//
// This file does not parse anything itself and knows nothing of the formats: the targets call the
// project's own functions on what it writes.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ropex_fuzz {

inline constexpr std::string_view kPartSeparator = "\n--8<--\n";

// The input cut at every kPartSeparator (n separators give n + 1 parts, empty ones included).
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size) {
  std::vector<std::string> parts;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (;;) {
    const size_t at = rest.find(kPartSeparator);
    if (at == std::string_view::npos) break;
    parts.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + kPartSeparator.size());
  }
  parts.emplace_back(rest);
  return parts;
}

inline bool strict_mode() {
  static const bool strict = [] {
    const char* s = getenv("ROPEX_FUZZ_STRICT");
    return s && std::string_view(s) == "1";
  }();
  return strict;
}

template <class Fn>
void guard(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    if (!strict_mode()) return;
    const bool raw = dynamic_cast<const nlohmann::json::exception*>(&e) || dynamic_cast<const std::out_of_range*>(&e) ||
                     dynamic_cast<const std::length_error*>(&e) || dynamic_cast<const std::bad_alloc*>(&e);
    if (!raw) return;
    std::fprintf(stderr, "ROPEX_FUZZ_STRICT: raw library exception reached the caller: %s\n", e.what());
    std::abort();
  }
}

// A private folder for this process, removed at exit. /dev/shm when it can be written (no disk
// traffic per execution), else $TMPDIR or /tmp.
class Scratch {
 public:
  static Scratch& get() {
    static Scratch s;
    return s;
  }
  const std::filesystem::path& dir() const { return dir_; }
  // A fresh empty subfolder `name` (its previous contents removed).
  std::filesystem::path fresh_dir(const std::string& name) const {
    const auto p = dir_ / name;
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p;
  }
  // Writes `bytes` to dir()/relative (parent folders created) and returns the path.
  std::filesystem::path write(const std::string& relative, std::string_view bytes) const {
    const auto p = dir_ / relative;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {  // the harness's own failure, not the target's: stop loudly
      std::fprintf(stderr, "fuzz harness: cannot write %s\n", p.c_str());
      std::abort();
    }
    return p;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  Scratch() {
    std::string base = "/dev/shm";
    if (access(base.c_str(), W_OK) != 0) {
      const char* t = getenv("TMPDIR");
      base = t && *t ? t : "/tmp";
    }
    std::string templ = base + "/ropex-fuzz-XXXXXX";
    if (!mkdtemp(templ.data())) {
      std::perror("fuzz harness: mkdtemp");
      std::abort();
    }
    dir_ = templ;
  }
  std::filesystem::path dir_;
};

}  // namespace ropex_fuzz
