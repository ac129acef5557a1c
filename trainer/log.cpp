// spdlog behind ropex::log (see log.h for why this file is compiled apart from torch).
#include "trainer/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>

namespace ropex::log {
namespace {
std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = std::make_shared<spdlog::logger>("ropex", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    l->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return instance;
}
std::string& prefix() {
  static std::string p;
  return p;
}
}  // namespace

void set_level(Level level) { logger()->set_level(static_cast<spdlog::level::level_enum>(level == Level::off ? 6 : static_cast<int>(level))); }

Level parse_level(std::string_view name) {
  if (name == "trace") return Level::trace;
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn" || name == "warning") return Level::warn;
  if (name == "error") return Level::error;
  if (name == "off") return Level::off;
  throw std::invalid_argument("unknown log level '" + std::string(name) + "' (expected trace, debug, info, warn, error or off)");
}

void set_rank(int rank) { prefix() = rank >= 0 ? "[rank " + std::to_string(rank) + "] " : ""; }

void to_file(const std::string& path) {
  logger()->sinks().push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
}

void trace(const std::string& msg) { logger()->trace("{}{}", prefix(), msg); }
void debug(const std::string& msg) { logger()->debug("{}{}", prefix(), msg); }
void info(const std::string& msg) { logger()->info("{}{}", prefix(), msg); }
void warn(const std::string& msg) { logger()->warn("{}{}", prefix(), msg); }
void error(const std::string& msg) { logger()->error("{}{}", prefix(), msg); }
}  // namespace ropex::log
