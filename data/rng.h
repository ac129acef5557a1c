// Rng: ropex's one random number generator. A std::mt19937_64 engine (its output
// sequence is fixed by the C++ standard) plus our own transforms, so that a seed
// gives the same draws with every standard library:
//   next_u64()          the raw engine output
//   uniform()           double in [0, 1) from the top 53 bits of one output
//   uniform_int(lo, hi) integer in [lo, hi] inclusive, unbiased by rejection
//   normal()            standard normal by Box-Muller (two uniforms, one output,
//                       no cached spare, so the engine is the whole state)
//   state()/set_state() the engine's standard text form, for checkpoints.
//
// It does NOT use std::uniform_*_distribution or std::normal_distribution (their
// algorithms differ between standard libraries). Integer and uniform draws are
// bit-identical everywhere; normal() also goes through std::log/std::sqrt/std::cos,
// so it is bit-identical only with the same libm (last-ulp differences elsewhere).
// Not thread-safe: one Rng per thread/rank, seeded explicitly.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace ropex {

class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t next_u64();
  double uniform();                             // [0, 1), multiples of 2^-53
  int64_t uniform_int(int64_t lo, int64_t hi);  // inclusive; throws std::invalid_argument if lo > hi
  double normal();                              // mean 0, standard deviation 1

  // The engine's state in the standard's text form (decimal numbers separated by
  // spaces). set_state throws std::invalid_argument on text that is not a complete
  // mt19937_64 state (and then leaves this Rng unchanged).
  std::string state() const;
  void set_state(const std::string& text);

  bool operator==(const Rng& other) const { return engine_ == other.engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace ropex
