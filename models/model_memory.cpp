#include "models/model_memory.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ropex {
namespace {

std::string gib(double bytes) {
  std::ostringstream os;
  os.precision(bytes < 1e9 ? 3 : 4);
  os << bytes / double(int64_t{1} << 30) << " GiB";
  return os.str();
}

}  // namespace

std::optional<int64_t> host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

void require_memory_for_parameters(const LlamaConfig& cfg, const at::TensorOptions& options, const std::string& source) {
  if (!options.device().is_cpu()) return;
  const int64_t params = parameter_count(cfg);
  const double bytes = double(params) * double(c10::elementSize(c10::typeMetaToScalarType(options.dtype())));
  const std::optional<int64_t> available = host_available_bytes();
  if (!available || bytes <= double(*available)) return;
  throw std::runtime_error(source + ": the model has " + std::to_string(params) + " parameters, " + gib(bytes) + " in " +
                           std::string(c10::toString(c10::typeMetaToScalarType(options.dtype()))) + ", but this machine has " +
                           gib(double(*available)) + " of memory available (MemAvailable); check the sizes in config.json");
}

}  // namespace ropex
