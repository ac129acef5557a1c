#!/usr/bin/env python3
"""Peak memory of `ropex prepare` by input format and input size: does it grow with the file?

  .venv/bin/python bench/prepare_memory.py [--sizes 40,160] [--short-docs 250000,2000000]
                                           [--ropex build/ropex] [--work DIR] [--keep]

Writes a synthetic corpus (random words, Zipf-distributed, from a vocabulary of about 4,000 made-up
English-like words plus about 600 German, French, Russian, Greek, Arabic, Chinese, Japanese and
emoji words; documents from 300 bytes to 3 MiB: most a few KB, some tens to hundreds of KB, a few
of MiBs, mostly English with foreign words mixed in, one in ten mostly foreign) at each of --sizes
MiB of text, the smaller one the first documents of the larger one (so both hold the same longest
documents), in five forms:

  jsonl        {"text": ...} a line
  jsonl.zst    the same through pyarrow.CompressedOutputStream("zstd")
  jsonl.gz     the same through Python's gzip (level 6)
  parquet      one string column "text", pyarrow.parquet.write_table's defaults (snappy, its default
               row groups: at these document counts the whole file is one row group)
  ids.jsonl.zst  {"ids": [...]} a line, the ids of the same texts from the Python sentencepiece
               library with the same model, read with --ids-field ids --add-bos --add-eos

The tokenizer is a SentencePiece BPE model (vocabulary 4,000) trained by `ropex train-tokenizer` on a
3 MiB sample of the corpus's short documents. Each file is then prepared, one at a time:

  ropex prepare --tokenizer TOK.model --input FILE --output STORE --threads 2 [--ids-field ids --add-bos --add-eos]

under tests/peak_rss.py (the test suite's measure: the child's ru_maxrss, forked from a small
process). Per run it records that peak RSS; the largest RssAnon (anonymous memory: heap, stacks)
of the child, read from /proc every 10 ms; the wall time; the input file's and the text's MiB/s;
and whether the store's tokens.bin and index.bin (SHA-256) equal those of the .jsonl store of the
same size. The store is deleted after. Why both memory figures: ropex's peak RSS is set, even for
`ropex --help`, by about 100 MiB of library pages (file-backed) touched as the process exits, on
top of about 380 MiB of LibTorch & co. loaded at start; prepare's own memory, freed before the
exit, only shows in the peak RSS where it outgrows that bump. RssAnon has no such floor (but is
sampled: a spike shorter than 10 ms can be missed).

Then the same for .jsonl files of many 4-word documents (--short-docs counts): memory that grows
with the number of documents rather than bytes. Two runs first give the fixed cost: `ropex --help`
and prepare on a one-document .jsonl. Prints markdown tables, then per format the ratios of the
peak RSS and of the largest RssAnon at the largest size to the smallest (near 1 if memory does not
grow with the file).

A benchmark, not a test: it asserts nothing about memory or speed (both depend on the machine,
the allocator and what else runs). It does check that every store equals the .jsonl one of its
size, shows it in the table, and exits 1 if any differs (or a prepare fails).

Run time on an idle 2-core VM at the default sizes: about 7 minutes, of which about 2 making the
corpus, the tokenizer and the files (mostly the Python sentencepiece library making the ids) and
the rest prepare (about 2.8 MiB/s of text on 2 threads); disk: about 2.5x the largest size under
--work (removed at the end unless --keep).
"""
import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEAK_RSS = os.path.join(ROOT, "tests", "peak_rss.py")
MiB = 1 << 20
FORMATS = ["jsonl", "jsonl.zst", "jsonl.gz", "parquet", "ids.jsonl.zst"]

# ---- the corpus ----

FOREIGN = {
    # A few real words per language, extended with made-up ones from the same alphabet below.
    "de": "und der die das nicht über größer Straße Mädchen schön für Grüße wir haben",
    "fr": "le la les et très déjà où été français garçon élève noël être",
    "ru": "и в не на что быть этот один говорить время человек",
    "el": "και το να είναι για με από την που θα",
    "ar": "في من على إلى أن هذا كان التي الذي",
    "zh": "的 是 不 了 人 我 在 有 他 这 中 大 来 上 国 个 到 说 们 为",
    "ja": "の に は を た が で て と し れ さ ある いる する こと これ",
    "emoji": "😀 🚀 🎉 👍 🌍 🔥 ❤️ 🤖",
}
ALPHABETS = {
    "de": "abcdefghijklmnopqrstuvwxyzäöüß", "fr": "abcdefghijklmnopqrstuvwxyzéèêàçôû",
    "ru": "абвгдежзийклмнопрстуфхцчшщыьэюя", "el": "αβγδεζηθικλμνξοπρστυφχψω",
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "zh": "的是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
    "ja": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん",
}


def vocabulary(rng):
    """(english_words, english_weights, foreign_words, foreign_weights): Zipf weights 1/rank."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    english = sorted({"".join(rng.choices(letters, k=rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 10, 12])))
                      for _ in range(4200)})
    rng.shuffle(english)
    english += [str(y) for y in range(1900, 2030)] + ["e.g.", "(see", "above)", "—", "\"quoted\"", "x=3;", "#42"]
    foreign = []
    for lang, words in FOREIGN.items():
        foreign += words.split()
        alphabet = ALPHABETS.get(lang)
        if alphabet:
            foreign += ["".join(rng.choices(alphabet, k=rng.randint(1 if lang in ("zh", "ja") else 2, 8))) for _ in range(70)]
    rng.shuffle(foreign)
    zipf = lambda n: [1.0 / (r + 1) for r in range(n)]  # noqa: E731
    return english, zipf(len(english)), foreign, zipf(len(foreign))


def document(rng, nbytes, foreign_share, vocab):
    """About `nbytes` of text: sentences of 4-30 words, paragraphs of 2-12 sentences."""
    english, ew, foreign, fw = vocab
    out, size = [], 0
    while size < nbytes:
        n = max(64, min(200_000, (nbytes - size) // 5))  # words drawn per round
        words = rng.choices(english, cum_weights=None, weights=ew, k=n) if foreign_share < 1 else []
        if foreign_share > 0:
            k = int(n * foreign_share)
            extra = rng.choices(foreign, weights=fw, k=k)
            if foreign_share >= 1:
                words = extra
            else:
                for w in extra:
                    words[rng.randrange(n)] = w
        i = 0
        while i < len(words) and size < nbytes:
            sentence = words[i:i + rng.randint(4, 30)]
            i += len(sentence)
            s = " ".join(sentence)
            s = s[:1].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!", ";", ":"])
            s += "\n\n" if rng.random() < 0.15 else " "
            out.append(s)
            size += len(s.encode("utf-8"))
    return "".join(out).rstrip() + "\n"


def corpus(total_bytes, seed=1234):
    """Documents until `total_bytes` of UTF-8 text: 85% 300 B-8 KiB, 13% 8-200 KiB, 2% 200 KiB-3 MiB
    (log-uniform in each band); the first document is 3 MiB, the second a mostly foreign 100 KiB."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    docs, size = [], 0
    while size < total_bytes:
        if len(docs) == 0:
            n, share = 3 * MiB, 0.05
        elif len(docs) == 1:
            n, share = 100 << 10, 1.0
        else:
            band = rng.random()
            lo, hi = (300, 8 << 10) if band < 0.85 else (8 << 10, 200 << 10) if band < 0.98 else (200 << 10, 3 * MiB)
            n = int(lo * (hi / lo) ** rng.random())
            # Mostly foreign only below 100 KiB (its spaces are not between ASCII characters, where
            # ropex may cut a long text; a long text that cannot be cut is tokenized whole).
            share = 1.0 if n < (100 << 10) and rng.random() < 0.1 else rng.choice([0.0, 0.0, 0.0, 0.02, 0.1])
        docs.append(document(rng, n, share, vocab))
        size += len(docs[-1].encode("utf-8"))
    return docs


# ---- the files ----

def text_lines(docs):
    for d in docs:
        yield (json.dumps({"text": d}, ensure_ascii=False) + "\n").encode("utf-8")


def write_files(docs, counts, work, model):
    """For each count in `counts` (the first `count` documents): every format's file. Returns
    {(format, count): path}."""
    paths = {}
    for count in counts:
        stem = os.path.join(work, f"corpus_{count}")
        paths["jsonl", count] = stem + ".jsonl"
        paths["jsonl.zst", count] = stem + ".jsonl.zst"
        paths["jsonl.gz", count] = stem + ".jsonl.gz"
        paths["parquet", count] = stem + ".parquet"
        paths["ids.jsonl.zst", count] = stem + ".ids.jsonl.zst"
        with open(paths["jsonl", count], "wb") as plain, \
                pa.CompressedOutputStream(paths["jsonl.zst", count], "zstd") as zst, \
                gzip.open(paths["jsonl.gz", count], "wb", compresslevel=6) as gz:
            for line in text_lines(docs[:count]):
                plain.write(line)
                zst.write(line)
                gz.write(line)
        pq.write_table(pa.table({"text": pa.array(docs[:count], pa.string())}), paths["parquet", count])
    # The ids of the largest corpus, written to every size's file as they come (the smaller ones are prefixes).
    sp = spm.SentencePieceProcessor(model_file=model)
    outs = {count: pa.CompressedOutputStream(paths["ids.jsonl.zst", count], "zstd") for count in counts}
    step = 256
    for begin in range(0, max(counts), step):
        batch = docs[begin:begin + step]
        for i, ids in enumerate(sp.encode(batch, num_threads=2)):
            line = ('{"ids":[' + ",".join(map(str, ids)) + "]}\n").encode()
            for count, out in outs.items():
                if begin + i < count:
                    out.write(line)
    for out in outs.values():
        out.close()
    return paths


def train_tokenizer(ropex, docs, work):
    sample, size = os.path.join(work, "tokenizer_sample.jsonl"), 0
    with open(sample, "wb") as f:
        for d in docs:
            if len(d) > 8 << 10:
                continue
            line = (json.dumps({"text": d}, ensure_ascii=False) + "\n").encode("utf-8")
            f.write(line)
            size += len(line)
            if size > 3 * MiB:
                break
    prefix = os.path.join(work, "tok")
    subprocess.run([ropex, "train-tokenizer", "--input", sample, "--output", prefix, "--vocab-size", "4000"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.remove(sample)
    return prefix + ".model"


# ---- one run ----

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def child_of(pid):
    """The pid of a child process of `pid` (peak_rss.py forks one), or None."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        return int(entry)
            except (OSError, IndexError, ValueError):
                pass
    return None


def rss_anon_kib(pid):
    """RssAnon of `pid` once it runs ropex (before the exec it is a copy of peak_rss.py), else 0."""
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    if "Name:\tropex\n" not in status:
        return 0
    return next((int(l.split()[1]) for l in status.splitlines() if l.startswith("RssAnon:")), 0)  # none once a zombie


def prepare(ropex, model, path, fmt, store):
    """Runs `ropex prepare` on `path` under peak_rss.py, sampling the child's RssAnon every 10 ms:
    (peak RSS bytes, largest RssAnon sample in bytes, seconds, store digests, meta)."""
    cmd = [sys.executable, PEAK_RSS, ropex, "prepare", "--tokenizer", model, "--input", path, "--output", store,
           "--threads", "2"]
    if fmt.startswith("ids"):
        cmd += ["--ids-field", "ids", "--add-bos", "--add-eos"]
    start = time.perf_counter()
    with open(store + ".log", "w+") as log:
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        child, anon = None, 0
        while run.poll() is None:
            try:
                child = child or child_of(run.pid)
                if child:
                    anon = max(anon, rss_anon_kib(child))
            except OSError:  # it ended between two reads
                pass
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        out = run.stdout.read()
        log.seek(0)
        if run.returncode != 0:
            sys.exit(f"prepare failed on {path}:\n{log.read()[-3000:]}")
    os.remove(store + ".log")
    digests = (sha256(os.path.join(store, "tokens.bin")), sha256(os.path.join(store, "index.bin")))
    with open(os.path.join(store, "meta.json")) as f:
        meta = json.load(f)
    shutil.rmtree(store)
    return int(out.strip()), anon * 1024, seconds, digests, meta


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"


def many_short_documents(path, count, seed=1234):
    """`count` documents of 4 words each, one a line: the per-document costs, which no file of long
    documents shows."""
    english, weights, _, _ = vocabulary(random.Random(seed))
    rng = random.Random(seed)
    words = rng.choices(english, weights=weights, k=4 * count)
    with open(path, "w") as f:
        for k in range(0, len(words), 4):
            f.write(json.dumps({"text": " ".join(words[k:k + 4])}) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="40,160", help="MiB of text, comma-separated (default: 40,160)")
    ap.add_argument("--short-docs", default="250000,2000000",
                    help="document counts of the files of 4-word documents (default: 250000,2000000)")
    ap.add_argument("--ropex", default=os.path.join(ROOT, "build", "ropex"))
    ap.add_argument("--work", default="/tmp/ropex_prepare_memory", help="folder for the files (emptied first)")
    ap.add_argument("--keep", action="store_true", help="keep --work at the end")
    a = ap.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split(","))
    short_counts = sorted(int(s) for s in a.short_docs.split(","))
    if os.path.exists(a.work):
        shutil.rmtree(a.work)
    os.makedirs(a.work)
    store = os.path.join(a.work, "store")
    t0 = time.perf_counter()

    docs = corpus(max(sizes) * MiB)
    doc_bytes = [len(d.encode("utf-8")) for d in docs]
    counts = []
    for size in sizes:  # the first documents that hold `size` MiB
        n, total = 0, 0
        while total < size * MiB:
            total += doc_bytes[n]
            n += 1
        counts.append(n)
    text_bytes = {c: sum(doc_bytes[:c]) for c in counts}
    model = train_tokenizer(a.ropex, docs, a.work)
    t1 = time.perf_counter()
    paths = write_files(docs, counts, a.work, model)
    del docs
    t2 = time.perf_counter()
    print(f"corpus {t1 - t0:.0f} s, tokenizer + files {t2 - t1:.0f} s; {cpu_name()}, {os.cpu_count()} cores", flush=True)
    for c in counts:
        meta = pq.read_metadata(paths["parquet", c])
        groups = [meta.row_group(g).total_byte_size for g in range(meta.num_row_groups)]
        print(f"  {c:,} documents, {text_bytes[c] / MiB:.1f} MiB of text, longest {max(doc_bytes[:c]) / MiB:.2f} MiB; "
              f"parquet: {meta.num_row_groups} row group(s), largest {max(groups) / MiB:.0f} MiB uncompressed", flush=True)

    # The fixed cost: the binary alone, then one short document.
    help_run = subprocess.run([sys.executable, PEAK_RSS, a.ropex, "--help"], capture_output=True, text=True, check=True)
    help_peak = int(help_run.stdout.strip())
    tiny = os.path.join(a.work, "tiny.jsonl")
    with open(tiny, "w") as f:
        f.write(json.dumps({"text": "One short document."}) + "\n")
    base_peak, base_anon, base_s, _, _ = prepare(a.ropex, model, tiny, "jsonl", store)

    header = ("| input | text MiB | file MiB | documents | tokens | peak RSS MiB | max RssAnon MiB | wall s | file MiB/s "
              "| text MiB/s | store = .jsonl's |\n|---|---|---|---|---|---|---|---|---|---|---|")
    print(header)
    rows, peaks, ok = [], {}, True
    for c in counts:
        reference = None
        for fmt in FORMATS:
            path = paths[fmt, c]
            peak, anon, seconds, digests, meta = prepare(a.ropex, model, path, fmt, store)
            if fmt == "jsonl":
                reference = digests
            same = digests == reference
            ok &= same
            peaks[fmt, c] = peak, anon
            file_mib = os.path.getsize(path) / MiB
            rows.append(f"| {fmt} | {text_bytes[c] / MiB:.0f} | {file_mib:.0f} | {meta['num_documents']:,} | "
                        f"{meta['num_tokens']:,} | **{peak / MiB:.0f}** | {anon / MiB:.0f} | {seconds:.1f} | "
                        f"{file_mib / seconds:.1f} | {text_bytes[c] / MiB / seconds:.1f} | {'yes' if same else '**NO**'} |")
            print(rows[-1], flush=True)
            os.remove(path)

    short_rows, short_peaks = [], []
    for n in short_counts:
        path = os.path.join(a.work, f"short_{n}.jsonl")
        many_short_documents(path, n)
        peak, anon, seconds, _, meta = prepare(a.ropex, model, path, "jsonl", store)
        short_peaks.append((peak, anon))
        short_rows.append(f"| jsonl, 4-word documents | {os.path.getsize(path) / MiB:.0f} | {meta['num_documents']:,} | "
                          f"**{peak / MiB:.0f}** | {anon / MiB:.0f} | {seconds:.1f} |")
        print(short_rows[-1], flush=True)
        os.remove(path)

    print(f"\nfixed cost: `ropex --help` peak RSS {help_peak / MiB:.0f} MiB; prepare on a one-document .jsonl: "
          f"peak RSS {base_peak / MiB:.0f} MiB, max RssAnon {base_anon / MiB:.0f} MiB, {base_s:.1f} s\n")
    print(header)
    print("\n".join(rows))
    lo, hi = counts[0], counts[-1]
    print(f"\nat {text_bytes[hi] / MiB:.0f} MiB of text against {text_bytes[lo] / MiB:.0f} MiB "
          f"(x{text_bytes[hi] / text_bytes[lo]:.1f} the input):\n")
    print("| input | peak RSS MiB | large / small | large - small MiB | max RssAnon MiB | large / small | large - small MiB |")
    print("|---|---|---|---|---|---|---|")
    for fmt in FORMATS:
        (p0, a0), (p1, a1) = peaks[fmt, lo], peaks[fmt, hi]
        print(f"| {fmt} | {p0 / MiB:.0f} -> {p1 / MiB:.0f} | {p1 / p0:.2f} | {(p1 - p0) / MiB:+.0f} | "
              f"{a0 / MiB:.0f} -> {a1 / MiB:.0f} | {a1 / a0:.2f} | {(a1 - a0) / MiB:+.0f} |")
    print("\nmany short documents:\n")
    print("| input | file MiB | documents | peak RSS MiB | max RssAnon MiB | wall s |\n|---|---|---|---|---|---|")
    print("\n".join(short_rows))
    (p0, a0), (p1, a1) = short_peaks[0], short_peaks[-1]
    extra = short_counts[-1] - short_counts[0]
    print(f"\n{extra:,} more documents: peak RSS {(p1 - p0) / MiB:+.0f} MiB, max RssAnon {(a1 - a0) / MiB:+.0f} MiB "
          f"({(a1 - a0) / extra:.1f} bytes a document)")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if not a.keep:
        shutil.rmtree(a.work)
    if not ok:
        sys.exit("a store differs from the .jsonl one of the same size (see the table)")


if __name__ == "__main__":
    main()
