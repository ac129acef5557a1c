#!/usr/bin/env python3
"""ropex's tokenizer.json encoder against the `tokenizers` library on one thread, same text, same machine.

  .venv/bin/python bench/tokenizer_speed.py [--ropex build/ropex] [--bytes 8000000] [--repeat 3]

Makes the tokenizer.json files of every style (tests/text/make_tokenizers.py: trained here, with
the structure of Llama-3's, Qwen2's, GPT-2's, Llama-2's and Mistral's files) and a held-out
multilingual text of about --bytes bytes, then for each style times:
  ropex:      `ropex tokenize --tokenizer STYLE.json --text bench.txt --timing` (its encode_s: the
              encode call alone, the file read and the tokenizer loaded before it);
  tokenizers: Tokenizer.from_file(STYLE.json).encode(text, add_special_tokens=False) in this
              process, RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false (one encode call of
              one text runs on one thread in any case).
  tokenizers, documents: the same text cut at the first newline after every 4 KB, through
              encode_batch on one thread (its speed on corpus-sized documents, which is higher
              than on one long text).
Best of --repeat runs each. The ids must be equal (checked: their count and a hash), else the row
says so and the script exits 1. Prints a markdown table with MB/s and ropex / tokenizers.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STYLES = ["llama3", "qwen2", "gpt2", "llama2", "mistral3"]


def digest(ids):
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ropex", default=os.path.join(ROOT, "build", "ropex"))
    ap.add_argument("--bytes", type=int, default=8_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ropex-tok-bench-") as d:
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "text", "make_tokenizers.py"), d,
                        "--bench-bytes", str(a.bytes)], check=True, stdout=subprocess.DEVNULL)
        text_path = os.path.join(d, "bench.txt")
        text = open(text_path, encoding="utf-8", newline="").read()
        nbytes = len(text.encode("utf-8"))
        rows, ok = [], True
        for style in STYLES:
            tok_path = os.path.join(d, style + ".json")
            tok = Tokenizer.from_file(tok_path)
            theirs_s, ids = float("inf"), None
            for _ in range(a.repeat):
                t = time.perf_counter()
                ids = tok.encode(text, add_special_tokens=False).ids
                theirs_s = min(theirs_s, time.perf_counter() - t)
            docs, start = [], 0
            while start < len(text):
                end = text.find("\n", start + 4096)
                end = len(text) if end < 0 else end + 1
                docs.append(text[start:end])
                start = end
            docs_s = float("inf")
            for _ in range(a.repeat):
                t = time.perf_counter()
                tok.encode_batch(docs, add_special_tokens=False)
                docs_s = min(docs_s, time.perf_counter() - t)
            ours_s, ours = float("inf"), None
            for _ in range(a.repeat):
                p = subprocess.run([a.ropex, "tokenize", "--tokenizer", tok_path, "--text", text_path, "--json", "--timing"],
                                   capture_output=True, text=True, check=True)
                timing = json.loads(p.stderr.strip().splitlines()[-1])
                ours_s = min(ours_s, timing["encode_s"])
                ours = json.loads(p.stdout)["ids"]
            same = len(ours) == len(ids) and digest(ours) == digest(ids)
            ok &= same
            rows.append((style, len(ids), nbytes / ours_s / 1e6, nbytes / theirs_s / 1e6, nbytes / docs_s / 1e6,
                         theirs_s / ours_s, docs_s / ours_s, same))
    print(f"{nbytes / 1e6:.1f} MB of held-out multilingual text, best of {a.repeat}, one thread\n")
    print("| style | ids | ropex MB/s | tokenizers MB/s | tokenizers, 4 KB documents, MB/s | ropex / tokenizers | "
          "ropex / tokenizers on documents | ids equal |")
    print("|---|---|---|---|---|---|---|---|")
    for style, n, ours, theirs, docs, ratio, ratio_docs, same in rows:
        print(f"| {style} | {n} | {ours:.2f} | {theirs:.2f} | {docs:.2f} | {ratio:.2f}x | {ratio_docs:.2f}x | "
              f"{'yes' if same else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
