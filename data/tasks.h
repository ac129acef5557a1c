// Retrieval tasks for long-context evaluation and for training tiny models on them
// (../shared/spec/evaluation_protocols.md): passkey retrieval (the YaRN / landmark-attention prompt)
// and key-value retrieval (a JSON object of ids, "lost in the middle"). A builder turns (tokenizer,
// target length in tokens, depth or target index, seed) into a prompt whose tokenized length (BOS
// included) stays below the target, plus the expected answer and a checker for a model's
// continuation.
//
// Used by `ropex eval` (prompts) and `ropex make-tasks` (training documents: the prompt, the
// answer, then filler so a loader that takes a document's first N tokens sees the whole example).
//
// It does NOT run models, decode or score; it knows text and token counts only.
#pragma once
#include "data/rng.h"
#include "data/tokenizer.h"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ropex {

// Thrown by the prompt builders when not even the smallest prompt of a task fits the length asked
// (evaluation skips such cells; any other error is a real one).
struct PromptDoesNotFit : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TaskPrompt {
  std::string prompt;         // text to feed after BOS
  std::string answer;         // what a correct continuation starts with (after leading spaces)
  int64_t prompt_tokens = 0;  // tokenized prompt length, BOS included
  double depth = 0;           // passkey: share of the filler before the key; kv: index / (pairs - 1)
  int64_t pairs = 0;          // kv: pairs in the object
  int64_t target_index = 0;   // kv: index of the asked pair
};

// Passkey: filler grows in steps of 128 characters until the prompt would reach `length` tokens; the
// previous size is used (so prompt_tokens < length). depth in [0, 1]; the key is uniform in
// [1, 50000] from `rng`. Throws if even an empty filler does not fit.
//
// `size_hint` (all three builders; optional, in and out): a guess at the filler steps / pairs /
// groups, e.g. what the previous call of the same length returned; the search starts there and the
// value found is written back. It saves tokenizations; the size found is the same. (kv and copy draw
// their ids lazily while searching, so a hint can change which random ids later calls draw.)
TaskPrompt passkey_prompt(const Tokenizer& tok, int64_t length, double depth, Rng& rng, int64_t* size_hint = nullptr);
// True when the first integer in `continuation` equals the key in `answer`.
bool passkey_correct(const std::string& continuation, const std::string& answer);

// Ids for key-value retrieval: "uuid" (8-4-4-4-12 lowercase hex, the standard task), "hex:N" or
// "digits:N" (N characters; shorter ids for tiny models). Throws naming the value otherwise.
struct KvIdFormat {
  enum Kind { uuid, hex, digits } kind = uuid;
  int chars = 36;
};
KvIdFormat parse_kv_id_format(const std::string& text);
std::string kv_id_format_name(const KvIdFormat& f);

// KV retrieval: as many pairs as fit below `length` tokens; the asked key sits at index
// round(position * (pairs - 1)), position in [0, 1]. Keys and values are distinct random ids, so a
// short id format also caps the pairs at the number of ids it has (hex:2: 256; the prompt is then
// shorter than `length`).
TaskPrompt kv_prompt(const Tokenizer& tok, int64_t length, double position, const KvIdFormat& ids, Rng& rng,
                     int64_t* size_hint = nullptr);
// True when the continuation, after leading spaces and quotes, starts with the answer.
bool kv_correct(const std::string& continuation, const std::string& answer);

// Copy (training only: dense signal for the attention that retrieval needs): "Copy: X\nAgain:" with
// X a run of random 4-character hex groups, as many as fit so that prompt + " X" stays below
// `length` tokens; the answer is X. Models pre-trained from scratch learn to attend back to earlier
// tokens from this far sooner than from passkey examples alone, whose few answer tokens carry
// little gradient.
TaskPrompt copy_prompt(const Tokenizer& tok, int64_t length, Rng& rng, int64_t* size_hint = nullptr);

// The passkey filler sentence and the text used after a training example's answer.
const std::string& passkey_filler();

}  // namespace ropex
