// Fuzz target: a Hugging Face config.json as models/llama_config.h reads it (load_config: both
// transformers 4.x rope_scaling and 5.x rope_parameters layouts), then what ropex does next with an
// accepted config: validate() it, describe its rope scaling and write it back (config_to_json in
// each layout). The input is the file's bytes. Rejections (std::exception) are fine.
#include "models/llama_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = ropex_fuzz::Scratch::get().write("config.json", {reinterpret_cast<const char*>(data), size});
  ropex_fuzz::guard([&] {
    const ropex::LlamaConfig cfg = ropex::load_config(path.string());
    (void)ropex::describe_rope(cfg.rope, cfg.rope_theta);
    cfg.validate("config.json");
    (void)cfg.resolved_head_dim();
    ropex::ConfigWriteOptions opts;
    opts.allow_ropex_types = true;
    (void)ropex::config_to_json(cfg, opts).dump();
    opts.allow_ropex_types = false;
    opts.with_rope_parameters = false;
    (void)ropex::config_to_json(cfg, opts).dump();
  });
  return 0;
}
