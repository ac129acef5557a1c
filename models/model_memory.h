// Whether a model's parameters fit in memory, asked before they are allocated.
//
// A config.json whose sizes are each plausible can still describe a model far larger than the
// machine (or a file far larger than the weights present); LibTorch would then fail deep inside an
// allocation. require_memory_for_parameters compares the parameters' bytes in their dtype with the
// host's available memory (MemAvailable in /proc/meminfo) and refuses, naming the sizes, when they
// cannot fit. It checks host (CPU) memory only: CUDA allocations fail with LibTorch's own
// out-of-memory exception, which the commands report. It does not count activations, gradients or
// optimizer state: trainer/plan.h estimates those.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "models/llama_config.h"

namespace ropex {

// Bytes the host can still give a process (MemAvailable), or nullopt where /proc/meminfo is absent.
std::optional<int64_t> host_available_bytes();

// Throws std::runtime_error naming `source` when cfg's parameters in options' dtype need more than
// the host has available (CPU tensors only; other devices pass).
void require_memory_for_parameters(const LlamaConfig& cfg, const at::TensorOptions& options, const std::string& source);

}  // namespace ropex
