// Strict command-line parsing. See cli.h.
#include "trainer/cli.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace ropex {

ArgParser::ArgParser(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

ArgParser& ArgParser::option(const std::string& name, const std::string& metavar, const std::string& help,
                             std::optional<std::string> def, bool repeatable) {
  specs_[name] = Spec{metavar, help, std::move(def), false, repeatable};
  order_.push_back(name);
  return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
  specs_[name] = Spec{"", help, std::nullopt, true, false};
  order_.push_back(name);
  return *this;
}

ArgParser& ArgParser::positional(const std::string& name, const std::string& help, bool required) {
  positional_specs_.push_back({name, help});
  positional_required_.push_back(required);
  return *this;
}

void ArgParser::parse(const std::vector<std::string>& args) {
  size_t next_positional = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") throw HelpRequested{help()};
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      auto it = specs_.find(name);
      if (it == specs_.end()) {
        std::vector<std::string> names(order_.begin(), order_.end());
        throw UsageError(command_ + ": unknown option '--" + name + "'" +
                         (names.empty() ? "" : " (did you mean '--" + nearest(name, names) + "'?)"));
      }
      if (it->second.is_flag) {
        if (inline_value) throw UsageError(command_ + ": option '--" + name + "' takes no value");
        flags_[name] = true;
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= args.size()) throw UsageError(command_ + ": option '--" + name + "' needs a value (" + it->second.metavar + ")");
        value = args[++i];
      }
      auto& slot = values_[name];
      if (!slot.empty() && !it->second.repeatable)
        throw UsageError(command_ + ": option '--" + name + "' given more than once");
      slot.push_back(value);
    } else {
      if (next_positional >= positional_specs_.size())
        throw UsageError(command_ + ": unexpected argument '" + a + "'");
      values_[positional_specs_[next_positional++].first].push_back(a);
    }
  }
  for (size_t p = next_positional; p < positional_specs_.size(); ++p)
    if (positional_required_[p]) throw UsageError(command_ + ": missing argument " + positional_specs_[p].first);
}

bool ArgParser::has(const std::string& name) const {
  if (values_.count(name)) return true;
  auto it = specs_.find(name);
  return it != specs_.end() && it->second.default_value.has_value();
}

std::string ArgParser::get(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second.back();
  if (auto it = specs_.find(name); it != specs_.end() && it->second.default_value) return *it->second.default_value;
  throw UsageError(command_ + ": missing required option '--" + name + "'");
}

std::vector<std::string> ArgParser::get_all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

bool ArgParser::flag_set(const std::string& name) const { return flags_.count(name) > 0; }

int64_t ArgParser::get_int(const std::string& name) const {
  const std::string v = get(name);
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size())
    throw UsageError(command_ + ": option '--" + name + "' expects an integer, got '" + v + "'");
  return out;
}

std::string ArgParser::help() const {
  std::ostringstream os;
  os << "usage: ropex " << command_;
  for (size_t p = 0; p < positional_specs_.size(); ++p)
    os << (positional_required_[p] ? " " : " [") << positional_specs_[p].first << (positional_required_[p] ? "" : "]");
  os << (order_.empty() ? "" : " [options]") << "\n\n" << summary_ << "\n";
  if (!positional_specs_.empty()) {
    os << "\narguments:\n";
    for (const auto& [n, h] : positional_specs_) os << "  " << n << "\n      " << h << "\n";
  }
  if (!order_.empty()) {
    os << "\noptions:\n";
    for (const auto& n : order_) {
      const Spec& s = specs_.at(n);
      os << "  --" << n << (s.is_flag ? "" : " " + s.metavar) << "\n      " << s.help;
      if (s.default_value) os << " (default: " << (s.default_value->empty() ? "\"\"" : *s.default_value) << ")";
      if (s.repeatable) os << " (repeatable)";
      os << "\n";
    }
  }
  os << "  --help\n      show this help\n";
  return os.str();
}

std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& what) {
  std::vector<int64_t> out;
  for (const std::string& item : split_list(text, what)) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || end != item.data() + item.size() || v <= 0)
      throw UsageError(what + " expects positive integers separated by commas, got '" + text + "'");
    out.push_back(v);
  }
  return out;
}

std::vector<std::string> split_list(const std::string& text, const std::string& what) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (out.back().empty()) throw UsageError(what + ": empty item in '" + text + "'");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace ropex
