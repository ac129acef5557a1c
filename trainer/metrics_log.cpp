// metrics.jsonl: trimmed to the starting step, segments, reported write failures. See metrics_log.h.
#include "trainer/metrics_log.h"

#include "data/input/json.h"

#include "trainer/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace ropex {
namespace fs = std::filesystem;

MetricsLog::MetricsLog(const std::string& path, int64_t start_step) : path_(path) {
  // Only a regular file is rewritten (metrics.jsonl may be a link to a pipe or a device); a link to
  // one is rewritten where it points, the link kept.
  std::error_code ec;
  const fs::path resolved = fs::is_symlink(path) ? fs::canonical(path, ec) : fs::path(path);
  const std::string target = ec ? path : resolved.string();  // a dangling link: open() creates its target
  if (fs::is_regular_file(target)) {
    std::ifstream in(path, std::ios::binary);
    std::string kept, line;
    int last_segment = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json rec;  // a line that is not a bounded JSON object counts as cut (input/json.h)
      try {
        rec = input::parse_json(line, path);
      } catch (const input::JsonInputError&) {
        rec = nullptr;
      }
      if (!rec.is_object() || !rec.contains("step") || !rec["step"].is_number_integer() ||
          (rec.contains("segment") && !rec["segment"].is_number_integer())) {
        ++cut_lines_;
        continue;
      }
      if (rec["step"].get<int64_t>() > start_step) {
        ++dropped_;
        continue;
      }
      kept += line + "\n";
      last_segment = std::max(last_segment, rec.value("segment", 1));
      last_kept_ = rec;
    }
    if (in.bad()) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    segment_ = last_segment + 1;
    if (last_kept_.is_object() && last_kept_.contains("elapsed_s") && last_kept_["elapsed_s"].is_number())
      elapsed_before_ = last_kept_["elapsed_s"].get<double>();
    if (dropped_ > 0 || cut_lines_ > 0) {
      const std::string tmp = target + ".tmp";
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << kept;
        out.flush();
        if (!out) throw std::runtime_error("cannot rewrite " + path + " (writing " + tmp + "): " + std::strerror(errno));
      }
      fs::rename(tmp, target);
      if (dropped_ > 0)
        log::info(cat(path, ": ", dropped_, " record(s) of steps after ", start_step,
                      " removed (done after the last checkpoint; this run redoes them)"));
      if (cut_lines_ > 0) log::warn(cat(path, ": ", cut_lines_, " cut or unreadable line(s) removed"));
    }
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open " + path + " for appending: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(nlohmann::json record) {
  record["segment"] = segment_;
  // After a write that stopped mid-line, the next record starts on a line of its own.
  const std::string line = (cut_ ? "\n" : "") + record.dump() + "\n";
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      cut_ = cut_ || done > 0;
      if (!write_failed_)
        log::error(cat("writing ", path_, " failed at step ", record.value("step", int64_t{-1}), ": ",
                       n < 0 ? std::strerror(errno) : "nothing written",
                       "; training goes on (checkpoints are unaffected), metrics of later steps may be missing, "
                       "and the cut line is removed at the next start"));
      write_failed_ = true;
      return;
    }
    done += static_cast<size_t>(n);
  }
  cut_ = false;
}

}  // namespace ropex
