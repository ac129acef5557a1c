// Fuzz target: corpus files as `ropex prepare` reads them (data/prepare.h): .jsonl records (JSON
// per line, the text field extracted, malformed records skipped and counted) and .txt documents
// (whole file, or split at blank lines; invalid UTF-8 reported by line). Called through
// write_documents_as_text, which runs the same readers as prepare_corpus without a tokenizer.
// The input is the file's bytes; an input whose first non-blank byte is '{' or '[' is read as
// .jsonl, anything else as .txt, split at blank lines when its size is odd (so that every seed
// is a plain corpus file). Bytes that start like gzip or zstd are decompressed whatever the name
// (data/readers/format.h), so the decompressing streams are fuzzed too. Rejections
// (std::exception) are fine.
#include "data/prepare.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/log.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ropex::log::set_level(ropex::log::Level::off);  // skipped records are logged: keep the fuzzer's output readable
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  const bool jsonl = first != std::string_view::npos && (bytes[first] == '{' || bytes[first] == '[');
  auto& scratch = ropex_fuzz::Scratch::get();
  ropex::PrepareOptions o;
  o.inputs = {scratch.write(jsonl ? "corpus.jsonl" : "corpus.txt", bytes).string()};
  o.txt_split = size % 2 ? ropex::TxtSplit::blank_line : ropex::TxtSplit::file;
  o.on_error = ropex::OnError::skip;
  const std::string out = (scratch.dir() / "documents.txt").string();
  ropex_fuzz::guard([&] { (void)ropex::write_documents_as_text(o, out); });
  return 0;
}
