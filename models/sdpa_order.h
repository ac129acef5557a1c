// The words of an SDPA backend order (model.sdpa_backends, ropex bench --sdpa-backends), checked
// without torch so that the run config's validation (and its fuzz target) can use it:
//   "auto"  -> cudnn, flash, efficient, math;   "torch" -> none (ATen's own order);
//   a comma-separated list of cudnn, flash, efficient, math, each at most once.
// Applying an order to ATen, and asking which backend runs, is models/sdpa_backends.h.
#pragma once
#include <string>
#include <vector>

namespace ropex {

// Throws std::invalid_argument naming the spec and the bad word.
std::vector<std::string> sdpa_order_words(const std::string& spec);

}  // namespace ropex
