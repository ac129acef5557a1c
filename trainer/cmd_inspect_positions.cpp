// ropex inspect positions: what a position sampler emits. Prints S sampled plans (token_index,
// position_id) and a coverage summary (how often each region of [0, L) and each relative
// distance is seen), so a user can check a sampler's settings before training with them.
#include "data/input/json.h"
#include "data/positions.h"
#include "data/rng.h"
#include "trainer/cli.h"
#include "trainer/commands.h"

#include <iostream>

namespace ropex {
namespace {
// "key=value" (key optionally prefixed "sampler.") into the options' JSON; the value is JSON if it
// parses, else a bare string.
void apply_set(nlohmann::json& opts, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("inspect positions: --set expects key=value, got '" + assignment + "'");
  std::string key = assignment.substr(0, eq);
  if (key.rfind("sampler.", 0) == 0) key = key.substr(8);
  const std::string text = assignment.substr(eq + 1);
  try {
    opts[key] = input::parse_json_or_text(text, "inspect positions: --set " + assignment);
  } catch (const input::JsonInputError& e) {
    throw UsageError(e.what());
  }
}

// Runs of consecutive (token, position) steps: "tok 0-1364 @ pos 0-1364 | tok ... @ ...".
std::string describe_plan(const PositionPlan& p) {
  std::string out;
  size_t start = 0;
  for (size_t i = 1; i <= p.position_id.size(); ++i) {
    const bool breaks = i == p.position_id.size() || p.position_id[i] != p.position_id[i - 1] + 1 ||
                        p.token_index[i] != p.token_index[i - 1] + 1;
    if (!breaks) continue;
    out += (out.empty() ? "" : " | ") + std::string("tok ") + std::to_string(p.token_index[start]) + "-" +
           std::to_string(p.token_index[i - 1]) + " @ pos " + std::to_string(p.position_id[start]) + "-" +
           std::to_string(p.position_id[i - 1]);
    start = i;
  }
  return out;
}
}  // namespace

int cmd_inspect_positions(const Args& argv) {
  ArgParser args("inspect positions",
                 "Samples S position plans from a sampler and prints them with a coverage summary.\n"
                 "Sampler keys for --set: see configs/README.md (e.g. pose_chunks=3, cream_mode=per_sample,\n"
                 "cream_sigma=2.5, cream_continuity_len=16, cream_mu=9).");
  args.option("sampler", "NAME", "contiguous | randpos | pose | cream")
      .option("train-len", "N", "tokens per training window")
      .option("target-len", "L", "target context length (position ids < L)")
      .option("set", "KEY=VALUE", "a sampler option", std::nullopt, /*repeatable=*/true)
      .option("samples", "S", "plans to draw", "10")
      .option("seed", "X", "random seed", "0")
      .option("doc-len", "D", "document length in tokens (default: max(L, the sampler's minimum))")
      .option("print", "K", "print at most K plans (all are counted in the summary)", "10")
      .flag("jsonl", "one JSON object per plan, then one with the coverage summary");
  args.parse(argv);
  nlohmann::json j = {{"name", args.get("sampler")}, {"train_len", args.get_int("train-len")},
                      {"target_len", args.get_int("target-len")}};
  for (const auto& s : args.get_all("set")) apply_set(j, s);
  SamplerOptions opts = sampler_options_from_json(j, "inspect positions");
  auto sampler = make_sampler(opts);
  const int64_t samples = args.get_int("samples"), print = args.get_int("print");
  if (samples < 1) throw UsageError("inspect positions: --samples must be >= 1");
  const int64_t doc_len = args.has("doc-len") ? args.get_int("doc-len") : std::max(opts.target_len, sampler->min_doc_len());
  Rng rng(static_cast<uint64_t>(args.get_int("seed")));
  CoverageSummary coverage;
  const bool jsonl = args.flag_set("jsonl");
  for (int64_t i = 0; i < samples; ++i) {
    PositionPlan plan = sampler->sample(doc_len, rng);
    accumulate_coverage(coverage, plan, opts.target_len);
    if (i >= print) continue;
    if (jsonl) {
      nlohmann::json line = {{"sample", i}, {"doc_len", doc_len}, {"token_index", plan.token_index},
                             {"position_id", plan.position_id}};
      if (nlohmann::json draw = sampler->last_draw(); !draw.is_null()) line["draw"] = draw;
      std::cout << line.dump() << "\n";
    } else {
      std::cout << "plan " << i << ": " << describe_plan(plan) << "\n";
    }
  }
  if (jsonl) {
    std::cout << nlohmann::json{{"coverage", coverage_to_json(coverage)}, {"options", sampler_options_to_json(opts)}}.dump() << std::endl;
  } else {
    std::cout << "\n" << coverage_to_text(coverage) << std::flush;
  }
  return 0;
}
}  // namespace ropex
