// tokenizer.json's `post_processor`, for one sequence: the ids put before and after it when
// encoding with add_special_tokens.
//
// Implemented: TemplateProcessing (its "single" template), ByteLevel (offsets only: no ids),
// RobertaProcessing and BertProcessing (cls ... sep), Sequence. Pair templates, type ids and
// offsets are not produced. Other types are refused at load naming the file and key.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizers/json_access.h"

namespace ropex::tok {

struct SpecialAround {
  std::vector<int32_t> prefix, suffix;
};

// Reads the post_processor `j` (null gives nothing around).
SpecialAround read_post_processor(const nlohmann::json& j, const JsonPlace& at);

}  // namespace ropex::tok
