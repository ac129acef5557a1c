// TensorBoard scalars: the file's name and first records, one event per step. See scalar_log.h.
#include "trainer/tensorboard/scalar_log.h"

#include "trainer/tensorboard/event_codec.h"
#include "trainer/tensorboard/event_file.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>

namespace ropex::tensorboard {
namespace fs = std::filesystem;

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// The time in an event file's name (events.out.tfevents.<time>.<...>), or -1.
int64_t name_time(const std::string& name) {
  static const std::string prefix = "events.out.tfevents.";
  if (name.rfind(prefix, 0) != 0) return -1;
  size_t i = prefix.size(), end = i;
  while (end < name.size() && end - i < 18 && name[end] >= '0' && name[end] <= '9') ++end;
  if (end == i || end >= name.size() || name[end] != '.') return -1;
  return std::stoll(name.substr(i, end - i));
}
}  // namespace

std::string event_file_name(int64_t unix_time, const std::string& host, int64_t pid, int segment) {
  char t[32];
  std::snprintf(t, sizeof t, "%010lld", static_cast<long long>(unix_time));
  return "events.out.tfevents." + std::string(t) + "." + host + "." + std::to_string(pid) + "." + std::to_string(segment);
}

ScalarLog::ScalarLog(std::string run_dir, int64_t start_step, int segment)
    : run_dir_(std::move(run_dir)), start_step_(start_step), segment_(segment) {}

ScalarLog::~ScalarLog() = default;

std::string ScalarLog::path() const { return file_ ? file_->path() : ""; }

void ScalarLog::open() {
  const double wall = now_s();
  int64_t t = static_cast<int64_t>(wall);
  std::error_code ec;
  for (fs::directory_iterator it(run_dir_, ec), end; !ec && it != end; it.increment(ec))
    if (const int64_t other = name_time(it->path().filename().string()); other >= t) t = other + 1;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::snprintf(host, sizeof host, "localhost");
  for (char* c = host; *c; ++c)
    if (*c == '/') *c = '_';
  file_ = std::make_unique<EventFile>((fs::path(run_dir_) / event_file_name(t, host, ::getpid(), segment_)).string());
  file_->append(encode_file_version(wall));
  file_->append(encode_start(wall, start_step_ + 1));
}

void ScalarLog::write(int64_t step, const std::vector<Scalar>& scalars) {
  if (!file_) open();
  file_->append(encode_scalars(now_s(), step, scalars));
}

void ScalarLog::write_record(const nlohmann::json& rec) {
  static const std::pair<const char*, const char*> kTags[] = {
      {"loss", "train/loss"},          {"lr", "train/lr"},          {"grad_norm", "train/grad_norm"},
      {"tokens_per_s", "train/tokens_per_s"}, {"eval_loss", "eval/loss"}, {"eval_ppl", "eval/ppl"}};
  std::vector<Scalar> scalars;
  for (const auto& [key, tag] : kTags) {
    if (!rec.contains(key)) continue;
    const auto& v = rec[key];
    // A value that is not finite: NaN in the record as the trainer holds it, null once written as JSON.
    scalars.push_back({tag, v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN()});
  }
  write(rec.at("step").get<int64_t>(), scalars);
}

}  // namespace ropex::tensorboard
