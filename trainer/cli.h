// Command-line parsing for ropex's subcommands: declared options with help text, strict parsing
// (unknown flags and missing values are errors naming the flag and the nearest valid one),
// `--help` on every command. No torch here.
#pragma once
#include "data/text_match.h"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ropex {

// Thrown for bad command lines; main prints the message and the command's usage, exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown by parse() when --help was given; main prints the help and exits 0.
struct HelpRequested {
  std::string text;
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);
  // --name VALUE (repeatable options collect every value).
  ArgParser& option(const std::string& name, const std::string& metavar, const std::string& help,
                    std::optional<std::string> default_value = std::nullopt, bool repeatable = false);
  ArgParser& flag(const std::string& name, const std::string& help);  // --name, no value
  ArgParser& positional(const std::string& name, const std::string& help, bool required = true);

  void parse(const std::vector<std::string>& args);  // throws UsageError / HelpRequested

  bool has(const std::string& name) const;                 // given, or has a default
  std::string get(const std::string& name) const;          // throws UsageError if absent (required)
  std::vector<std::string> get_all(const std::string& name) const;
  bool flag_set(const std::string& name) const;
  int64_t get_int(const std::string& name) const;          // parsed strictly
  std::string help() const;

 private:
  struct Spec {
    std::string metavar, help;
    std::optional<std::string> default_value;
    bool is_flag = false, repeatable = false;
  };
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  std::vector<bool> positional_required_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, bool> flags_;
};

// "4096,32768" -> {4096, 32768}: positive integers separated by commas; anything else is a
// UsageError naming `what` (e.g. "prepare: --windows") and the text.
std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& what);
// "a,b,c" -> {"a", "b", "c"} (empty items are a UsageError naming `what`).
std::vector<std::string> split_list(const std::string& text, const std::string& what);

}  // namespace ropex
