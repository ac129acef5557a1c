// ropex inspect model | rope | positions: what a model is, what its rope scaling computes, and what a
// position sampler emits. Reads config.json only (no weights) for model and rope.
#include "data/input/json.h"
#include "models/llama_config.h"
#include "models/rope.h"
#include "trainer/cli.h"
#include "trainer/commands.h"

#include <filesystem>
#include <iomanip>
#include <iostream>

namespace ropex {
int cmd_inspect_positions(const Args& argv);  // trainer/cmd_inspect_positions.cpp

namespace {
int inspect_model(const Args& argv) {
  ArgParser args("inspect model", "Shape summary, parameter count and rope configuration of a Hugging Face Llama directory.");
  args.option("model", "DIR", "Hugging Face Llama directory (config.json is read)").flag("json", "print one JSON object");
  args.parse(argv);
  LlamaConfig c = load_config(args.get("model"));
  const int64_t params = parameter_count(c);
  // ropex's own rope types (ntk, dynamic-yarn) are shown as they are: nothing is exported here.
  nlohmann::json j = config_to_json(c, {.allow_ropex_types = true});
  j["parameters"] = params;
  j["head_dim"] = c.resolved_head_dim();
  j["rope"] = describe_rope(c.rope, c.rope_theta);
  if (args.flag_set("json")) {
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::cout << "model        " << args.get("model") << "\n"
            << "parameters   " << params << " (" << std::fixed << std::setprecision(2) << params / 1e6 << "M)\n"
            << "layers       " << c.num_hidden_layers << "\n"
            << "hidden       " << c.hidden_size << "  intermediate " << c.intermediate_size << "\n"
            << "heads        " << c.num_attention_heads << " query, " << c.num_key_value_heads << " key/value"
            << (c.num_key_value_heads < c.num_attention_heads ? " (GQA)" : "") << ", head_dim " << c.resolved_head_dim()
            << (c.head_dim_explicit ? " (explicit)" : "") << "\n"
            << "vocab        " << c.vocab_size << (c.tie_word_embeddings ? " (tied embeddings)" : "") << "\n"
            << "biases       attention " << (c.attention_bias ? "yes" : "no") << ", mlp " << (c.mlp_bias ? "yes" : "no") << "\n"
            << "max_position " << c.max_position_embeddings << "\n"
            << "rope         " << describe_rope(c.rope, c.rope_theta) << "\n"
            << "dtype        " << c.torch_dtype << "\n";
  return 0;
}

int inspect_rope(const Args& argv) {
  ArgParser args("inspect rope", "Resolved rope scaling, inv_freq and attention factor of a model (config.json only).");
  args.option("model", "DIR", "Hugging Face Llama directory (config.json is read)")
      .option("rope-scaling", "JSON", "an HF rope_scaling object ('rope_type' or 'type' form) replacing the model's")
      .option("max-position-embeddings", "N", "replace max_position_embeddings (e.g. the target length)")
      .option("seq-len", "L", "runtime length for the dynamic types (default: init-time frequencies)", "0")
      .flag("json", "print one JSON object with inv_freq and attention_factor");
  args.parse(argv);
  const std::string dir = args.get("model");
  LlamaConfig c = load_config(dir);
  if (args.has("max-position-embeddings")) c.max_position_embeddings = args.get_int("max-position-embeddings");
  if (args.has("rope-scaling")) {
    nlohmann::json j;
    try {
      j = input::parse_json(args.get("rope-scaling"), "inspect rope: --rope-scaling");
    } catch (const input::JsonInputError& e) {
      throw UsageError(e.what());
    }
    if (j.is_object() && j.contains("rope_theta")) {
      if (!j["rope_theta"].is_number())
        throw UsageError("inspect rope: --rope-scaling: key 'rope_theta' expects a number, got " + input::json_excerpt(j["rope_theta"]));
      c.rope_theta = j["rope_theta"].get<double>();
    }
    // original_max_position_embeddings defaults to the config's max_position_embeddings, as
    // transformers fills it in.
    c.rope = j.is_null() ? RopeScaling{} : rope_scaling_from_json(j, "--rope-scaling", c.max_position_embeddings);
  }
  c.validate(dir);
  const auto values = [](const RopeParams& p) {
    return std::vector<double>(p.inv_freq.data_ptr<float>(), p.inv_freq.data_ptr<float>() + p.inv_freq.numel());
  };
  RopeParams p = compute_rope_params(c, args.get_int("seq-len"));
  std::vector<double> inv = values(p);
  // longrope has two frequency sets: short factors up to original_max_position_embeddings, long beyond.
  const bool longrope = c.rope.type == "longrope";
  std::vector<double> inv_short, inv_long;
  if (longrope) {
    inv_short = values(compute_rope_params(c, 0));
    inv_long = values(compute_rope_params(c, c.rope.original_max_position_embeddings + 1));
  }
  if (args.flag_set("json")) {
    nlohmann::json out = {{"rope_type", c.rope.type}, {"rope_theta", c.rope_theta}, {"head_dim", c.resolved_head_dim()},
                          {"rope_scaling", c.rope.is_default() ? nlohmann::json(nullptr) : rope_scaling_to_json(c.rope)},
                          {"attention_factor", p.attention_factor}, {"inv_freq", inv}};
    if (longrope) {
      out["inv_freq_short"] = inv_short;  // sequences up to original_max_position_embeddings
      out["inv_freq_long"] = inv_long;    // longer sequences
      out["original_max_position_embeddings"] = c.rope.original_max_position_embeddings;
    }
    std::cout << out.dump() << std::endl;
    return 0;
  }
  std::cout << "rope             " << describe_rope(c.rope, c.rope_theta) << "\n"
            << "attention_factor " << std::setprecision(9) << p.attention_factor
            << " (cos and sin are multiplied by it; attention logits by its square)\n";
  const auto table = [](const char* title, const std::vector<double>& v) {
    std::cout << title << v.size() << " pairs (i, inv_freq, wavelength in positions)\n";
    for (size_t i = 0; i < v.size(); ++i)
      std::cout << "  " << std::setw(4) << i << "  " << std::scientific << std::setprecision(9) << v[i] << "  " << std::fixed
                << std::setprecision(1) << 2 * M_PI / v[i] << "\n";
  };
  if (!longrope) {
    table("inv_freq         ", inv);
    return 0;
  }
  const int64_t original = c.rope.original_max_position_embeddings;
  std::cout << "longrope         short factors up to length " << original << ", long factors beyond (seq-len "
            << args.get_int("seq-len") << " uses the " << (args.get_int("seq-len") > original ? "long" : "short") << " set)\n";
  table("inv_freq short   ", inv_short);
  table("inv_freq long    ", inv_long);
  return 0;
}
}  // namespace

int cmd_inspect(const Args& argv) {
  const std::string usage =
      "usage: ropex inspect model|rope|positions [options]\n\n"
      "  model      shape summary, parameter count, rope config of an HF directory\n"
      "  rope       resolved rope scaling, inv_freq and attention factor\n"
      "  positions  sampled (token_index, position_id) plans of a sampler, with coverage\n";
  if (argv.empty()) throw UsageError("inspect: expected model, rope or positions");
  const Args rest(argv.begin() + 1, argv.end());
  if (argv[0] == "model") return inspect_model(rest);
  if (argv[0] == "rope") return inspect_rope(rest);
  if (argv[0] == "positions") return cmd_inspect_positions(rest);
  if (argv[0] == "--help" || argv[0] == "-h") throw HelpRequested{usage};
  throw UsageError("inspect: expected model, rope or positions, got '" + argv[0] + "' (did you mean '" + nearest(argv[0], {"model", "rope", "positions"}) + "'?)");
}
}  // namespace ropex
