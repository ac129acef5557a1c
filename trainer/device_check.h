// The checks `ropex device-check` runs for the GPU check (bench/gpu_check.py, ./run.sh gpu-check),
// each returning one JSON object. On a CUDA device they prove the CUDA path; with device cpu they
// run the same logic on the CPU (the dry run CI runs), comparing the plain paths with the fast ones.
//
//   env      what this binary sees: CUDA, cuDNN, NCCL built in, the device, the allocator's settings,
//            the SDPA order.
//   parity   one training step of a small model in float32 (TF32 off): the plain path on the CPU
//            (reference attention, reference RMSNorm, reference AdamW) against the fast paths on the
//            device (SDPA, fused RMSNorm, fused AdamW): loss, every gradient, one AdamW update.
//   logits   a Hugging Face directory's logits and loss for given input ids (compared with
//            transformers by the caller).
//   sdpa     for the attention shapes trained at scale: the backend SDPA picks under ropex's order,
//            and each backend's forward+backward time and error against the reference attention.
// Nothing here decides what a run uses; the kernels live in models/ and trainer/adamw_fused.h.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>

namespace ropex {

nlohmann::json device_check_env(const at::Device& device);
nlohmann::json device_check_parity(const at::Device& device, uint64_t seed);
nlohmann::json device_check_logits(const std::string& model_dir, const std::string& input, const std::string& output,
                                   const at::Device& device, at::ScalarType dtype);
nlohmann::json device_check_sdpa(const at::Device& device, int64_t repeats);

}  // namespace ropex
