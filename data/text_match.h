// "Did you mean" support shared by every strict parser (CLI flags, run configs, sampler options):
// Levenshtein distance and the nearest candidate. Torch-free.
#pragma once
#include <string>
#include <vector>

namespace ropex {
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate with the smallest edit distance to `word` ("" when there are none).
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);
}  // namespace ropex
