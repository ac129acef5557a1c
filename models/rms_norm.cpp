// RMSNorm kernels. See rms_norm.h.
#include "models/rms_norm.h"

#include <stdexcept>

namespace ropex {

NormKernel parse_norm_kernel(const std::string& name) {
  if (name == "auto") return NormKernel::automatic;
  if (name == "reference") return NormKernel::reference;
  if (name == "fused") return NormKernel::fused;
  throw std::invalid_argument("unknown norm kernel '" + name + "' (expected auto, reference or fused)");
}

const char* norm_kernel_name(NormKernel k) {
  switch (k) {
    case NormKernel::automatic: return "auto";
    case NormKernel::reference: return "reference";
    case NormKernel::fused: return "fused";
  }
  return "?";
}

NormKernel resolve_norm_kernel(NormKernel k, const at::Device& device) {
  if (k != NormKernel::automatic) return k;
  return device.is_cuda() ? NormKernel::fused : NormKernel::reference;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, NormKernel kernel) {
  if (resolve_norm_kernel(kernel, x.device()) == NormKernel::fused && weight.scalar_type() == x.scalar_type())
    return at::rms_norm(x, {x.size(-1)}, weight, eps);
  // (A weight of another dtype than the input would send at::rms_norm down its slow composite path:
  // the reference is then the better of the two.)
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

}  // namespace ropex
