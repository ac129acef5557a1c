// metrics.jsonl, written by rank 0: one JSON object per training step.
//
// A run that starts at step S (0, or the step of the checkpoint it resumes) first rewrites the file
// (a temporary file renamed over it) keeping only records of steps <= S: the steps a killed run did
// after its last checkpoint are redone by this one, and a line cut by a crash or a full disk is
// dropped (both counted and logged). Every record then carries "segment" (1 for a run's first
// start, one more per resume) and "elapsed_s" counted from the run's first start (the last kept
// record's elapsed_s plus this segment's time). A write that fails (a full disk) is reported once
// with the file and the reason, and training goes on: checkpoints, not metrics, are what a resume
// needs; the file is rewritten cleanly at the next start.
//
// It does NOT print the console lines or draw the progress bar (the trainer's reporter does).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace ropex {

class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t start_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Adds "segment" and writes one line.
  void append(nlohmann::json record);
  int segment() const { return segment_; }
  double elapsed_before() const { return elapsed_before_; }  // elapsed_s of the last kept record
  const nlohmann::json& last_kept() const { return last_kept_; }  // null when none was kept
  int64_t dropped() const { return dropped_; }              // records of steps > start_step removed
  int64_t cut_lines() const { return cut_lines_; }          // unparseable lines removed

 private:
  std::string path_;
  int fd_ = -1;
  int segment_ = 1;
  double elapsed_before_ = 0;
  nlohmann::json last_kept_;
  int64_t dropped_ = 0, cut_lines_ = 0;
  bool write_failed_ = false;
  bool cut_ = false;  // the last write stopped mid-line
};

}  // namespace ropex
