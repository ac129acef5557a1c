"""Parquet fixtures for tests/text/test_parquet_reader.cpp, written with pyarrow.

python make_parquet.py OUT_DIR writes OUT_DIR/*.parquet and OUT_DIR/expected.json:
  "files":  {name: {"field", "ids" (bool: ids mode), "records": [[kind, value, number], ...]}}
            kind "text" (value: the text), "ids" (value: the ids) or "malformed" (value: the message);
            the values are what pyarrow itself reads back from the file (pq.read_table), not what
            this script meant to write.
  "errors": {name: {"field", "ids", "contains": [substrings of the ReadError's message]}}
"""
import json
import os
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(1234)
files, errors = {}, {}

WORDS = ["the", "token", "rope", "scaling", "ü", "naïve", "日本語", "中文", "emoji 🙂", "", " ", "\n", "tab\t", "ç"]


def texts(n, words=12):
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(words))) for _ in range(n)]


def invalid_at(b):
    try:
        b.decode("utf-8")
        return None
    except UnicodeDecodeError as e:
        return e.start


def expect(name, field, ids=False):
    """Reads `name` back with pyarrow and records, row by row, what the reader must produce."""
    column = pq.read_table(os.path.join(out, name), columns=[field]).column(0)
    records = []
    for number, scalar in enumerate(column, start=1):
        if not scalar.is_valid:
            records.append(["malformed", "null list (no token ids)" if ids else "null text", number])
        elif ids:
            values = scalar.values
            bad = None
            for k, v in enumerate(values.to_pylist()):
                if v is None:
                    bad = f"null id at index {k}"
                elif not 0 <= v < 2**31:
                    bad = f"id {v} at index {k} is not in [0, 2^31)"
                if bad:
                    break
            records.append(["malformed", bad, number] if bad else ["ids", values.to_pylist(), number])
        else:
            if isinstance(scalar, pa.DictionaryScalar):
                scalar = scalar.value
            raw = scalar.as_buffer().to_pybytes() if scalar.is_valid else None
            if raw is None:
                records.append(["malformed", "null text", number])
            elif invalid_at(raw) is not None:
                records.append(["malformed", f"invalid UTF-8 at byte {invalid_at(raw)}", number])
            else:
                records.append(["text", raw.decode("utf-8"), number])
    files[name] = {"field": field, "ids": ids, "records": records}


def write(name, table, **kw):
    pq.write_table(table, os.path.join(out, name), **kw)


# Text: several row groups (the last one short), each codec, an extra column before the text.
base = texts(2500)
base[7] = base[700] = base[2499] = None  # nulls, one at a row group's start and one at the very end
table = pa.table({"id": pa.array(range(len(base)), pa.int64()), "text": pa.array(base, pa.string())})
for codec in ["snappy", "zstd", "gzip", "none"]:
    write(f"text_{codec}.parquet", table, compression=codec, row_group_size=700)
    expect(f"text_{codec}.parquet", "text")
# Parquet dictionary encoding off (plain pages) and on with tiny pages (many pages per chunk).
write("text_plain_pages.parquet", table, use_dictionary=False, row_group_size=1000)
expect("text_plain_pages.parquet", "text")
write("text_small_pages.parquet", table, data_page_size=1024, row_group_size=2000)
expect("text_small_pages.parquet", "text")

# Large rows: several batches per row group (batches are sized by bytes), numbering across both.
big = ["".join(rng.choice("abcdefghij ü日") for _ in range(rng.randrange(50_000, 250_000))) for _ in range(60)]
big[33] = None
write("text_big_rows.parquet", pa.table({"body": big}), row_group_size=17, compression="zstd")
expect("text_big_rows.parquet", "body")

# An Arrow dictionary column (read back as dictionary<int32, string>), with a null.
vocab = pa.array(["alpha", "béta", "", "gamma δ"], pa.string())
indices = pa.array([rng.randrange(4) if i % 97 else None for i in range(1500)], pa.int32())
write("text_dictionary.parquet", pa.table({"text": pa.DictionaryArray.from_arrays(indices, vocab)}), row_group_size=600)
expect("text_dictionary.parquet", "text")
assert pa.types.is_dictionary(pq.read_schema(os.path.join(out, "text_dictionary.parquet")).field("text").type)

# large_string and string_view (the stored Arrow schema makes them read back as such).
write("text_large_string.parquet", pa.table({"text": pa.array(base[:900], pa.large_string())}), row_group_size=400)
expect("text_large_string.parquet", "text")
write("text_string_view.parquet", pa.table({"text": pa.array(base[:300], pa.string_view())}), row_group_size=100)
expect("text_string_view.parquet", "text")

# Invalid UTF-8 in a string column: pyarrow validates when converting Python objects, so the column
# is built from raw buffers (offsets + bytes), which pa.Array.from_buffers does not validate.
raw = [b"ok", b"\xff bad first", b"caf\xc3", "fine ü".encode(), b"a\xed\xa0\x80b", b"\xc0\xaf", b"abc\xe2\x82", b""]
offsets, data = [0], b""
for r in raw:
    data += r
    offsets.append(len(data))
bad = pa.Array.from_buffers(pa.string(), len(raw), [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(data)])
write("text_invalid_utf8.parquet", pa.table({"text": bad}))
expect("text_invalid_utf8.parquet", "text")
assert sum(r[0] == "malformed" for r in files["text_invalid_utf8.parquet"]["records"]) == 5

# Ids: each list type and integer width, with out-of-range ids, a null list and a null id.
def id_lists(n, hi):
    return [[rng.randrange(hi) for _ in range(rng.randrange(0, 40))] for _ in range(n)]

lists = id_lists(1200, 2**31)
lists[3] = [5, 6, 7, -1]
lists[10] = None
lists[11] = [1, None, 3]
lists[700] = [2**31]
lists[701] = [2**31 - 1, 0]
lists[1199] = []
write("ids_list_int32.parquet", pa.table({"ids": pa.array(lists[:700] + [[0]] + lists[701:], pa.list_(pa.int32()))}), row_group_size=250)
expect("ids_list_int32.parquet", "ids", ids=True)
write("ids_list_int64.parquet", pa.table({"text": ["x"] * len(lists), "ids": pa.array(lists, pa.list_(pa.int64()))}), row_group_size=300)
expect("ids_list_int64.parquet", "ids", ids=True)
write("ids_large_list_int64.parquet", pa.table({"ids": pa.array(lists, pa.large_list(pa.int64()))}), row_group_size=500, compression="zstd")
expect("ids_large_list_int64.parquet", "ids", ids=True)
small = id_lists(300, 256)
small[5] = None
write("ids_list_uint8.parquet", pa.table({"ids": pa.array(small, pa.list_(pa.uint8()))}), row_group_size=100)
expect("ids_list_uint8.parquet", "ids", ids=True)
u64 = id_lists(200, 2**31)
u64[17] = [1, 2**63 + 5]
u64[18] = [2**32]
write("ids_list_uint64.parquet", pa.table({"ids": pa.array(u64, pa.list_(pa.uint64()))}), row_group_size=64)
expect("ids_list_uint64.parquet", "ids", ids=True)
fixed = [[rng.randrange(-1, 30000) for _ in range(4)] for _ in range(500)]
fixed[2] = None
write("ids_fixed_size_int16.parquet", pa.table({"ids": pa.array(fixed, pa.list_(pa.int16(), 4))}), row_group_size=128)
expect("ids_fixed_size_int16.parquet", "ids", ids=True)

# An empty file (a schema, no rows).
write("text_empty.parquet", pa.table({"text": pa.array([], pa.string())}))
expect("text_empty.parquet", "text")

# Errors at open: the column is missing or of another type.
write("other_columns.parquet", pa.table({"content": ["a"], "meta": [1]}))
errors["missing_text.parquet"] = {"file": "other_columns.parquet", "field": "text", "ids": False,
                                  "contains": ["no column 'text'", "'content', 'meta'", "--text-field NAME"]}
errors["missing_ids.parquet"] = {"file": "other_columns.parquet", "field": "input_ids", "ids": True,
                                 "contains": ["no column 'input_ids'", "'content', 'meta'", "--ids-field NAME"]}
errors["int_column.parquet"] = {"file": "other_columns.parquet", "field": "meta", "ids": False,
                                "contains": ["column 'meta' is int64", "expected a string column"]}
errors["ids_as_text.parquet"] = {"file": "ids_list_int64.parquet", "field": "ids", "ids": False,
                                 "contains": ["column 'ids' is list<element: int64>", "expected a string column", "--ids-field ids"]}
errors["text_as_ids.parquet"] = {"file": "ids_list_int64.parquet", "field": "text", "ids": True,
                                 "contains": ["column 'text' is string", "expected a list of integers", "--text-field text"]}
write("binary_column.parquet", pa.table({"text": pa.array([b"a", b"b"], pa.binary())}))
errors["binary_column.parquet"] = {"file": "binary_column.parquet", "field": "text", "ids": False,
                                   "contains": ["column 'text' is binary", "expected a string column"]}
write("float_ids.parquet", pa.table({"ids": pa.array([[1.0, 2.0]], pa.list_(pa.float32()))}))
errors["float_ids.parquet"] = {"file": "float_ids.parquet", "field": "ids", "ids": True,
                               "contains": ["column 'ids' is list<element: float>", "expected a list of integers"]}

# Not Parquet at all, truncated, the footer cut: ReadError at open naming the file.
with open(os.path.join(out, "text_zstd.parquet"), "rb") as f:
    good = f.read()
corrupt = {
    "random_bytes.parquet": bytes(rng.randrange(256) for _ in range(5000)),
    "truncated_half.parquet": good[: len(good) // 2],
    "footer_cut.parquet": good[:-3],
    "footer_only_magic.parquet": good[-8:],
    "empty_file.parquet": b"",
    "jsonl_named_parquet.parquet": b'{"text": "hello"}\n',
}
for name, blob in corrupt.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
    errors[name] = {"file": name, "field": "text", "ids": False, "contains": [name]}

json.dump({"files": files, "errors": errors}, open(os.path.join(out, "expected.json"), "w"), ensure_ascii=False)
print(f"make_parquet.py: {len(files)} files, {len(errors)} error cases in {out}")
