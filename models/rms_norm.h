// RMSNorm behind one interface with two kernels:
//   reference  Hugging Face's order: normalise in float32, cast back to the input's dtype, multiply by
//              the weight (bit-identical to transformers' LlamaRMSNorm on the same device);
//   fused      at::rms_norm, which runs one fused kernel forward and backward on CUDA when the input
//              and the weight share a dtype (the model keeps both in the compute dtype). It rounds once
//              where the reference rounds twice (after normalising and after the multiply), so in
//              bfloat16 the two differ by up to about one bfloat16 step of the output; in float32 they
//              agree to rounding.
//   auto       fused on CUDA, reference elsewhere (the CPU keeps transformers' bits; models/kernel_choice.h).
// It knows nothing of models or configs: LlamaRMSNorm (models/llama.h) holds the chosen kernel.
#pragma once
#include "models/kernel_choice.h"

#include <ATen/ATen.h>

namespace ropex {

using NormKernel = KernelChoice;

// x: [..., dim]; weight: [dim]. The output has the dtype of weight * x in the reference's promotion.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, NormKernel kernel);

}  // namespace ropex
