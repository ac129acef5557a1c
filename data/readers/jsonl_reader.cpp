// See jsonl_reader.h.
#include "data/readers/jsonl_reader.h"

#include <nlohmann/json.hpp>

#include "data/input/json.h"
#include "data/readers/line_reader.h"

namespace ropex::readers {
namespace {

using nlohmann::json;

// What is wrong with a record; the reader turns it into a malformed Record at its line.
struct Malformed {
  std::string what;
};

std::string keys_of(const json& object) {
  std::string out;
  int n = 0;
  for (const auto& [key, _] : object.items()) {
    if (n++ == 5) return out + ", ...";
    out += (out.empty() ? "" : ", ") + key;
  }
  return out.empty() ? "none" : out;
}

// The field `field` of the JSON object on `line`.
json field_of(const std::string& line, const std::string& field) {
  json record;
  try {
    record = input::parse_json(line, "record");  // also rejects invalid UTF-8 inside strings
  } catch (const input::JsonInputError& e) {
    const std::string& reason = e.reason();  // it quotes the offending input, which can be a whole line
    throw Malformed{reason.size() <= 240 ? reason : reason.substr(0, 240) + "..."};
  }
  if (!record.is_object()) throw Malformed{std::string("expected a JSON object, got ") + record.type_name()};
  const auto it = record.find(field);
  if (it == record.end()) throw Malformed{"no \"" + field + "\" field (keys: " + keys_of(record) + ")"};
  return std::move(*it);
}

void text_of(const std::string& line, const std::string& field, Record& out) {
  json value = field_of(line, field);
  if (!value.is_string()) {
    throw Malformed{"field \"" + field + "\" is " + value.type_name() + ", expected a string" +
                    (value.is_array() ? " (token ids? pass --ids-field " + field + ")" : "")};
  }
  out.kind = Record::Kind::text;
  out.text = std::move(value.get_ref<std::string&>());
}

void ids_of(const std::string& line, const std::string& field, Record& out) {
  const json value = field_of(line, field);
  if (!value.is_array()) {
    throw Malformed{"field \"" + field + "\" is " + value.type_name() + ", expected an array of token ids" +
                    (value.is_string() ? " (text? pass --text-field " + field + " without --ids-field)" : "")};
  }
  out.kind = Record::Kind::ids;
  out.ids.clear();
  out.ids.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const json& id = value[i];
    if (id.is_number_unsigned()) {
      const auto v = id.get<uint64_t>();
      if (v <= INT32_MAX) {
        out.ids.push_back(static_cast<int32_t>(v));
        continue;
      }
    } else if (!id.is_number_integer()) {
      throw Malformed{"\"" + field + "\"[" + std::to_string(i) + "] is " + input::json_excerpt(id, 40) +
                      ", expected an integer token id"};
    }
    throw Malformed{"\"" + field + "\"[" + std::to_string(i) + "] = " + input::json_excerpt(id, 40) +
                    " is not a token id (expected an integer in [0, 2^31))"};
  }
}

class JsonlReader final : public RecordReader {
 public:
  JsonlReader(const std::string& path, Compression compression, const ReaderOptions& options)
      : path_(path), options_(options), lines_(open_byte_stream(path, compression)) {}

  bool next(Record& out) override {
    while (lines_.next(line_)) {
      if (is_blank_line(line_)) continue;
      out.number = lines_.line_number();
      try {
        if (options_.ids_field.empty()) text_of(line_, options_.text_field, out);
        else ids_of(line_, options_.ids_field, out);
      } catch (const Malformed& m) {
        out.kind = Record::Kind::malformed;
        out.text = m.what;
      }
      return true;
    }
    return false;
  }
  uint64_t bytes_consumed() const override { return lines_.consumed(); }
  std::string place(int64_t number) const override { return path_ + ":" + std::to_string(number); }

 private:
  std::string path_;
  ReaderOptions options_;
  LineReader lines_;
  std::string line_;
};

}  // namespace

std::unique_ptr<RecordReader> open_jsonl_reader(const std::string& path, Compression compression,
                                                const ReaderOptions& options) {
  return std::make_unique<JsonlReader>(path, compression, options);
}

}  // namespace ropex::readers
