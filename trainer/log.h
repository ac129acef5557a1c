// Logging for ropex: thin functions over spdlog that take finished strings.
//
// Why strings: torch's headers carry fmt 12, Debian's spdlog is built on fmt 9, so spdlog lives in
// its own translation unit (trainer/log.cpp) and the rest of ropex formats with ropex::cat()
// (an ostringstream fold) and never includes spdlog or fmt itself.
#pragma once
#include <sstream>
#include <string>
#include <string_view>

namespace ropex {

// cat("step ", 3, " loss ", 1.5) -> "step 3 loss 1.5"
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

namespace log {
enum class Level { trace, debug, info, warn, error, off };
void set_level(Level level);
Level parse_level(std::string_view name);  // throws std::invalid_argument naming the value
void set_rank(int rank);                   // prefixes "[rank N]" when world size > 1 (N >= 0)
void to_file(const std::string& path);     // also append every line to this file
void trace(const std::string& msg);
void debug(const std::string& msg);
void info(const std::string& msg);
void warn(const std::string& msg);
void error(const std::string& msg);
}  // namespace log
}  // namespace ropex
