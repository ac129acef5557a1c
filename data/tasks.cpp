#include "data/tasks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace ropex {
namespace {

constexpr const char* kPasskeyIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
    "I will quiz you about the important information there.";
constexpr const char* kPasskeyQuestion = "What is the pass key? The pass key is";
constexpr const char* kKvIntro = "Extract the value corresponding to the specified key in the JSON object below.";
constexpr int64_t kFillerStep = 128;  // characters

int64_t count_tokens(const Tokenizer& tok, const std::string& text) {
  return static_cast<int64_t>(tok.encode(text, /*add_bos=*/true, /*add_eos=*/false).size());
}

// Largest n >= 0 with fits(n) true, for a predicate that is true up to some n and false after
// (throws `none_fit` when even fits(0) is false). Without a hint: doubling from 1, then bisection.
// With a hint (the answer of a similar call, e.g. the previous example of a make-tasks run): a
// gallop up or down from it, then bisection, so a good hint costs two or three calls instead of a
// dozen. The answer is the same either way; only the calls made differ.
int64_t largest_fitting(const std::function<bool(int64_t)>& fits, const std::string& none_fit, int64_t hint = 0) {
  constexpr int64_t kCeiling = int64_t{1} << 40;
  int64_t lo = 0, hi = 1;  // invariant after the bracketing: fits(lo), !fits(hi)
  if (hint > 0 && hint < kCeiling) {
    if (fits(hint)) {
      lo = hint;
      for (int64_t step = 1;; step *= 2) {
        if (lo + step > kCeiling) throw std::runtime_error("task builder: the prompt never reaches the target length");
        if (!fits(lo + step)) {
          hi = lo + step;
          break;
        }
        lo += step;
      }
    } else {
      hi = hint;
      for (int64_t step = 1;; step *= 2) {
        lo = std::max<int64_t>(0, hi - step);
        if (fits(lo)) break;
        if (lo == 0) throw PromptDoesNotFit(none_fit);
        hi = lo;
      }
    }
  } else {
    if (!fits(0)) throw PromptDoesNotFit(none_fit);
    while (fits(hi)) {
      lo = hi;
      hi *= 2;
      if (hi > kCeiling) throw std::runtime_error("task builder: the prompt never reaches the target length");
    }
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

std::string filler_text(size_t chars) {
  std::string out;
  out.reserve(chars + passkey_filler().size());
  while (out.size() < chars) out += passkey_filler();
  out.resize(chars);
  return out;
}

std::string passkey_text(int64_t key, size_t filler_chars, double depth) {
  const std::string filler = filler_text(filler_chars);
  const size_t split = static_cast<size_t>(std::llround(depth * static_cast<double>(filler_chars)));
  const std::string k = std::to_string(key);
  return std::string(kPasskeyIntro) + "\n" + filler.substr(0, split) + "\nThe pass key is " + k + ". Remember it. " + k +
         " is the pass key.\n" + filler.substr(split) + "\n" + kPasskeyQuestion;
}

std::string random_id(const KvIdFormat& f, Rng& rng) {
  static const char* hex = "0123456789abcdef";
  auto chars = [&](int n, int base) {
    std::string s;
    for (int i = 0; i < n; ++i) s += hex[rng.uniform_int(0, base - 1)];
    return s;
  };
  switch (f.kind) {
    case KvIdFormat::uuid:
      return chars(8, 16) + "-" + chars(4, 16) + "-" + chars(4, 16) + "-" + chars(4, 16) + "-" + chars(12, 16);
    case KvIdFormat::hex:
      return chars(f.chars, 16);
    case KvIdFormat::digits:
      return chars(f.chars, 10);
  }
  return {};
}

std::string kv_text(const std::vector<std::string>& keys, const std::vector<std::string>& values, int64_t pairs,
                    int64_t target) {
  std::string s = std::string(kKvIntro) + "\n\nJSON data:\n{";
  for (int64_t i = 0; i < pairs; ++i) {
    if (i > 0) s += ",\n ";
    s += "\"" + keys[i] + "\": \"" + values[i] + "\"";
  }
  s += "}\n\nKey: \"" + keys[target] + "\"\nCorresponding value:";
  return s;
}

void check_unit(double x, const char* what) {
  if (!(x >= 0.0 && x <= 1.0)) throw std::invalid_argument(std::string(what) + " must be in [0, 1], got " + std::to_string(x));
}

}  // namespace

const std::string& passkey_filler() {
  static const std::string filler =
      "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
  return filler;
}

TaskPrompt passkey_prompt(const Tokenizer& tok, int64_t length, double depth, Rng& rng, int64_t* size_hint) {
  check_unit(depth, "passkey depth");
  const int64_t key = rng.uniform_int(1, 50000);
  auto fits = [&](int64_t steps) {
    return count_tokens(tok, passkey_text(key, static_cast<size_t>(steps * kFillerStep), depth)) < length;
  };
  const int64_t steps = largest_fitting(
      fits, "passkey: a prompt without filler already has " + std::to_string(count_tokens(tok, passkey_text(key, 0, depth))) +
                " tokens, not below the requested length " + std::to_string(length),
      size_hint ? *size_hint : 0);
  if (size_hint) *size_hint = steps;
  TaskPrompt p;
  p.prompt = passkey_text(key, static_cast<size_t>(steps * kFillerStep), depth);
  p.answer = std::to_string(key);
  p.prompt_tokens = count_tokens(tok, p.prompt);
  p.depth = depth;
  return p;
}

bool passkey_correct(const std::string& continuation, const std::string& answer) {
  const auto first = std::find_if(continuation.begin(), continuation.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (first == continuation.end()) return false;
  const auto last = std::find_if(first, continuation.end(), [](char c) { return !std::isdigit(static_cast<unsigned char>(c)); });
  std::string number(first, last);
  const size_t nz = number.find_first_not_of('0');  // "007" is the integer 7
  number = nz == std::string::npos ? "0" : number.substr(nz);
  return number == answer;
}

KvIdFormat parse_kv_id_format(const std::string& text) {
  if (text == "uuid") return {KvIdFormat::uuid, 36};
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  if (colon != std::string::npos && (kind == "hex" || kind == "digits")) {
    const std::string n = text.substr(colon + 1);
    if (!n.empty() && n.size() <= 3 && std::all_of(n.begin(), n.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      const int chars = std::stoi(n);
      if (chars >= 1 && chars <= 64) return {kind == "hex" ? KvIdFormat::hex : KvIdFormat::digits, chars};
    }
  }
  throw std::invalid_argument("kv id format '" + text + "': expected uuid, hex:N or digits:N with N in [1, 64]");
}

std::string kv_id_format_name(const KvIdFormat& f) {
  if (f.kind == KvIdFormat::uuid) return "uuid";
  return (f.kind == KvIdFormat::hex ? "hex:" : "digits:") + std::to_string(f.chars);
}

TaskPrompt kv_prompt(const Tokenizer& tok, int64_t length, double position, const KvIdFormat& ids, Rng& rng,
                     int64_t* size_hint) {
  check_unit(position, "kv target position");
  std::vector<std::string> keys, values;
  auto ensure = [&](int64_t n) {
    while (static_cast<int64_t>(keys.size()) < n) {  // distinct keys (values may repeat harmlessly, but don't)
      std::string k = random_id(ids, rng), v = random_id(ids, rng);
      if (std::find(keys.begin(), keys.end(), k) != keys.end() || std::find(values.begin(), values.end(), v) != values.end()) continue;
      keys.push_back(std::move(k));
      values.push_back(std::move(v));
    }
  };
  // Keys are distinct and so are values: at most as many pairs as there are ids (hex:2 has 256).
  // A longer prompt would need ids that do not exist, so the object stops there, below `length`.
  int64_t distinct = int64_t{1} << 40;
  if (ids.kind != KvIdFormat::uuid) {
    distinct = 1;
    for (int i = 0; i < ids.chars && distinct < (int64_t{1} << 40); ++i) distinct *= ids.kind == KvIdFormat::hex ? 16 : 10;
  }
  // Pairs fitting below `length` with the asked key the last one (the longest possible question).
  auto fits = [&](int64_t extra) {
    const int64_t n = extra + 1;
    if (n > distinct) return false;
    ensure(n);
    return count_tokens(tok, kv_text(keys, values, n, n - 1)) < length;
  };
  ensure(1);
  const int64_t pairs = largest_fitting(fits, "kv: a prompt with one pair already has " +
                                                  std::to_string(count_tokens(tok, kv_text(keys, values, 1, 0))) +
                                                  " tokens, not below the requested length " + std::to_string(length),
                                              size_hint && *size_hint > 1 ? *size_hint - 1 : 0) + 1;
  if (size_hint) *size_hint = pairs;
  TaskPrompt p;
  p.pairs = pairs;
  p.target_index = std::llround(position * static_cast<double>(pairs - 1));
  p.prompt = kv_text(keys, values, pairs, p.target_index);
  p.answer = values[p.target_index];
  p.prompt_tokens = count_tokens(tok, p.prompt);
  if (p.prompt_tokens >= length) {  // another key asked may tokenize longer: drop pairs until it fits
    while (p.pairs > 1 && p.prompt_tokens >= length) {
      --p.pairs;
      p.target_index = std::llround(position * static_cast<double>(p.pairs - 1));
      p.prompt = kv_text(keys, values, p.pairs, p.target_index);
      p.answer = values[p.target_index];
      p.prompt_tokens = count_tokens(tok, p.prompt);
    }
  }
  p.depth = p.pairs > 1 ? static_cast<double>(p.target_index) / static_cast<double>(p.pairs - 1) : 0.0;
  return p;
}

TaskPrompt copy_prompt(const Tokenizer& tok, int64_t length, Rng& rng, int64_t* size_hint) {
  std::vector<std::string> groups;
  auto text = [&](int64_t n) {
    std::string x;
    for (int64_t i = 0; i < n; ++i) x += (i ? " " : "") + groups[static_cast<size_t>(i)];
    return x;
  };
  auto fits = [&](int64_t n) {
    while (static_cast<int64_t>(groups.size()) < n) groups.push_back(random_id({KvIdFormat::hex, 4}, rng));
    const std::string x = text(n);
    return count_tokens(tok, "Copy: " + x + "\nAgain: " + x) < length;
  };
  const int64_t n = largest_fitting(fits, "copy: no room", size_hint ? *size_hint : 0);
  if (size_hint) *size_hint = n;
  if (n == 0) throw PromptDoesNotFit("copy: not even one group fits in " + std::to_string(length) + " tokens");
  TaskPrompt p;
  p.answer = text(n);
  p.prompt = "Copy: " + p.answer + "\nAgain:";
  p.prompt_tokens = count_tokens(tok, p.prompt);
  p.pairs = n;
  return p;
}

bool kv_correct(const std::string& continuation, const std::string& answer) {
  size_t i = continuation.find_first_not_of(" \t\n\"'");
  return i != std::string::npos && continuation.compare(i, answer.size(), answer) == 0;
}

}  // namespace ropex
