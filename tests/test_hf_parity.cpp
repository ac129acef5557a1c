// ropex's Llama against transformers: logits, loss and every parameter's gradient on tiny random
// models written by tests/make_reference.py (MHA/GQA, tied/untied, explicit head_dim with biases,
// 4.x and 5.x config layouts, linear/yarn/dynamic/llama3 scaling past the original window, jumpy
// position ids; ntk and dynamic-yarn, which transformers lacks, through exact equivalences with
// types it has — see make_reference.py). Both attention paths are checked, float32 strictly and bfloat16 loosely.
//
// Limits (relative to the reference's largest |value|), from tests/tolerance.h's rounding model for
// each case's shape and length:
//   float32 logits: tol::llama_forward; the loss: tol::mean_nll (twice the largest logit error, plus the
//     logsumexp over the vocabulary and the mean over the batch's tokens);
//   float32 gradients: tol::llama_backward;
//   bfloat16 logits against the float32 reference: 4 times the distance of transformers' own bfloat16
//     run of the same weights from its float32 run. Both bfloat16 runs commit independent roundings of
//     the same sizes at the same places (bfloat16 weights, every op's output); the largest over >= 10^4
//     logits of two such samples differs by well under 2x, and 4 leaves another 2x.
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "tests/parity_check.h"
#include "tests/test_util.h"
#include "tests/tolerance.h"

#include <fstream>

namespace ropex::test {
namespace {

struct RefCase {
  std::string name, file;
};

std::vector<RefCase> all_cases() {
  // Must list every case make_reference.py writes (a missing directory fails the test).
  return {{"mha_untied", "reference.safetensors"},      {"gqa_tied", "reference.safetensors"},
          {"head_dim_bias", "reference.safetensors"},   {"linear_v4", "reference.safetensors"},
          {"linear_v5", "reference.safetensors"},       {"yarn_v5", "reference.safetensors"},
          {"yarn_v4_mscale", "reference.safetensors"},  {"dynamic_v4", "reference_T40.safetensors"},
          {"dynamic_v4", "reference_T130.safetensors"}, {"llama3_v5", "reference.safetensors"},
          {"ntk_equiv", "reference.safetensors"},       {"dynamic_yarn_above", "reference.safetensors"},
          {"dynamic_yarn_below", "reference.safetensors"}};
}

std::map<std::string, at::Tensor> load_reference(const std::string& path) {
  st::SafetensorsFile f(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& info : f.tensors()) out[info.name] = tensor_from_st(info, f.data(info), path);
  return out;
}

void PrintTo(const RefCase& c, std::ostream* os) { *os << c.name << "/" << c.file; }

class HFParity : public ::testing::TestWithParam<RefCase> {};

TEST_P(HFParity, LogitsLossAndGradientsMatchTransformers) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const RefCase c = GetParam();
  const std::string dir = reference_dir(py) + "/" + c.name;
  auto ref = load_reference(dir + "/" + c.file);
  // The plain loss through the full logits, and the chunked lm_head + loss (5 rows a chunk: several
  // chunks and a remainder), each against transformers with the same limits.
  for (const int64_t chunk : {int64_t{0}, int64_t{5}})
  for (AttentionBackend backend : {AttentionBackend::reference, AttentionBackend::sdpa}) {
    SCOPED_TRACE(std::string("attention=") + attention_backend_name(backend) + ", loss chunk " + std::to_string(chunk));
    LlamaForCausalLM model = load_pretrained(dir);
    model->train();
    model->zero_grad();
    ForwardOptions fo;
    fo.attention = backend;
    at::Tensor logits;
    LossResult loss;
    if (chunk == 0) {
      logits = model->forward(ref["input_ids"], ref["position_ids"], fo);
      loss = causal_lm_loss(logits, ref["input_ids"]);
    } else {
      fo.loss_chunk_tokens = chunk;
      loss = lm_loss(model, ref["input_ids"], ref["position_ids"], ref["input_ids"], fo);
      torch::NoGradGuard ng;
      logits = model->forward(ref["input_ids"], ref["position_ids"], fo);
    }
    loss.mean.backward();
    const LlamaConfig cfg = load_config(dir);
    const ParityErrors e = expect_matches_reference(model, cfg, logits, loss.mean, ref, c.name);
    if (chunk == 0) RecordProperty(std::string("logits_rel_err_") + attention_backend_name(backend), std::to_string(e.logits));
    std::cout << "[parity] " << c.name << "/" << c.file << " " << attention_backend_name(backend) << " loss chunk " << chunk
              << ": logits " << e.logits << " (limit " << e.logit_limit << "), loss " << e.loss << " (" << e.loss_limit
              << "), worst grad " << e.worst_grad << " (" << e.grad_limit << ")\n";
  }
}

TEST_P(HFParity, Bfloat16LogitsFollowTheFloat32Reference) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  const RefCase c = GetParam();
  const std::string dir = reference_dir(py) + "/" + c.name;
  auto ref = load_reference(dir + "/" + c.file);
  LoadOptions lo;
  lo.dtype = at::kBFloat16;
  LlamaForCausalLM model = load_pretrained(dir, lo);
  torch::NoGradGuard ng;
  for (AttentionBackend backend : {AttentionBackend::reference, AttentionBackend::sdpa}) {
    ForwardOptions fo;
    fo.attention = backend;
    at::Tensor logits = model->forward(ref["input_ids"], ref["position_ids"], fo);
    EXPECT_EQ(logits.scalar_type(), at::kBFloat16);
    const double e = rel_err(logits, ref["logits"]);
    ASSERT_TRUE(ref.count("logits_bf16")) << dir << ": reference from an older make_reference.py";
    const double limit = 4 * rel_err(ref["logits_bf16"], ref["logits"]);  // see the header
    EXPECT_LE(e, limit) << c.name << " bf16 " << attention_backend_name(backend);
    std::cout << "[parity-bf16] " << c.name << " " << attention_backend_name(backend) << ": logits " << e << " (limit " << limit
              << ", transformers' bf16 " << limit / 4 << ")\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, HFParity, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) {
                           std::string n = info.param.name + "_" + info.param.file.substr(0, info.param.file.find('.'));
                           for (char& ch : n) if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(HFParityIndex, EveryReferenceCaseIsTested) {
  const std::string py = python_or_skip();
  if (py.empty()) return;
  std::ifstream in(reference_dir(py) + "/cases.json");
  nlohmann::json j = nlohmann::json::parse(in);
  size_t files = 0;
  for (const auto& [name, list] : j.items()) files += list.size();
  EXPECT_EQ(files, all_cases().size()) << "make_reference.py and all_cases() disagree";
}

}  // namespace
}  // namespace ropex::test
