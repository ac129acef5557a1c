// Fuzz target: a token store folder as data/token_store.h's TokenStore::open validates it
// (meta.json keys and types, token width, the sizes of tokens.bin and index.bin, the document
// offsets), then read as the loader reads it: every document's length, its tokens, and the id scan
// (verify_tokens).
// Input: meta.json, then index.bin, then tokens.bin, cut by fuzz_util.h's separator line (missing
// parts are empty files); the COMPLETE marker is always written. Rejections (std::exception) are fine.
#include "data/token_store.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = ropex_fuzz::split_parts(data, size);
  parts.resize(3);
  auto& scratch = ropex_fuzz::Scratch::get();
  const auto dir = scratch.fresh_dir("store");
  scratch.write("store/meta.json", parts[0]);
  scratch.write("store/index.bin", parts[1]);
  scratch.write("store/tokens.bin", parts[2]);
  scratch.write("store/COMPLETE", "");
  ropex_fuzz::guard([&] {
    const ropex::TokenStore store = ropex::TokenStore::open(dir.string());
    int64_t total = 0;
    for (size_t d = 0; d < store.num_documents(); ++d) {
      const int64_t len = store.doc_len(d);
      if (len < 0) __builtin_trap();
      total += len;
      (void)store.document(d);
      if (len > 0) {
        int32_t last = 0;
        store.read(d, len - 1, 1, &last);
      }
    }
    if (total != store.num_tokens()) __builtin_trap();  // open() checked the offsets cover the tokens
    (void)store.docs_at_least(1);
    store.verify_tokens();
    (void)store.meta().dump();
  });
  return 0;
}
