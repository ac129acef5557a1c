// A compiled Oniguruma regular expression, searched the way the `tokenizers` library searches its
// patterns (onig's Rust bindings: UTF-8 encoding, the default syntax, no options).
//
// Positions are byte offsets into UTF-8 text. find_all follows the bindings' iteration: matches do
// not overlap, and an empty match right where the previous match ended is skipped by stepping one
// character. This file knows nothing of tokenizer.json; callers name the file and key in errors.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ropex::tok {

class OnigRegex {
 public:
  // Throws std::runtime_error with Oniguruma's message when `pattern` does not compile.
  explicit OnigRegex(const std::string& pattern);
  ~OnigRegex();
  OnigRegex(const OnigRegex&) = delete;
  OnigRegex& operator=(const OnigRegex&) = delete;

  // Every match (start, end) in `text`, in order. Safe to call from several threads at once.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  // A pattern matching `literal` exactly (tokenizers' String patterns).
  static std::string escape(std::string_view literal);

 private:
  void* regex_;  // regex_t*
};

}  // namespace ropex::tok
