// See event_codec.h. The only file that includes the generated event.pb-c.h.
#include "trainer/tensorboard/event_codec.h"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

#include "trainer/tensorboard/event.pb-c.h"

namespace ropex::tensorboard {
namespace {

using Event = Ropex__Tensorboard__Wire__Event;

Event new_event(double wall_time, int64_t step) {
  Event e;
  ropex__tensorboard__wire__event__init(&e);
  e.wall_time = wall_time;
  e.step = step;
  return e;
}

// A double as float32, rounded once; beyond float32's range it is infinity (a plain cast would be
// undefined there).
float to_float32(double v) {
  if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max())
    return v > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  return static_cast<float>(v);
}

std::string pack(const Event& e) {
  std::string out(ropex__tensorboard__wire__event__get_packed_size(&e), '\0');
  const size_t n = ropex__tensorboard__wire__event__pack(&e, reinterpret_cast<uint8_t*>(out.data()));
  if (n != out.size()) throw std::runtime_error("TensorBoard event: protobuf-c packed a size other than it announced");
  return out;
}

}  // namespace

std::string encode_file_version(double wall_time) {
  Event e = new_event(wall_time, 0);
  static char version[] = "brain.Event:2";
  e.what_case = ROPEX__TENSORBOARD__WIRE__EVENT__WHAT_FILE_VERSION;
  e.file_version = version;
  return pack(e);
}

std::string encode_start(double wall_time, int64_t step) {
  Event e = new_event(wall_time, step);
  Ropex__Tensorboard__Wire__SegmentMarker start;
  ropex__tensorboard__wire__segment_marker__init(&start);
  start.status = ROPEX__TENSORBOARD__WIRE__SEGMENT_MARKER__STATUS__START;
  e.what_case = ROPEX__TENSORBOARD__WIRE__EVENT__WHAT_SESSION_LOG;
  e.session_log = &start;
  return pack(e);
}

std::string encode_scalars(double wall_time, int64_t step, const std::vector<Scalar>& scalars) {
  Event e = new_event(wall_time, step);
  // protobuf-c messages point at their parts: the entries and their tags live here while packing.
  std::vector<Ropex__Tensorboard__Wire__ScalarSummary__Entry> entries(scalars.size());
  std::vector<Ropex__Tensorboard__Wire__ScalarSummary__Entry*> pointers(scalars.size());
  std::vector<std::string> tags(scalars.size());
  for (size_t i = 0; i < scalars.size(); ++i) {
    ropex__tensorboard__wire__scalar_summary__entry__init(&entries[i]);
    tags[i] = scalars[i].tag;
    entries[i].tag = tags[i].data();
    entries[i].value_case = ROPEX__TENSORBOARD__WIRE__SCALAR_SUMMARY__ENTRY__VALUE_SIMPLE_VALUE;
    entries[i].simple_value = to_float32(scalars[i].value);
    pointers[i] = &entries[i];
  }
  Ropex__Tensorboard__Wire__ScalarSummary summary;
  ropex__tensorboard__wire__scalar_summary__init(&summary);
  summary.n_entries = pointers.size();
  summary.entries = pointers.data();
  e.what_case = ROPEX__TENSORBOARD__WIRE__EVENT__WHAT_SUMMARY;
  e.summary = &summary;
  return pack(e);
}

DecodedEvent decode_event(std::string_view bytes) {
  const auto free_event = [](Event* e) { ropex__tensorboard__wire__event__free_unpacked(e, nullptr); };
  const std::unique_ptr<Event, decltype(free_event)> e(
      ropex__tensorboard__wire__event__unpack(nullptr, bytes.size(), reinterpret_cast<const uint8_t*>(bytes.data())),
      free_event);
  if (!e) throw std::runtime_error("not a TensorBoard event (protobuf parse failed)");
  DecodedEvent d;
  d.wall_time = e->wall_time;
  d.step = e->step;
  switch (e->what_case) {
    case ROPEX__TENSORBOARD__WIRE__EVENT__WHAT_FILE_VERSION: d.file_version = e->file_version; break;
    case ROPEX__TENSORBOARD__WIRE__EVENT__WHAT_SESSION_LOG:
      d.start = e->session_log->status == ROPEX__TENSORBOARD__WIRE__SEGMENT_MARKER__STATUS__START;
      break;
    case ROPEX__TENSORBOARD__WIRE__EVENT__WHAT_SUMMARY:
      for (size_t i = 0; i < e->summary->n_entries; ++i) {
        const auto* entry = e->summary->entries[i];
        d.scalars.emplace_back(entry->tag, entry->value_case == ROPEX__TENSORBOARD__WIRE__SCALAR_SUMMARY__ENTRY__VALUE_SIMPLE_VALUE
                                               ? entry->simple_value
                                               : 0.0f);
      }
      break;
    default: break;
  }
  return d;
}

}  // namespace ropex::tensorboard
