// One comparison the transformers parity tests share (tests/test_hf_parity.cpp,
// tests/test_model_families.cpp): a model's logits, mean loss and every parameter's gradient against
// a reference made by transformers (make_reference.py / make_family_reference.py: "logits",
// "loss", "grad.<name>"), with the limits tests/tolerance.h derives for the model's shape.
// It does not run the model: callers do the forward and backward their own way.
#pragma once
#include "models/llama.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

namespace ropex::test {

struct ParityErrors {
  double logits = 0, loss = 0, worst_grad = 0;
  double logit_limit = 0, loss_limit = 0, grad_limit = 0;
};

// Expects logits, loss and gradients within tolerance.h's limits for `cfg` and T tokens a row;
// every reference gradient must have its parameter and none may be missing. `name` labels failures.
inline ParityErrors expect_matches_reference(LlamaForCausalLM& model, const LlamaConfig& cfg, const at::Tensor& logits,
                                             const at::Tensor& loss, std::map<std::string, at::Tensor>& ref,
                                             const std::string& name) {
  ParityErrors e;
  const int64_t B = ref["input_ids"].size(0), T = ref["input_ids"].size(1);
  const double ref_loss = ref["loss"].item<double>();
  e.logit_limit = tol::llama_forward(cfg, T);
  e.loss_limit = tol::mean_nll(cfg, T, B * T, ref["logits"].abs().max().item<double>(), ref_loss) / ref_loss;
  e.grad_limit = tol::llama_backward(cfg, T, B * T);
  e.logits = rel_err(logits, ref["logits"]);
  e.loss = rel_err(loss, ref["loss"]);
  EXPECT_LE(e.logits, e.logit_limit) << name << " logits";
  EXPECT_LE(e.loss, e.loss_limit) << name << " loss";
  size_t n_grads = 0, ref_grads = 0;
  for (auto& p : model->named_parameters()) {
    auto it = ref.find("grad." + p.key());
    EXPECT_NE(it, ref.end()) << "reference lacks the gradient of " << p.key();
    EXPECT_TRUE(p.value().grad().defined()) << p.key() << " got no gradient";
    if (it == ref.end() || !p.value().grad().defined()) continue;
    const double g = rel_err(p.value().grad(), it->second);
    EXPECT_LE(g, e.grad_limit) << name << " grad of " << p.key();
    e.worst_grad = std::max(e.worst_grad, g);
    ++n_grads;
  }
  for (const auto& [k, v] : ref) ref_grads += k.rfind("grad.", 0) == 0;
  EXPECT_EQ(n_grads, ref_grads) << "parameter sets differ";
  return e;
}

}  // namespace ropex::test
