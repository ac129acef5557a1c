// TensorBoard scalars of a training run: rank 0's event file in the run folder, one per run segment.
//
// The file, events.out.tfevents.<unix time>.<host>.<pid>.<segment>, is created at the first write
// (a run resumed at its last step writes none). TensorBoard reads a folder's event files in name
// order, so the time in the name is moved past the newest one already there when the clock has not
// (two segments started in the same second, or a clock set back). Its records: the format version
// ("brain.Event:2"), then a SessionLog START at step S + 1 for a segment starting at step S
// (0 for a new run), then one event per step. A reader that purges orphaned data (TensorBoard's
// EventAccumulator, on by default, also behind `tensorboard --load_fast=false`) drops, at that
// START, every event it read with a step > S: the steps a killed run logged after its last
// checkpoint, which this segment redoes, as metrics.jsonl drops them at each start
// (trainer/metrics_log.h); for a new run, what an earlier run in the same folder left.
// TensorBoard's default fast loader (its Rust data server) ignores SessionLog and replaces a tag's
// points from a step on when that step is logged again: the same result once the resumed run has
// passed the killed run's last step; until then a stale point (an evaluation) can show ahead.
//
// Tags, from the step's record: train/loss, train/lr, train/grad_norm, train/tokens_per_s, and at
// evaluations eval/loss and eval/ppl; simple_value (float32: the record's double rounded once),
// wall_time in seconds since the epoch, step = the record's step. A value that is not finite (a
// skipped step's loss and gradient norm, which metrics.jsonl writes as null) is written as it is,
// NaN or infinity; one beyond float32's range becomes infinity. TensorBoard shows both.
//
// It does NOT encode events (event_codec.h), frame or write bytes (event_file.h), decide which
// rank writes (the trainer's reporter), or draw anything.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/tensorboard/event_codec.h"

namespace ropex::tensorboard {

class EventFile;

// events.out.tfevents.<unix_time, 10 digits>.<host>.<pid>.<segment>
std::string event_file_name(int64_t unix_time, const std::string& host, int64_t pid, int segment);

class ScalarLog {
 public:
  ScalarLog(std::string run_dir, int64_t start_step, int segment);
  ~ScalarLog();
  ScalarLog(const ScalarLog&) = delete;
  ScalarLog& operator=(const ScalarLog&) = delete;

  // One step's record (trainer/train.cpp's Reporter: step, loss, lr, grad_norm, tokens_per_s, and
  // eval_loss, eval_ppl at evaluations): one event holding the tags above.
  void write_record(const nlohmann::json& rec);
  void write(int64_t step, const std::vector<Scalar>& scalars);
  std::string path() const;  // "" before the first write

 private:
  void open();
  std::string run_dir_;
  int64_t start_step_;
  int segment_;
  std::unique_ptr<EventFile> file_;
};

}  // namespace ropex::tensorboard
