// Which fused backend at::scaled_dot_product_attention runs: the order in which ATen tries them
// (process-wide, at::globalContext()) and, for given inputs, the one it would pick.
//
// Orders (model.sdpa_backends, ropex bench --sdpa-backends):
//   auto    cudnn, flash, efficient, math: cuDNN attention first, reported 1.7-2.3x faster than
//           flash-2 on Hopper training shapes; ATen skips a backend that cannot run the inputs
//           (cuDNN: head_dim <= 128 and a multiple of 8, not under deterministic algorithms; flash:
//           fp16/bf16, sm80+) and takes the next, so the order never makes attention fail;
//   torch   ATen's own order, as it was when the process started;
//   a list  e.g. "flash,efficient,math": those first, in that order, then the others in ATen's order.
// The CPU has flash and math only; the order changes nothing there. Attention itself lives in
// models/attention.h; this file does not compute anything.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace ropex {

// Backend ids as ATen numbers them (at::SDPBackend): math 0, flash 1, efficient 2, cudnn 3, overrideable 4.
// A full order from a spec (models/sdpa_order.h says which); throws naming a bad word.
std::vector<int64_t> parse_sdpa_order(const std::string& spec);
void set_sdpa_order(const std::string& spec);
std::string sdpa_order();                      // the current order, e.g. "cudnn,flash,efficient,math,overrideable"
std::string sdpa_backend_name(int64_t backend);  // "cudnn" ...; "none" for at::SDPBackend::error

// The backend SDPA would run for causal attention over q [B, Hq, T, D], k, v [B, Hkv, T, D] (GQA
// when Hq != Hkv), as models/attention.h calls it, under the current order and switches.
std::string sdpa_choice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// The same for shapes alone: empty tensors of that shape, dtype and device, requiring grad as in
// training, are made for the question.
std::string sdpa_choice(int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t seq, int64_t head_dim,
                        at::ScalarType dtype, const at::Device& device);

// Only `backend` enabled (math included only when it is the one), for timing one backend; the
// destructor restores the switches as they were.
class OnlySdpaBackend {
 public:
  explicit OnlySdpaBackend(int64_t backend);
  ~OnlySdpaBackend();
  OnlySdpaBackend(const OnlySdpaBackend&) = delete;
  OnlySdpaBackend& operator=(const OnlySdpaBackend&) = delete;

 private:
  bool flash_, efficient_, math_, cudnn_;
};

}  // namespace ropex
