// ropex device-check: the C++ stages of the GPU check (trainer/device_check.h), one JSON line each.
// bench/gpu_check.py runs them; ./run.sh gpu-check runs that.
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/device.h"
#include "trainer/device_check.h"

#include "models/llama.h"

#include <iostream>

namespace ropex {

int cmd_device_check(const Args& argv) {
  ArgParser args("device-check",
                 "The C++ stages of the GPU check (./run.sh gpu-check), each printing one JSON line:\n"
                 "  env     what this binary sees (CUDA, cuDNN, NCCL, the allocator's settings, the SDPA order)\n"
                 "  parity  one float32 training step, the plain path on the CPU against the fast paths on --device\n"
                 "  logits  a model directory's logits and loss for --input's input_ids, written to --output\n"
                 "  sdpa    the SDPA backend chosen for the trained attention shapes, and each backend timed");
  args.positional("check", "env | parity | logits | sdpa")
      .option("device", "cpu|cuda", "where to run", "cuda")
      .option("seed", "N", "parity: weights and tokens", "0")
      .option("model", "DIR", "logits: a Hugging Face Llama directory")
      .option("input", "FILE", "logits: a safetensors file with input_ids [batch, seq]")
      .option("output", "FILE", "logits: the safetensors file to write (logits, loss)")
      .option("dtype", "bfloat16|float32", "logits: compute dtype", "bfloat16")
      .option("repeats", "N", "sdpa: timed forward+backward passes per backend", "10")
      .flag("json", "(accepted for symmetry: the output is always one JSON line)");
  args.parse(argv);
  const std::string check = args.get("check");
  const at::Device device = parse_device(args.get("device"));
  nlohmann::json out;
  if (check == "env") {
    out = device_check_env(device);
  } else if (check == "parity") {
    const int64_t seed = args.get_int("seed");
    if (seed < 0) throw UsageError("device-check parity: --seed must be >= 0");
    out = device_check_parity(device, static_cast<uint64_t>(seed));
  } else if (check == "logits") {
    for (const char* o : {"model", "input", "output"})
      if (!args.has(o)) throw UsageError(std::string("device-check logits: --") + o + " is required");
    out = device_check_logits(args.get("model"), args.get("input"), args.get("output"), device,
                              parse_dtype_name(args.get("dtype")));
  } else if (check == "sdpa") {
    const int64_t repeats = args.get_int("repeats");
    if (repeats < 1 || repeats > 1000) throw UsageError("device-check sdpa: --repeats must be in [1, 1000]");
    out = device_check_sdpa(device, repeats);
  } else {
    throw UsageError("device-check: unknown check '" + check + "' (expected env, parity, logits or sdpa)");
  }
  std::cout << out.dump() << std::endl;
  return out.value("pass", true) ? 0 : 1;
}

}  // namespace ropex
