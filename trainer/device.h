// Device and dtype selection from command-line words, with clear errors (e.g. asking for CUDA on a
// machine without it). No model knowledge.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace ropex {
at::Device parse_device(const std::string& name);  // cpu | cuda | cuda:N; throws if CUDA is unavailable
}  // namespace ropex
