// Device and dtype selection from command-line words, with clear errors (e.g. asking for CUDA on a
// machine without it). No model knowledge.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace ropex {
at::Device parse_device(const std::string& name);  // cpu | cuda | cuda:N; throws if CUDA is unavailable
// Total memory of the visible GPU `index` in bytes, or nothing without CUDA.
std::optional<int64_t> visible_gpu_memory(int index = 0);
// Waits for `device`'s queued work (a CUDA device; nothing to wait for on the CPU): for timing.
void synchronize(const at::Device& device);
}  // namespace ropex
