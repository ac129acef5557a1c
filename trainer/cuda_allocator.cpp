// CUDA allocator settings. See cuda_allocator.h.
#include "trainer/cuda_allocator.h"

#include <c10/core/AllocatorConfig.h>

#include <cstdlib>

namespace ropex {

std::string cuda_allocator_settings() {
  for (const char* name : {"PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF"})
    if (const char* v = std::getenv(name)) return v;
  return "";
}

std::string choose_cuda_allocator_settings() {
  if (!std::getenv("PYTORCH_ALLOC_CONF") && !std::getenv("PYTORCH_CUDA_ALLOC_CONF")) {
    const char* settings = "expandable_segments:True";
    // The variable serves child processes; the allocator of this one may already have read the
    // environment (its settings object can be made before main), so it is told directly too.
    setenv("PYTORCH_ALLOC_CONF", settings, /*overwrite=*/0);
    c10::CachingAllocator::setAllocatorSettings(settings);
  }
  return cuda_allocator_settings();
}

bool expandable_segments_enabled() { return c10::CachingAllocator::AcceleratorAllocatorConfig::use_expandable_segments(); }

}  // namespace ropex
