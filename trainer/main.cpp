// ropex: extend the context window of Llama models. This file only dispatches to subcommands
// (trainer/commands.h) and turns exceptions into readable messages and exit codes.
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/cuda_allocator.h"
#include "trainer/log.h"

#include <c10/util/Exception.h>
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <map>

namespace {
struct Command {
  std::function<int(const ropex::Args&)> run;
  const char* summary;
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"prepare", {ropex::cmd_prepare, "tokenize .jsonl/.txt (also .gz/.zst) and .parquet corpora, or store pre-tokenized ids, for training"}},
      {"train", {ropex::cmd_train, "fine-tune to a longer context from a JSON run config (resumable, distributed)"}},
      {"export", {ropex::cmd_export, "write a Hugging Face directory from a training checkpoint"}},
      {"verify-checkpoint", {ropex::cmd_verify_checkpoint, "check a training checkpoint's files against its manifest"}},
      {"config-docs", {ropex::cmd_config_docs, "print every run-config key with its default (markdown)"}},
      {"train-tokenizer", {ropex::cmd_train_tokenizer, "train a SentencePiece tokenizer (Llama conventions)"}},
      {"new-model", {ropex::cmd_new_model, "write a randomly initialised Llama as an HF directory"}},
      {"bench", {ropex::cmd_bench, "time the training step (tokens/s, MFU, peak memory) on random data"}},
      {"device-check", {ropex::cmd_device_check, "the GPU check's C++ stages: env, float32 parity of the fast paths, logits, SDPA backends"}},
      {"plan", {ropex::cmd_plan, "per-rank memory, tokens and FLOPs per step of a run config, and whether it fits the GPUs"}},
      {"plot-run", {ropex::cmd_plot_run, "draw a training run's loss, eval loss, learning rate and gradient norm (run.png)"}},
      {"eval", {ropex::cmd_eval, "perplexity by length, passkey and key-value retrieval, with tables and pictures"}},
      {"make-tasks", {ropex::cmd_make_tasks, "write passkey / key-value retrieval examples as training documents"}},
      {"tokenize", {ropex::cmd_tokenize, "a text's ids under a tokenizer.json or SentencePiece model (or --decode ids)"}},
      {"score", {ropex::cmd_score, "mean next-token NLL and perplexity of a text under a model"}},
      {"inspect", {ropex::cmd_inspect, "show a model (inspect model), its rope frequencies (inspect rope) "
                                       "or a position sampler's plans (inspect positions)"}},
  };
  return table;
}

void print_usage(std::ostream& os) {
  os << "usage: ropex COMMAND [options]   (ropex COMMAND --help for a command's options)\n\ncommands:\n";
  for (const auto& [name, c] : commands()) os << "  " << name << std::string(name.size() < 16 ? 16 - name.size() : 1, ' ') << c.summary << "\n";
}
}  // namespace

int main(int argc, char** argv) {
  // glibc raises its mmap threshold to the size of any large block freed (up to 32 MiB), after which
  // tensors up to that size come from the heap, whose freed memory is rarely given back: a training
  // rank then holds a few hundred MB more than it uses. A fixed threshold (which also stops the
  // raising) returns every block of 4 MiB or more to the system when freed. Measured on the 106M-
  // parameter job of bench/checkpoint_memory.sh: peak RSS 2.41-2.50 -> 2.16 GiB per rank, steps
  // about 4% slower. MALLOC_MMAP_THRESHOLD_ in the environment wins.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 4 << 20);
  ropex::choose_cuda_allocator_settings();  // before any CUDA allocation (trainer/cuda_allocator.h)
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto it = commands().find(name);
  if (it == commands().end()) {
    std::vector<std::string> names;
    for (const auto& [n, _] : commands()) names.push_back(n);
    std::cerr << "ropex: unknown command '" << name << "' (did you mean '" << ropex::nearest(name, names) << "'?)\n";
    print_usage(std::cerr);
    return 2;
  }
  try {
    return it->second.run(ropex::Args(argv + 2, argv + argc));
  } catch (const ropex::HelpRequested& h) {
    std::cout << h.text;
    return 0;
  } catch (const ropex::UsageError& e) {
    std::cerr << "ropex " << e.what() << "\n(see: ropex " << name << " --help)\n";
    return 2;
  } catch (const std::bad_alloc&) {  // an allocation no check foresaw: say so in words
    ropex::log::error("ropex " + name + " ran out of memory: a size, count or length in its input or flags asks for more "
                      "memory than this machine has");
    return 1;
  } catch (const c10::Error& e) {  // TORCH_CHECK failures: the message without the C++ backtrace
    ropex::log::error(e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    ropex::log::error(e.what());
    return 1;
  }
}
