// Counts the bytes of CPU tensor storage live at once, for `ropex bench` on the CPU.
//
// On CUDA the caching allocator keeps its own peak (what `ropex plan` is checked against there). On
// the CPU there is none, and a process's peak RSS also holds its libraries, thread stacks and
// malloc's arenas, which vary from machine to machine by far more than a test can allow. So bench
// puts a counting allocator in front of LibTorch's CPU allocator: every CPU tensor's storage
// (parameters, gradients, optimizer states, activations, the loss's logits) is counted from
// allocation to release, and the highest total is the figure the plan's tensor terms model.
// It does not see memory that kernels take from malloc themselves (BLAS or oneDNN scratch space),
// nor storage allocated before it was installed. Installing is for a whole process: it stays in
// place until exit.
#pragma once
#include <cstdint>

namespace ropex {

// Puts the counter in front of the CPU allocator (once; later calls do nothing). Call before the
// tensors to be counted are made.
void install_cpu_tensor_count();
// Whether install_cpu_tensor_count() has run in this process.
bool cpu_tensor_count_installed();
// Bytes of CPU storage allocated through the counter and not yet released, and the highest such
// total since it was installed or last reset.
int64_t cpu_tensor_bytes_now();
int64_t cpu_tensor_bytes_peak();
// Sets the peak to what is live now.
void reset_cpu_tensor_peak();

}  // namespace ropex
