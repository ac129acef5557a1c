// ropex prepare: tokenizes corpus files (.jsonl, .txt, plain or .gz/.zst, .parquet; or stores
// pre-tokenized ids) into a token store for training (data/prepare.h)
// and prints the corpus statistics table on stdout. Only the command line lives here.
// int cmd_prepare(const Args&) is declared in trainer/commands.h.
#include <iostream>
#include <sstream>
#include <tuple>

#include "data/prepare.h"
#include "trainer/cli.h"
#include "trainer/commands.h"
#include "trainer/log.h"

namespace ropex {
namespace {

// Turns a parse_* error on an option's value into a usage error.
template <class Parse>
auto parse_choice(Parse parse, const ArgParser& args, const std::string& name) {
  try {
    return parse(args.get(name));
  } catch (const std::runtime_error& e) {
    throw UsageError("prepare: --" + name + ": " + e.what());
  }
}

PrepareOptions options_from(const ArgParser& args) {
  PrepareOptions o;
  o.tokenizer_path = args.get("tokenizer");
  o.inputs = args.get_all("input");
  if (o.inputs.empty()) throw UsageError("prepare: missing required option '--input'");
  o.output_dir = args.get("output");
  o.text_field = args.get("text-field");
  if (args.has("ids-field")) {
    o.ids_field = args.get("ids-field");
    if (o.ids_field.empty()) throw UsageError("prepare: --ids-field needs a field or column name");
  }
  o.on_error = parse_choice(parse_on_error, args, "on-error");
  o.txt_split = parse_choice(parse_txt_split, args, "txt-split");
  o.threads = static_cast<int>(args.get_int("threads"));
  if (o.threads < 0 || o.threads > 1024) throw UsageError("prepare: --threads must be in [0, 1024]");
  // Unset: BOS/EOS around text, none around pre-tokenized ids (data/prepare.h).
  for (const auto& [on, off, field] : {std::tuple{"add-bos", "no-bos", &o.add_bos}, std::tuple{"add-eos", "no-eos", &o.add_eos}}) {
    if (args.flag_set(on) && args.flag_set(off)) throw UsageError(cat("prepare: --", on, " and --", off, " contradict each other"));
    if (args.flag_set(on)) *field = true;
    if (args.flag_set(off)) *field = false;
  }
  o.overwrite = args.flag_set("overwrite");
  if (args.has("windows")) o.windows = parse_positive_list(args.get("windows"), "prepare: --windows");
  o.chunk_tokens = args.get_int("chunk");
  if (o.chunk_tokens < 0) throw UsageError("prepare: --chunk must be >= 0 (0 = keep documents whole), got " + args.get("chunk"));
  return o;
}

}  // namespace

int cmd_prepare(const std::vector<std::string>& argv) {
  ArgParser args("prepare",
                 "Tokenizes corpus files into a token store DIR: .jsonl (one JSON object per line) and .txt, plain\n"
                 "or compressed (.gz, .zst), and .parquet; or stores pre-tokenized ids (--ids-field).\n"
                 "Writes tokens.bin, index.bin, meta.json, stats.json and COMPLETE for `ropex train`.\n"
                 "Written to DIR.partial-<pid> and renamed when complete; an interrupted run leaves\n"
                 "only that folder, removed by the next prepare.");
  args.option("tokenizer", "PATH", "tokenizer.json, SentencePiece .model, or a model directory (its tokenizer.json first)")
      .option("input", "FILE", "a .jsonl, .txt (either also .gz / .zst) or .parquet file; repeat for more, documents keep the given order",
              std::nullopt, true)
      .option("output", "DIR", "token store directory to create")
      .option("text-field", "NAME", ".jsonl / .parquet: the string field or column holding the text", "text")
      .option("ids-field", "NAME",
              "pre-tokenized inputs: the field (.jsonl) or list column (.parquet) holding each document's token ids,\n"
              "stored as given (checked against the tokenizer's vocabulary; BOS/EOS only with --add-bos / --add-eos)")
      .option("on-error", "skip|fail", "malformed records (invalid JSON or UTF-8, no text field, a run of over 4 MiB without a "
              "space): skip (count, report the first 10) or stop", "skip")
      .option("threads", "N", "tokenizer threads; 0 = all cores", "0")
      .flag("no-bos", "do not prepend BOS to each document (the default for --ids-field)")
      .flag("no-eos", "do not append EOS to each document (the default for --ids-field)")
      .flag("add-bos", "prepend BOS to each document (the default for text)")
      .flag("add-eos", "append EOS to each document (the default for text)")
      .option("txt-split", "file|blank_line", ".txt: one document per file, or split at blank lines", "file")
      .flag("overwrite", "replace an existing token store at DIR")
      .option("windows", "N,N,...", "extra window lengths to report (besides 512 ... 65536)")
      .option("chunk", "N", "cut each tokenized document into pieces of N tokens, one document each; a shorter last piece is dropped (0 = whole documents)", "0");
  args.parse(argv);
  const PrepareStats stats = prepare_corpus(options_from(args));
  std::cout << stats.table() << std::flush;
  return 0;
}

}  // namespace ropex
