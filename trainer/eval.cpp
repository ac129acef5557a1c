#include "trainer/eval.h"

#include "data/input/json.h"
#include "models/model_memory.h"

#include "data/token_store.h"
#include "models/hf_checkpoint.h"
#include "models/lm_loss.h"
#include "trainer/checkpoint.h"
#include "trainer/log.h"

#include <ATen/ops/argmax.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/log_softmax.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <sstream>

namespace ropex {
namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;


// One unit of evaluation work; run() returns a JSON object with the item's raw numbers.
struct Item {
  std::function<json()> run;
};

// Runs items i = rank, rank + world, ... with a progress line every ~20 s, gathers every rank's
// results and returns them in item order.
std::vector<json> run_items(const std::string& what, const std::vector<Item>& items, Distributed& dist) {
  json mine = json::array();
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  int64_t done = 0, mine_total = 0;
  for (size_t i = static_cast<size_t>(dist.rank()); i < items.size(); i += static_cast<size_t>(dist.world())) ++mine_total;
  for (size_t i = static_cast<size_t>(dist.rank()); i < items.size(); i += static_cast<size_t>(dist.world())) {
    mine.push_back({{"i", i}, {"r", items[i].run()}});
    ++done;
    const auto now = std::chrono::steady_clock::now();
    if (dist.is_main() && now - last > std::chrono::seconds(20) && done < mine_total) {
      last = now;
      log::info(cat(what, ": ", done, "/", mine_total, " on this rank, ",
                    std::chrono::duration_cast<std::chrono::seconds>(now - start).count(), " s"));
    }
  }
  std::vector<json> out(items.size());
  for (const std::string& s : dist.allgather_string(mine.dump())) {
    for (const json& e : json::parse(s)) out.at(e.at("i").get<size_t>()) = e.at("r");
  }
  return out;
}

at::Tensor ids_tensor(const std::vector<int32_t>& ids, const at::Device& dev) {
  std::vector<int64_t> v(ids.begin(), ids.end());
  return at::tensor(v, at::kLong).unsqueeze(0).to(dev);
}
at::Tensor positions(int64_t begin, int64_t count, const at::Device& dev) {
  return at::arange(begin, begin + count, at::TensorOptions().dtype(at::kLong).device(dev)).unsqueeze(0);
}

// Sum of NLL (float64 on the host) of tokens ids[t + 1] for t in [first, T - 1), from one forward
// pass over ids (BOS first), with logits materialised kDefaultLossChunkTokens positions at a time.
std::pair<double, int64_t> window_nll(LlamaForCausalLM& model, const std::vector<int32_t>& ids, int64_t first,
                                      const EvalOptions& o) {
  const int64_t T = static_cast<int64_t>(ids.size());
  at::Tensor input = ids_tensor(ids, o.device);
  ForwardOptions fo;
  fo.attention = o.attention;
  at::Tensor h = model->hidden_states(input, positions(0, T, o.device), fo)[0];  // [T, H]
  const at::Tensor total = nll_sum(h.slice(0, first, T - 1), model->lm_head_weight(), input[0].slice(0, first + 1, T),
                                  kDefaultLossChunkTokens);
  return {total.item<double>(), T - 1 - first};
}

// Deterministic per-prompt seed from the run seed and the prompt's coordinates.
uint64_t prompt_seed(uint64_t seed, uint64_t task, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = seed;
  for (uint64_t v : {task, a, b, c}) {
    x += 0x9e3779b97f4a7c15ULL + v;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
  }
  return x;
}

std::vector<double> depth_grid(int64_t n) {
  std::vector<double> d;
  for (int64_t i = 0; i < n; ++i) d.push_back(n == 1 ? 0.5 : static_cast<double>(i) / static_cast<double>(n - 1));
  return d;
}

std::vector<int32_t> strip_bos(std::vector<int32_t> d, int bos) {
  if (!d.empty() && d.front() == bos) d.erase(d.begin());
  return d;
}

// ---- perplexity ----

json eval_ppl(LlamaForCausalLM& model, const Tokenizer& tok, const EvalOptions& o, Distributed& dist) {
  if (o.data.empty()) throw std::runtime_error("eval: task ppl needs --data (a token store made by `ropex prepare`)");
  const TokenStore store = TokenStore::open(o.data);
  if (store.vocab_size() > model->config().vocab_size)
    throw std::runtime_error(cat(o.data, ": token store vocabulary (", store.vocab_size(), ") is larger than the model's (",
                                 model->config().vocab_size, "); was it prepared with another tokenizer?"));
  store.verify_tokens();  // ids below the vocabulary, before any window runs
  json out = {{"data", fs::absolute(o.data).string()},
              {"documents_rule", "per length, the last documents of the store with at least length - 1 tokens"},
              {"aggregation", "ppl = exp(mean over windows of each window's mean NLL), as YaRN's code; "
                              "ppl_token_weighted = exp(total NLL / scored tokens)"}};
  const int bos = tok.bos_id();
  for (const std::string& protocol : o.protocols) {
    json rows = json::array();
    for (const int64_t L : o.lengths) {
      // Documents whose text (without BOS) has at least L - 1 tokens, from the store's end back:
      // a training run with eval.every > 0 holds out the store's last eval.docs documents, so the
      // same ones come first here (which were used is recorded in the results).
      std::vector<size_t> chosen;
      for (size_t d = store.num_documents(); d-- > 0 && static_cast<int64_t>(chosen.size()) < o.docs;) {
        int32_t first = -1;
        if (store.doc_len(d) > 0) store.read(d, 0, 1, &first);  // one token, not the whole document
        const int64_t len = store.doc_len(d) - (first == bos ? 1 : 0);
        if (len >= L - 1) chosen.push_back(d);
      }
      if (chosen.empty()) {
        log::warn(cat("ppl: no document in ", o.data, " has ", L - 1, " tokens; length ", L, " skipped"));
        rows.push_back({{"length", L}, {"docs", 0}, {"windows", 0}, {"tokens", 0}, {"ppl", nullptr}, {"ppl_token_weighted", nullptr}});
        continue;
      }
      const int64_t stride = o.stride > 0 ? o.stride : std::max<int64_t>(1, std::min<int64_t>(256, L / 2));
      std::vector<Item> items;
      for (const size_t d : chosen) {
        items.push_back({[&, d, L, stride] {
          const std::vector<int32_t> doc = strip_bos(store.document(d), bos);
          json windows = json::array();
          auto score = [&](int64_t begin, int64_t end, int64_t first_new) {  // doc tokens [begin, end)
            std::vector<int32_t> ids{static_cast<int32_t>(bos)};
            ids.insert(ids.end(), doc.begin() + begin, doc.begin() + end);
            // ids[j] = doc[begin + j - 1]; predictions of ids[t + 1] for t >= first_new - begin.
            const auto [nll, n] = window_nll(model, ids, first_new - begin, o);
            windows.push_back({nll, n});
          };
          const int64_t n = static_cast<int64_t>(doc.size());
          if (protocol == "truncated") {
            score(0, L - 1, 0);
          } else {
            int64_t scored = 0;  // doc tokens [0, scored) already predicted by an earlier window
            for (int64_t begin = 0;; begin += stride) {
              const int64_t end = std::min(n, begin + L - 1);
              if (end > scored) score(begin, end, std::max(scored, begin));
              scored = end;
              if (end == n) break;
            }
          }
          return windows;
        }});
      }
      const std::vector<json> results = run_items(cat("ppl ", protocol, " L=", L), items, dist);
      double nll_total = 0, window_mean_sum = 0;
      int64_t tokens = 0, windows = 0;
      for (const json& r : results) {
        for (const json& w : r) {
          if (!w[0].is_number() || !std::isfinite(w[0].get<double>()))  // NaN travels between ranks as null
            throw std::runtime_error(cat("eval: ppl at length ", L, ": the model's loss is not finite (",
                                         input::json_excerpt(w[0]), "); are its weights finite?"));
          const double nll = w[0].get<double>();
          const int64_t n = w[1].get<int64_t>();
          if (n == 0) continue;
          nll_total += nll;
          tokens += n;
          window_mean_sum += nll / static_cast<double>(n);
          ++windows;
        }
      }
      if (protocol == o.protocols.front() && dist.is_main())
        log::info(cat("ppl L=", L, ": documents ", json(chosen).dump(), " of ", store.num_documents(), " in ", o.data,
                      " (the last ones long enough; a training run holds out its last eval.docs documents)"));
      rows.push_back({{"length", L},
                      {"docs", chosen.size()},
                      {"documents", chosen},
                      {"windows", windows},
                      {"tokens", tokens},
                      {"ppl", std::exp(window_mean_sum / static_cast<double>(windows))},
                      {"ppl_token_weighted", std::exp(nll_total / static_cast<double>(tokens))}});
    }
    json section = {{"rows", rows}};
    if (protocol == "sliding") section["stride"] = o.stride > 0 ? json(o.stride) : json("min(256, L/2)");
    out[protocol] = section;
  }
  return out;
}

// ---- retrieval ----

struct RetrievalTask {
  std::string name;  // passkey | kv
  std::function<TaskPrompt(int64_t length, double depth, Rng& rng)> build;
  std::function<bool(const std::string& continuation, const std::string& answer)> correct;
  std::function<int(const TaskPrompt&)> max_new;
};

json eval_retrieval(LlamaForCausalLM& model, const Tokenizer& tok, const RetrievalTask& task, const EvalOptions& o,
                    Distributed& dist) {
  const std::vector<double> depths = depth_grid(o.depths);
  std::vector<Item> items;
  const uint64_t task_id = task.name == "passkey" ? 1 : 2;
  for (size_t li = 0; li < o.lengths.size(); ++li) {
    for (size_t di = 0; di < depths.size(); ++di) {
      for (int64_t s = 0; s < o.samples; ++s) {
        items.push_back({[&, li, di, s] {
          Rng rng(prompt_seed(o.seed, task_id, static_cast<uint64_t>(o.lengths[li]), di, static_cast<uint64_t>(s)));
          TaskPrompt p;
          try {  // a prompt of this draw that cannot fit (near a length's limit): the sample is skipped
            p = task.build(o.lengths[li], depths[di], rng);
          } catch (const PromptDoesNotFit& e) {
            return json{{"skipped", e.what()}};
          }
          const std::string cont = tok.decode(greedy_decode(model, tok.encode(p.prompt, true, false), task.max_new(p), tok.eos_id(), o));
          return json{{"ok", task.correct(cont, p.answer)}, {"tokens", p.prompt_tokens}, {"pairs", p.pairs},
                      {"answer", p.answer}, {"output", cont}};
        }});
      }
    }
  }
  const std::vector<json> results = run_items(task.name, items, dist);
  int64_t skipped_samples = 0;
  json accuracy = json::array(), tokens = json::array(), examples = json::array(), pairs = json::array();
  json bins_acc = json::array(), bins_total = json::array();
  size_t k = 0;
  for (size_t li = 0; li < o.lengths.size(); ++li) {
    json acc_row = json::array(), tok_row = json::array();
    std::array<int64_t, 3> bin_ok{}, bin_n{};
    int64_t pairs_sum = 0;
    int64_t scored_in_length = 0;
    for (size_t di = 0; di < depths.size(); ++di) {
      int64_t ok = 0, tok_sum = 0, scored = 0;
      for (int64_t s = 0; s < o.samples; ++s, ++k) {
        const json& r = results[k];
        if (r.contains("skipped")) {
          ++skipped_samples;
          continue;
        }
        ++scored;
        ok += r.at("ok").get<bool>() ? 1 : 0;
        tok_sum += r.at("tokens").get<int64_t>();
        pairs_sum += r.at("pairs").get<int64_t>();
        if (s == 0 && di == depths.size() / 2)
          examples.push_back({{"length", o.lengths[li]}, {"depth", depths[di]}, {"answer", r.at("answer")}, {"output", r.at("output")}});
      }
      acc_row.push_back(scored ? json(static_cast<double>(ok) / static_cast<double>(scored)) : json(nullptr));
      tok_row.push_back(scored ? json(static_cast<double>(tok_sum) / static_cast<double>(scored)) : json(nullptr));
      const size_t bin = std::min<size_t>(2, 3 * di / depths.size());
      bin_ok[bin] += ok;
      bin_n[bin] += scored;
      scored_in_length += scored;
    }
    accuracy.push_back(acc_row);
    tokens.push_back(tok_row);
    pairs.push_back(scored_in_length ? json(static_cast<double>(pairs_sum) / static_cast<double>(scored_in_length)) : json(nullptr));
    json b = json::array(), t = json::array();
    for (size_t i = 0; i < 3; ++i) {
      b.push_back(bin_n[i] ? json(static_cast<double>(bin_ok[i]) / static_cast<double>(bin_n[i])) : json(nullptr));
      t.push_back(bin_n[i]);
    }
    bins_acc.push_back(b);
    bins_total.push_back(t);
  }
  json out = {{"lengths", o.lengths}, {"depths", depths}, {"samples", o.samples}, {"accuracy", accuracy},
              {"prompt_tokens", tokens}, {"examples", examples}, {"skipped_samples", skipped_samples}};
  if (skipped_samples > 0 && dist.is_main())
    log::warn(cat("eval: ", task.name, ": ", skipped_samples, " prompt(s) did not fit their length and were not scored"));
  if (task.name == "kv") {
    out["ids"] = kv_id_format_name(o.kv_ids);
    out["pairs"] = pairs;
    out["bins"] = {"start", "middle", "end"};
    out["bin_rule"] = "thirds of the position grid: start = first third of the positions (0 first), end = last third";
    out["by_position"] = accuracy;
    out["accuracy"] = bins_acc;
    out["total"] = bins_total;
  }
  return out;
}

std::string fmt(double x, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << x;
  return os.str();
}
std::string pct(const json& x) { return x.is_null() ? "–" : fmt(100.0 * x.get<double>(), 0) + "%"; }

}  // namespace

std::vector<int32_t> greedy_decode(LlamaForCausalLM& model, const std::vector<int32_t>& prompt_ids, int max_new, int eos_id,
                                   const EvalOptions& o) {
  c10::NoGradGuard no_grad;
  KVCache cache;
  ForwardOptions fo;
  fo.attention = o.attention;
  fo.cache = &cache;
  at::Tensor w = model->lm_head_weight();
  const int64_t T = static_cast<int64_t>(prompt_ids.size());
  at::Tensor h = model->hidden_states(ids_tensor(prompt_ids, o.device), positions(0, T, o.device), fo);
  std::vector<int32_t> out;
  for (int step = 0; step < max_new; ++step) {
    const at::Tensor logits = at::linear(h[0][-1], w).to(at::kFloat);
    // argmax over NaN logits still names a token: an answer would be scored as if the model gave it.
    if (step == 0 && !at::isfinite(logits).all().item<bool>())
      throw std::runtime_error("eval: the model's logits are not finite (NaN or infinite); are its weights finite?");
    const int32_t next = static_cast<int32_t>(at::argmax(logits).item<int64_t>());
    if (next == eos_id) break;
    out.push_back(next);
    if (step + 1 == max_new) break;
    h = model->hidden_states(ids_tensor({next}, o.device), positions(T + step, 1, o.device), fo);
  }
  return out;
}

int64_t pretrained_window(const LlamaConfig& cfg) {
  const RopeScaling& r = cfg.rope;
  if (r.type == "default") return cfg.max_position_embeddings;
  if (r.original_max_position_embeddings > 0) return r.original_max_position_embeddings;
  return static_cast<int64_t>(std::llround(static_cast<double>(cfg.max_position_embeddings) / std::max(1.0, r.factor)));
}

std::vector<int64_t> default_eval_lengths(int64_t pretrained, int64_t max_pos) {
  std::vector<int64_t> out;
  const int64_t top = std::max(max_pos, 4 * pretrained);
  for (int64_t L = std::max<int64_t>(16, pretrained / 2); L <= top; L *= 2) out.push_back(L);
  if (out.empty() || out.back() != top) out.push_back(top);
  return out;
}

// The lengths at which `task` builds a prompt (tried at the first and the last depth with the
// first sample's seed); each other one is left out with the builder's reason in *skipped.
std::vector<int64_t> fitting_lengths(const RetrievalTask& task, const EvalOptions& o, json* skipped) {
  std::vector<int64_t> out;
  const uint64_t task_id = task.name == "passkey" ? 1 : 2;
  const std::vector<double> depths = depth_grid(o.depths);
  for (const int64_t L : o.lengths) {
    std::string why;
    for (const size_t di : {size_t{0}, depths.size() - 1}) {
      Rng rng(prompt_seed(o.seed, task_id, static_cast<uint64_t>(L), di, 0));
      try {
        task.build(L, depths[di], rng);
      } catch (const PromptDoesNotFit& e) {
        why = e.what();
        break;
      }
    }
    if (why.empty()) out.push_back(L);
    else skipped->push_back({{"length", L}, {"reason", why}});
  }
  return out;
}

// A length is refused before any prompt is built when one sequence of it cannot fit in host memory:
// its token ids (int64) and text, and on a CPU device two hidden-size activations per token. That is
// a lower bound of what a forward pass holds, so a refusal is certain; a length that passes may
// still fail later, with LibTorch's out-of-memory error, on a small device.
static void require_lengths_fit(const EvalOptions& o, const LlamaConfig& cfg) {
  const std::optional<int64_t> available = host_available_bytes();
  double per_token = 8 + 8;
  if (o.device.is_cpu()) per_token += 2.0 * double(cfg.hidden_size) * double(c10::elementSize(o.dtype));
  for (const int64_t L : o.lengths) {
    if (L > kMaxPositions)
      throw std::runtime_error(cat("eval: --lengths: ", L, " is beyond the ", kMaxPositions, " positions ropex handles"));
    if (available && double(L) * per_token > double(*available))
      throw std::runtime_error(cat("eval: --lengths: one sequence of ", L, " tokens needs at least ",
                                   double(L) * per_token / double(int64_t{1} << 30), " GiB of memory (ids, text",
                                   o.device.is_cpu() ? ", two activations of the model's hidden size" : "",
                                   " per token); this machine has ", double(*available) / double(int64_t{1} << 30),
                                   " GiB available"));
  }
}

json run_eval(const EvalOptions& o, Distributed& dist, const std::function<void(const json&)>& on_task) {
  c10::NoGradGuard no_grad;
  LoadOptions lo;
  lo.device = o.device;
  lo.dtype = o.dtype;
  LlamaForCausalLM model = load_model_or_checkpoint(o.model_dir, lo);
  model->eval();
  const Tokenizer tok = load_model_tokenizer(o.model_dir, o.tokenizer_path, model->config().vocab_size);
  const LlamaConfig& cfg = model->config();
  EvalOptions opt = o;
  if (opt.pretrained_len <= 0) opt.pretrained_len = pretrained_window(cfg);
  if (opt.lengths.empty()) opt.lengths = default_eval_lengths(opt.pretrained_len, cfg.max_position_embeddings);
  require_lengths_fit(opt, cfg);
  const std::string label = o.label.empty() ? fs::path(o.model_dir).lexically_normal().filename().string() : o.label;

  json results = {{"ropex_eval", 1},
                  {"label", label},
                  {"model", fs::absolute(o.model_dir).lexically_normal().string()},
                  {"rope", describe_rope(cfg.rope, cfg.rope_theta)},
                  {"pretrained_len", opt.pretrained_len},
                  {"max_position_embeddings", cfg.max_position_embeddings},
                  {"lengths", opt.lengths},
                  {"seed", o.seed},
                  {"dtype", dtype_name(o.dtype)},
                  {"device", o.device.str()},
                  {"world_size", dist.world()}};
  const RetrievalTask passkey{"passkey", [&](int64_t L, double d, Rng& rng) { return passkey_prompt(tok, L, d, rng); },
                              passkey_correct, [](const TaskPrompt&) { return 10; }};
  const RetrievalTask kv{"kv", [&](int64_t L, double d, Rng& rng) { return kv_prompt(tok, L, d, opt.kv_ids, rng); },
                         kv_correct, [&](const TaskPrompt& p) {
                           return static_cast<int>(tok.encode(" \"" + p.answer + "\"", false, false).size()) + 2;
                         }};
  // What fits is settled before anything runs: a retrieval task runs at the lengths where its
  // prompt can be built; the others are skipped with a warning (and recorded).
  std::map<std::string, std::vector<int64_t>> task_lengths;
  std::map<std::string, json> task_skipped;
  std::string nothing_fits;
  for (const std::string& t : o.tasks) {
    if (t != "passkey" && t != "kv") continue;
    json skipped = json::array();
    task_lengths[t] = fitting_lengths(t == "passkey" ? passkey : kv, opt, &skipped);
    task_skipped[t] = skipped;
    for (const json& s : skipped)
      if (dist.is_main())
        log::warn(cat("eval: ", t, " at length ", s["length"].get<int64_t>(), " skipped: ", s["reason"].get<std::string>(),
                      t == "kv" ? cat(" (--kv-ids ", kv_id_format_name(opt.kv_ids), "; shorter ids fit more pairs, e.g. --kv-ids hex:4)")
                                : std::string()));
    if (task_lengths[t].empty()) nothing_fits += cat("\n  ", t, ": ", skipped.front()["reason"].get<std::string>());
  }
  if (std::all_of(o.tasks.begin(), o.tasks.end(), [&](const std::string& t) {
        return task_lengths.count(t) && task_lengths[t].empty();
      }))
    throw std::runtime_error("eval: no task fits at lengths " + json(opt.lengths).dump() + ":" + nothing_fits +
                             "\nask for longer --lengths (or shorter --kv-ids)");
  for (const std::string& t : o.tasks) {
    const auto start = std::chrono::steady_clock::now();
    EvalOptions task_opt = opt;
    if (task_lengths.count(t)) task_opt.lengths = task_lengths[t];
    if (task_opt.lengths.empty()) {
      results["skipped"][t] = task_skipped[t];
      continue;
    }
    if (dist.is_main()) log::info(cat("eval ", label, ": ", t, " at lengths ", json(task_opt.lengths).dump()));
    if (t == "ppl") {
      results["ppl"] = eval_ppl(model, tok, task_opt, dist);
    } else if (t == "passkey" || t == "kv") {
      results[t] = eval_retrieval(model, tok, t == "passkey" ? passkey : kv, task_opt, dist);
      if (!task_skipped[t].empty()) results["skipped"][t] = task_skipped[t];
    } else {
      throw std::invalid_argument("eval: unknown task '" + t + "' (expected ppl, passkey or kv)");
    }
    results["seconds"][t] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (on_task) on_task(results);
  }
  return results;
}

std::string eval_markdown(const json& r) {
  std::ostringstream os;
  os << "## " << r.at("label").get<std::string>() << "\n\n"
     << "- model: `" << r.at("model").get<std::string>() << "`\n- rope: " << r.at("rope").get<std::string>()
     << "\n- pre-trained window: " << r.at("pretrained_len") << ", max_position_embeddings: "
     << r.at("max_position_embeddings") << "\n\n";
  if (r.contains("skipped")) {
    for (const auto& [task, cells] : r.at("skipped").items())
      for (const json& c : cells)
        os << "- " << task << " at length " << c.at("length") << " skipped (does not fit): " << c.at("reason").get<std::string>()
           << "\n";
    os << "\n";
  }
  if (r.contains("ppl")) {
    const json& p = r.at("ppl");
    os << "### Perplexity by length\n\nData: `" << p.at("data").get<std::string>() << "`. " << p.at("aggregation").get<std::string>()
       << ".\n\n";
    for (const char* proto : {"truncated", "sliding"}) {
      if (!p.contains(proto)) continue;
      os << "**" << proto << "**" << (p.at(proto).contains("stride") ? " (stride " + p.at(proto).at("stride").dump() + ")" : "")
         << "\n\n| length | docs | windows | tokens | ppl | ppl (token-weighted) |\n|---:|---:|---:|---:|---:|---:|\n";
      for (const json& row : p.at(proto).at("rows")) {
        auto num = [&](const char* k) { return row.at(k).is_null() ? std::string("–") : fmt(row.at(k).get<double>(), 2); };
        os << "| " << row.at("length") << " | " << row.at("docs") << " | " << row.at("windows") << " | " << row.at("tokens")
           << " | " << num("ppl") << " | " << num("ppl_token_weighted") << " |\n";
      }
      os << "\n";
    }
  }
  if (r.contains("passkey")) {
    const json& p = r.at("passkey");
    os << "### Passkey retrieval (" << p.at("samples") << " keys per cell, greedy decoding)\n\n| length \\ depth |";
    for (const json& d : p.at("depths")) os << " " << fmt(100.0 * d.get<double>(), 0) << "% |";
    os << " mean |\n|---:|";
    for (size_t i = 0; i <= p.at("depths").size(); ++i) os << "---:|";
    os << "\n";
    for (size_t li = 0; li < p.at("lengths").size(); ++li) {
      os << "| " << p.at("lengths")[li] << " |";
      double sum = 0;
      int cells = 0;
      for (const json& a : p.at("accuracy")[li]) {
        os << " " << pct(a) << " |";
        if (a.is_null()) continue;  // no prompt of that cell fitted
        sum += a.get<double>();
        ++cells;
      }
      os << " " << (cells ? fmt(100.0 * sum / cells, 0) + "%" : std::string("–")) << " |\n";
    }
    os << "\n";
  }
  if (r.contains("kv")) {
    const json& k = r.at("kv");
    os << "### Key-value retrieval by position of the asked key (ids: " << k.at("ids").get<std::string>() << ", "
       << k.at("samples") << " prompts per position)\n\n| length | pairs | start | middle | end |\n|---:|---:|---:|---:|---:|\n";
    for (size_t li = 0; li < k.at("lengths").size(); ++li) {
      os << "| " << k.at("lengths")[li] << " | " << (k.at("pairs")[li].is_null() ? std::string("–") : fmt(k.at("pairs")[li].get<double>(), 1))
         << " |";
      for (const json& a : k.at("accuracy")[li]) os << " " << pct(a) << " |";
      os << "\n";
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace ropex
