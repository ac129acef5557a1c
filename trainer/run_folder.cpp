// The run folder's lock and start-over policy. See run_folder.h.
#include "trainer/run_folder.h"

#include "trainer/checkpoint.h"
#include "trainer/log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <stdexcept>

namespace ropex {
namespace fs = std::filesystem;

namespace {
std::string utc_now(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string host_name() {
  char host[256] = {};
  return gethostname(host, sizeof host - 1) == 0 ? host : "unknown host";
}
}  // namespace

RunFolderLock::RunFolderLock(const std::string& run_dir) {
  fs::create_directories(run_dir);
  const std::string path = (fs::path(run_dir) / file_name()).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open the run folder's lock " + path + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder(512, '\0');
    const ssize_t n = ::pread(fd_, holder.data(), holder.size(), 0);
    holder.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK)
      throw std::runtime_error("cannot lock the run folder " + run_dir + " (" + path + "): " + std::strerror(err));
    throw std::runtime_error("run folder " + run_dir + " is in use by another ropex run (" +
                             (holder.empty() ? std::string("holder unknown") : holder) + "; lock " + path +
                             "): wait for it to end, stop it, or choose another run.output_dir");
  }
  const std::string me = "pid " + std::to_string(::getpid()) + " on host " + host_name() + ", started " +
                         utc_now("%Y-%m-%d %H:%M:%S UTC") + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    log::warn("could not write the holder into " + path + ": " + std::strerror(errno) + " (the lock is held)");
}

RunFolderLock::~RunFolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (removing it would race a new holder)
}

std::string start_over(const std::string& run_dir, const std::string& mode, const std::string& export_dir) {
  const fs::path run(run_dir), ckpts = run / "checkpoints";
  // Only complete checkpoints are the earlier run's to protect (what an interrupted save left is
  // cleaned by the caller first; a .corrupt one is never loaded).
  const auto complete = complete_checkpoints(run_dir);
  if (complete.empty()) return "";
  const std::string newest = complete.back().second;
  if (mode == "refuse")
    throw std::runtime_error(
        "run folder " + run_dir + " already holds checkpoints (newest: " + newest +
        ") and checkpoint.resume = never would train beside them (the next default run would then resume the old "
        "run). Resume them (checkpoint.resume=auto), choose another run.output_dir, or set checkpoint.start_over="
        "move_aside (kept under " + run_dir + "/previous-DATE) or checkpoint.start_over=delete");
  std::vector<fs::path> what = {ckpts, run / "metrics.jsonl", run / "run.png"};
  // The export goes too when it lies strictly inside the run folder (never the folder itself).
  const fs::path exp = fs::weakly_canonical(export_dir), rel = exp.lexically_relative(fs::weakly_canonical(run));
  if (!rel.empty() && rel != "." && *rel.begin() != ".." && fs::exists(exp)) what.push_back(exp);
  // TensorBoard's event files (trainer/tensorboard/scalar_log.h), named in the message as a count:
  // moved aside, they show in TensorBoard as the run previous-DATE beside this one.
  std::vector<fs::path> events;
  std::error_code ec;
  for (fs::directory_iterator it(run, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind("events.out.tfevents.", 0) == 0) events.push_back(it->path());
  std::string done;
  const auto act = [&](const std::function<void(const fs::path&)>& apply) {
    for (const auto& p : what)
      if (fs::exists(fs::symlink_status(p))) {
        apply(p);
        done += (done.empty() ? "" : ", ") + p.filename().string();
      }
    for (const auto& p : events) apply(p);
    if (!events.empty()) done += cat(done.empty() ? "" : ", ", events.size(), " TensorBoard event file(s)");
  };
  if (mode == "move_aside") {
    const std::string stamp = "previous-" + utc_now("%Y%m%d-%H%M%S");
    fs::path aside = run / stamp;
    for (int n = 2; fs::exists(aside); ++n) aside = run / (stamp + "-" + std::to_string(n));
    fs::create_directories(aside);
    act([&](const fs::path& p) { fs::rename(p, aside / p.filename()); });
    return "moved " + done + " of the earlier run to " + aside.string();
  }
  if (mode != "delete") throw std::invalid_argument("checkpoint.start_over: unknown mode '" + mode + "'");
  act([](const fs::path& p) { fs::remove_all(p); });
  return "deleted " + done + " of the earlier run in " + run_dir;
}

}  // namespace ropex
