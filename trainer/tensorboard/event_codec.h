// TensorBoard events as bytes: the protobuf encoding of the records ropex writes (event.proto), and
// one parsed back for the tests. Nothing else in ropex sees protobuf.
//
// The encoding is protobuf-c's (Debian libprotobuf-c-dev; code generated from event.proto by
// protoc-c at build time), not the C++ runtime's: Debian's libsentencepiece.so carries its own,
// older copy of the C++ protobuf runtime and exports it, so in a process that links SentencePiece
// (ropex does) calls into a C++ libprotobuf land in SentencePiece's copy and crash at the first
// serialization. protobuf-c's symbols (protobuf_c_*) are its own.
// It does NOT frame records (event_file.h) or decide what a step's events hold (scalar_log.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ropex::tensorboard {

struct Scalar {
  std::string tag;
  double value;  // written as float32
};

// The file's first record: file_version "brain.Event:2".
std::string encode_file_version(double wall_time);
// A SessionLog START at `step`.
std::string encode_start(double wall_time, int64_t step);
// One event holding simple_value scalars.
std::string encode_scalars(double wall_time, int64_t step, const std::vector<Scalar>& scalars);

struct DecodedEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;  // "" unless a version record
  bool start = false;        // a SessionLog START
  std::vector<std::pair<std::string, float>> scalars;
};
// Throws std::runtime_error when `bytes` is not an Event.
DecodedEvent decode_event(std::string_view bytes);

}  // namespace ropex::tensorboard
