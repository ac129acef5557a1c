// The ropex subcommands, one function each; trainer/main.cpp dispatches to them.
// Each takes the arguments after its name and returns the process exit code; bad input throws
// (UsageError for the command line, std::exception with file/key context for everything else).
#pragma once
#include <string>
#include <vector>

namespace ropex {
using Args = std::vector<std::string>;
int cmd_score(const Args& args);
int cmd_prepare(const Args& args);  // tokenize a corpus into a token store
int cmd_inspect(const Args& args);  // inspect model | rope | positions
int cmd_train(const Args& args);
int cmd_export(const Args& args);
int cmd_verify_checkpoint(const Args& args);
int cmd_config_docs(const Args& args);
int cmd_train_tokenizer(const Args& args);
int cmd_new_model(const Args& args);
int cmd_eval(const Args& args);        // perplexity by length, passkey, kv retrieval
int cmd_make_tasks(const Args& args);  // retrieval examples as training documents
int cmd_bench(const Args& args);       // training-step throughput, memory, MFU
int cmd_plan(const Args& args);        // per-rank memory and step cost of a run config
int cmd_device_check(const Args& args);  // the C++ stages of the GPU check
int cmd_tokenize(const Args& args);      // a text's ids under a tokenizer, or ids' text
int cmd_plot_run(const Args& args);      // the picture of a training run
}  // namespace ropex
