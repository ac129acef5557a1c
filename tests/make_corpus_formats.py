#!/usr/bin/env python3
"""The same held-out documents in every corpus format `ropex prepare` reads (tests/test_corpus_formats.cpp).

Usage: make_corpus_formats.py OUTDIR TOKENIZER_JSON

Writes into OUTDIR, each holding the same documents in the same order:
  docs.jsonl                 the reference: {"text": ...} per line (json.dumps, UTF-8)
  docs.jsonl.gz              gzip by Python's gzip module, as two members one after the other
  docs.jsonl.zst             zstd by pyarrow (Arrow's codec), as two frames one after the other
  docs-gzip-no-suffix.jsonl  gzip bytes under a plain name (compression told by the first bytes)
  docs.parquet               pyarrow, a "text" string column, 7 rows per row group, zstd pages
  ids.jsonl                  {"ids": [...]} per line: the `tokenizers` library's encode(text,
                             add_special_tokens=False), so BOS/EOS are left to prepare
  ids.jsonl.gz               the same, gzip
  ids.jsonl.zst              the same, zstd
  ids.parquet                an "ids" list<int32> column, 5 rows per row group
  ids-int64.parquet          the same as large_list<int64>
  paras.jsonl                other documents, made of non-blank lines (the reference for .txt)
  paras.txt, paras.txt.zst   the same documents as paragraphs separated by blank lines (--txt-split blank_line)
  bad-ids.jsonl              3 documents, the 2nd holding the id 2000000000 (outside any test vocabulary)
  bad.parquet                3 rows of "text", the 2nd null
  expected.json              {"documents": N, "empty": E, "ids": [the first 3 documents' ids]}
The documents: scripts and emoji, quotes, backslashes, control characters, CRLF, tabs, long
whitespace runs, an empty document, and one of about 1.5 MB (it crosses the readers' 1 MiB buffers).
"""
import gzip
import json
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

out, tokenizer_path = sys.argv[1], sys.argv[2]
rng = random.Random(14)
pieces = ["the quick brown fox", "jumps", "over", "ΣΟΦΟΣ", "καλημέρα", "你好，世界", "こんにちは", "안녕하세요",
          "مرحبا", "שלום", "👩‍💻", "🇫🇷", "café", "cafe\u0301", "\"quoted\"", "back\\slash", "tab\there", "\r\n",
          "\n", "   ", "12345", "3.14159", "x = f(y) + 1;", "\u0001\u001f", "\u00a0", "<s>", "end."]
docs = []
for i in range(150):
    n = rng.randint(1, 60)
    docs.append(" ".join(rng.choice(pieces) for _ in range(n)))
docs.insert(40, "")
long_doc = []
size = 0
while size < 1_500_000:
    p = rng.choice(pieces)
    long_doc.append(p)
    size += len(p.encode()) + 1
docs.insert(90, " ".join(long_doc))

tok = Tokenizer.from_file(tokenizer_path)
ids = [tok.encode(d, add_special_tokens=False).ids for d in docs]


def jsonl(key, values):
    return "".join(json.dumps({key: v}, ensure_ascii=False) + "\n" for v in values).encode("utf-8")


def write(name, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(data)


def zstd_frame(data):
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as z:
        z.write(data)
    return sink.getvalue().to_pybytes()


text_lines = jsonl("text", docs)
half = len(text_lines) // 2  # inside a line: members and frames need not end at a line
write("docs.jsonl", text_lines)
write("docs.jsonl.gz", gzip.compress(text_lines[:half]) + gzip.compress(text_lines[half:]))
write("docs.jsonl.zst", zstd_frame(text_lines[:half]) + zstd_frame(text_lines[half:]))
write("docs-gzip-no-suffix.jsonl", gzip.compress(text_lines))
pq.write_table(pa.table({"text": pa.array(docs, pa.string()), "n": list(range(len(docs)))}), f"{out}/docs.parquet",
               row_group_size=7, compression="zstd")
id_lines = jsonl("ids", ids)
write("ids.jsonl", id_lines)
write("ids.jsonl.gz", gzip.compress(id_lines))
write("ids.jsonl.zst", zstd_frame(id_lines))
words = [p for p in pieces if p.strip() and "\n" not in p and "\r" not in p]
paras = ["\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(1, 4)))
         for _ in range(60)]
write("paras.jsonl", jsonl("text", paras))
para_text = "\n\n".join(paras).encode("utf-8") + b"\n"
write("paras.txt", para_text)
write("paras.txt.zst", zstd_frame(para_text))
pq.write_table(pa.table({"ids": pa.array(ids, pa.list_(pa.int32()))}), f"{out}/ids.parquet", row_group_size=5)
pq.write_table(pa.table({"ids": pa.array(ids, pa.large_list(pa.int64()))}), f"{out}/ids-int64.parquet")
write("bad-ids.jsonl", jsonl("ids", [ids[0], [ids[1][0], 2000000000], ids[2]]))
pq.write_table(pa.table({"text": pa.array([docs[0], None, docs[2]], pa.string())}), f"{out}/bad.parquet")
with open(f"{out}/expected.json", "w") as f:
    json.dump({"documents": len(docs), "empty": sum(1 for d in docs if not d), "ids": ids[:3]}, f)
