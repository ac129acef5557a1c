// SDPA backend order and choice. See sdpa_backends.h.
#include "models/sdpa_backends.h"

#include "models/sdpa_order.h"

#include <ATen/Context.h>
#include <ATen/SDPBackend.h>
#include <ATen/ops/_fused_sdp_choice.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace ropex {
namespace {

constexpr std::array<std::pair<const char*, at::SDPBackend>, 5> kNames = {{{"math", at::SDPBackend::math},
                                                                            {"flash", at::SDPBackend::flash_attention},
                                                                            {"efficient", at::SDPBackend::efficient_attention},
                                                                            {"cudnn", at::SDPBackend::cudnn_attention},
                                                                            {"overrideable", at::SDPBackend::overrideable}}};

// ATen's order before ropex changed anything (read once, the first time any order is set or read).
const std::vector<int64_t>& torch_order() {
  static const std::vector<int64_t> order = [] {
    std::vector<int64_t> o;
    for (at::SDPBackend b : at::globalContext().sDPPriorityOrder()) o.push_back(static_cast<int64_t>(b));
    return o;
  }();
  return order;
}

}  // namespace

std::string sdpa_backend_name(int64_t backend) {
  for (const auto& [name, b] : kNames)
    if (static_cast<int64_t>(b) == backend) return name;
  return backend == static_cast<int64_t>(at::SDPBackend::error) ? "none" : "backend " + std::to_string(backend);
}

std::vector<int64_t> parse_sdpa_order(const std::string& spec) {
  const std::vector<std::string> words = sdpa_order_words(spec);
  if (words.empty()) return torch_order();  // "torch"
  std::vector<int64_t> order;
  for (const std::string& word : words) {
    auto it = std::find_if(kNames.begin(), kNames.end(), [&](const auto& n) { return word == n.first; });
    order.push_back(static_cast<int64_t>(it->second));
  }
  for (int64_t id : torch_order())  // ATen wants every backend placed: the rest follow in its order
    if (std::find(order.begin(), order.end(), id) == order.end()) order.push_back(id);
  return order;
}

void set_sdpa_order(const std::string& spec) { at::globalContext().setSDPPriorityOrder(parse_sdpa_order(spec)); }

std::string sdpa_order() {
  (void)torch_order();
  std::string out;
  for (at::SDPBackend b : at::globalContext().sDPPriorityOrder())
    out += (out.empty() ? "" : ",") + sdpa_backend_name(static_cast<int64_t>(b));
  return out;
}

std::string sdpa_choice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  // The call models/attention.h makes for training (equal query and key lengths: is_causal, no mask).
  return sdpa_backend_name(at::_fused_sdp_choice(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true,
                                                 /*scale=*/std::nullopt, /*enable_gqa=*/q.size(1) != k.size(1)));
}

std::string sdpa_choice(int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t seq, int64_t head_dim,
                        at::ScalarType dtype, const at::Device& device) {
  // Laid out as the model makes them ([B, T, H, D] projections viewed as [B, H, T, D]) and requiring
  // grad as in training: some backends' checks differ for inputs that need a backward.
  const auto o = at::TensorOptions().dtype(dtype).device(device);
  const at::Tensor q = at::empty({batch, seq, q_heads, head_dim}, o).requires_grad_(true).transpose(1, 2);
  const at::Tensor k = at::empty({batch, seq, kv_heads, head_dim}, o).requires_grad_(true).transpose(1, 2);
  return sdpa_choice(q, k, k);
}

OnlySdpaBackend::OnlySdpaBackend(int64_t backend) {
  auto& c = at::globalContext();
  flash_ = c.userEnabledFlashSDP(), efficient_ = c.userEnabledMemEfficientSDP(), math_ = c.userEnabledMathSDP();
  cudnn_ = c.userEnabledCuDNNSDP();
  c.setSDPUseFlash(backend == static_cast<int64_t>(at::SDPBackend::flash_attention));
  c.setSDPUseMemEfficient(backend == static_cast<int64_t>(at::SDPBackend::efficient_attention));
  c.setSDPUseMath(backend == static_cast<int64_t>(at::SDPBackend::math));
  c.setSDPUseCuDNN(backend == static_cast<int64_t>(at::SDPBackend::cudnn_attention));
}

OnlySdpaBackend::~OnlySdpaBackend() {
  auto& c = at::globalContext();
  c.setSDPUseFlash(flash_);
  c.setSDPUseMemEfficient(efficient_);
  c.setSDPUseMath(math_);
  c.setSDPUseCuDNN(cudnn_);
}

}  // namespace ropex
