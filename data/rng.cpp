// Rng implementation: mt19937_64 with hand-written transforms (see rng.h for the
// contract). Nothing here depends on a standard library's distribution classes.
#include "data/rng.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace ropex {

Rng::Rng(uint64_t seed) : engine_(seed) {}

uint64_t Rng::next_u64() { return engine_(); }

double Rng::uniform() {
  // The top 53 bits fill a double's mantissa exactly: k * 2^-53, k in [0, 2^53).
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

int64_t Rng::uniform_int(int64_t lo, int64_t hi) {
  if (lo > hi) {
    throw std::invalid_argument("Rng::uniform_int: empty range [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  }
  // Work in unsigned arithmetic so that the full int64 range does not overflow.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // count - 1
  if (span == std::numeric_limits<uint64_t>::max()) {
    return static_cast<int64_t>(next_u64());
  }
  const uint64_t count = span + 1;
  // Reject the lowest (2^64 mod count) outputs: what remains is a whole number of
  // copies of [0, count), so x % count is exactly uniform.
  const uint64_t reject_below = (0 - count) % count;
  uint64_t x = next_u64();
  while (x < reject_below) x = next_u64();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + x % count);
}

double Rng::normal() {
  // Box-Muller, cosine branch only. u1 is in (0, 1] so log(u1) is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::string Rng::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

namespace {

// Checks that `text` is exactly the 313 decimal numbers of an mt19937_64 state:
// 312 words below 2^64 and the position index, which must be in [0, 312] (an
// out-of-range index would make the engine read past its array).
std::string check_engine_text(const std::string& text) {
  constexpr size_t kWords = std::mt19937_64::state_size;  // 312
  std::istringstream in(text);
  std::string token;
  size_t count = 0;
  while (in >> token) {
    if (token.find_first_not_of("0123456789") != std::string::npos || token.size() > 20) {
      return "token " + std::to_string(count + 1) + " (\"" + token + "\") is not a decimal number";
    }
    if (token.size() == 20 && token > "18446744073709551615") {
      return "token " + std::to_string(count + 1) + " does not fit 64 bits";
    }
    if (count == kWords && (token.size() > 3 || std::stoul(token) > kWords)) {
      return "the position index (token 313) must be at most 312, got " + token;
    }
    ++count;
  }
  if (count != kWords + 1) return "expected 313 numbers, got " + std::to_string(count);
  return "";
}

}  // namespace

void Rng::set_state(const std::string& text) {
  const std::string problem = check_engine_text(text);
  if (!problem.empty()) {
    const std::string shown = text.size() > 60 ? text.substr(0, 60) + "..." : text;
    throw std::invalid_argument("Rng::set_state: not an mt19937_64 state as written by Rng::state(): " +
                                problem + "; text starts \"" + shown + "\"");
  }
  std::istringstream in(text);
  std::mt19937_64 parsed;
  in >> parsed;
  if (in.fail()) throw std::invalid_argument("Rng::set_state: the engine rejected the state text");
  engine_ = parsed;
}

}  // namespace ropex
