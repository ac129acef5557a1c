// The run folder's guard rails, taken by rank 0 before a run writes anything there:
//   RunFolderLock  an flock on RUN/ropex.lock held for the whole run. The kernel releases it when
//                  the process exits or dies (kill -9 included), so a stale lock never blocks a
//                  resume; a second `ropex train` on the same folder is refused with the PID, host
//                  and start time the holder wrote into the file. Works across hosts on a shared
//                  filesystem where flock does (local filesystems, NFSv4, Lustre with -o flock).
//   start_over     what checkpoint.resume = never does with checkpoints the folder already holds:
//                  refuse (the default: the next default run would resume the old run's newest
//                  step), move them aside, or delete them.
// It does NOT choose the checkpoint to resume from (trainer/checkpoint.h) or write metrics
// (trainer/metrics_log.h).
#pragma once
#include <string>

namespace ropex {

class RunFolderLock {
 public:
  // Creates run_dir if needed and takes the lock, or throws naming the holder.
  explicit RunFolderLock(const std::string& run_dir);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;
  static std::string file_name() { return "ropex.lock"; }

 private:
  int fd_ = -1;
};

// checkpoint.start_over: "refuse" | "move_aside" | "delete". When run_dir holds a complete
// checkpoint (call clean_interrupted_saves first): refuse throws (naming the newest checkpoint and
// the ways out); move_aside renames checkpoints/, metrics.jsonl, run.png, the TensorBoard event
// files and `export_dir` (when it lies strictly inside run_dir) into
// run_dir/previous-YYYYmmdd-HHMMSS[-N]/; delete removes them.
// Returns what was done, "" if nothing.
std::string start_over(const std::string& run_dir, const std::string& mode, const std::string& export_dir);

}  // namespace ropex
