// See device.h.
#include "trainer/device.h"

#include <torch/cuda.h>

#if __has_include(<ATen/cuda/CUDAContext.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAContext.h>
#define ROPEX_DEVICE_CUDA 1
#endif

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

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());  // index -1: the current device
}

std::optional<int64_t> visible_gpu_memory(int index) {
#ifdef ROPEX_DEVICE_CUDA
  if (torch::cuda::is_available() && index < static_cast<int>(torch::cuda::device_count()))
    return static_cast<int64_t>(at::cuda::getDeviceProperties(index)->totalGlobalMem);
#endif
  (void)index;
  return std::nullopt;
}
}  // namespace ropex
