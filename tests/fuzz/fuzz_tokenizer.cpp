// Fuzz target: a SentencePiece tokenizer.model as data/tokenizer.h loads it (Tokenizer::load),
// then used as ropex uses one: special ids, encode of a fixed text with BOS/EOS, decode of the
// result and of every id in the vocabulary. SentencePiece itself is not instrumented (Debian's
// library), so faults inside it show up as crashes without coverage of its code.
// The input is the file's bytes. Rejections (std::exception) are fine.
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = ropex_fuzz::Scratch::get().write("tokenizer.model", {reinterpret_cast<const char*>(data), size});
  ropex_fuzz::guard([&] {
    const ropex::Tokenizer tok = ropex::Tokenizer::load(path.string());
    (void)tok.bos_id();
    (void)tok.eos_id();
    (void)tok.unk_id();
    (void)tok.pad_id();
    const auto ids = tok.encode("Hello wörld 12345\n\tτεστ  end", true, true);
    (void)tok.decode(ids);
    std::vector<int32_t> all;
    for (int32_t i = 0; i < tok.vocab_size() && i < 4096; ++i) all.push_back(i);
    (void)tok.decode(all);
  });
  return 0;
}
