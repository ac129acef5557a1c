// The one switch every fast path takes (RMSNorm, models/rms_norm.h; the AdamW update,
// trainer/adamw_fused.h): auto | reference | fused. `auto` is the fused kernel on CUDA and the
// reference elsewhere, so the CPU keeps the reference's bits (transformers', torch.optim.AdamW's).
// Only the choice lives here: the kernels live with the paths they speed up.
#pragma once
#include <ATen/core/TensorBody.h>

#include <stdexcept>
#include <string>

namespace ropex {

enum class KernelChoice { automatic, reference, fused };

// `what` names the switch in the error, e.g. "norm kernel".
inline KernelChoice parse_kernel_choice(const std::string& name, const std::string& what) {
  if (name == "auto") return KernelChoice::automatic;
  if (name == "reference") return KernelChoice::reference;
  if (name == "fused") return KernelChoice::fused;
  throw std::invalid_argument("unknown " + what + " '" + name + "' (expected auto, reference or fused)");
}

// Whether choice `k` runs the fused kernel for tensors on `device`.
inline bool runs_fused(KernelChoice k, const at::Device& device) {
  return k == KernelChoice::fused || (k == KernelChoice::automatic && device.is_cuda());
}

}  // namespace ropex
