// RMSNorm kernels. See rms_norm.h.
#include "models/rms_norm.h"

namespace ropex {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, NormKernel kernel) {
  if (runs_fused(kernel, x.device()) && weight.scalar_type() == x.scalar_type())
    return at::rms_norm(x, {x.size(-1)}, weight, eps);
  // (A weight of another dtype than the input would send at::rms_norm down its slow composite path:
  // the reference is then the better of the two.)
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

}  // namespace ropex
