// The CUDA caching allocator's settings, chosen before the first CUDA allocation.
//
// ropex asks for expandable segments (PYTORCH_ALLOC_CONF=expandable_segments:True): blocks grow in
// place instead of new fixed-size segments being reserved, which keeps the memory lost to
// fragmentation small when activation sizes vary from step to step (CREAM/PoSE windows, the loss's
// chunks, recomputed layers). A user who sets PYTORCH_ALLOC_CONF or the older PYTORCH_CUDA_ALLOC_CONF
// (e.g. expandable_segments:False, the plain allocator) is left alone. It changes nothing on the CPU.
// Reading the allocator's statistics is not done here (trainer/cmd_bench.cpp, the GPU check).
#pragma once
#include <string>

namespace ropex {

// Sets PYTORCH_ALLOC_CONF=expandable_segments:True unless either variable is already set. Must run
// before the first CUDA allocation (main() calls it first). Returns what the allocator will read.
std::string choose_cuda_allocator_settings();
// What the allocator reads (PYTORCH_ALLOC_CONF, else PYTORCH_CUDA_ALLOC_CONF; "" when neither is set).
std::string cuda_allocator_settings();
// Whether the allocator's parsed settings ask for expandable segments.
bool expandable_segments_enabled();

}  // namespace ropex
