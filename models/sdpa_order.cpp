// SDPA order words. See sdpa_order.h.
#include "models/sdpa_order.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace ropex {

std::vector<std::string> sdpa_order_words(const std::string& spec) {
  if (spec == "torch") return {};
  static const std::vector<std::string> known = {"cudnn", "flash", "efficient", "math"};
  if (spec == "auto") return known;  // cuDNN attention first (sdpa_backends.h says why)
  std::vector<std::string> words;
  std::stringstream in(spec);
  std::string word;
  while (std::getline(in, word, ',')) {
    if (std::find(known.begin(), known.end(), word) == known.end())
      throw std::invalid_argument("unknown SDPA backend '" + word + "' in '" + spec +
                                  "' (expected auto, torch, or a comma-separated list of cudnn, flash, efficient, math)");
    if (std::find(words.begin(), words.end(), word) != words.end())
      throw std::invalid_argument("SDPA backend '" + word + "' named twice in '" + spec + "'");
    words.push_back(word);
  }
  if (words.empty()) throw std::invalid_argument("empty SDPA backend order (expected auto, torch or a list such as cudnn,flash)");
  return words;
}

}  // namespace ropex
