// See device.h.
#include "trainer/device.h"

#include <torch/cuda.h>

#include <stdexcept>

namespace ropex {
at::Device parse_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw std::runtime_error("--device " + name + ": CUDA is not available on this machine (no GPU or driver); use --device cpu");
    at::Device d(name);
    if (d.has_index() && d.index() >= static_cast<int>(torch::cuda::device_count()))
      throw std::runtime_error("--device " + name + ": only " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    return d;
  }
  throw std::invalid_argument("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
}
}  // namespace ropex
