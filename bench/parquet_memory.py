"""Peak memory of ropex's Parquet reader (data/readers/parquet_reader.cpp) on a large file.

Writes FILE (default /tmp/ropex_parquet_memory.parquet, reused if there) with pyarrow: about SIZE_MB
of incompressible text (random base64, 2-40 KB a row) in two row groups, snappy pages; then reads it
to the end through the reader (ropex_text_tests' ParquetReaderBench test, which does nothing else)
and prints the reader's peak resident memory, next to the same binary's on a one-row file.

  .venv/bin/python bench/parquet_memory.py BUILD_DIR [--size-mb 300] [--file FILE]

Not a test: it asserts nothing (memory depends on the allocator and the machine).
"""
import argparse
import base64
import os
import random
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

parser = argparse.ArgumentParser()
parser.add_argument("build_dir")
parser.add_argument("--size-mb", type=int, default=300)
parser.add_argument("--file", default="/tmp/ropex_parquet_memory.parquet")
args = parser.parse_args()
binary = os.path.join(args.build_dir, "ropex_text_tests")


def write(path, size_mb):
    rng = random.Random(0)
    rows, total = [], 0
    while total < size_mb << 20:
        n = rng.randrange(2_000, 40_000)
        rows.append(base64.b64encode(os.urandom(n * 3 // 4)).decode())
        total += len(rows[-1])
    table = pa.table({"text": pa.array(rows, pa.string())})
    pq.write_table(table, path, row_group_size=(len(rows) + 1) // 2, compression="snappy")
    return len(rows)


def peak_rss_kib(path):
    """Runs the reader over `path` in a child process; its peak RSS (KiB: VmHWM, as the child reports
    it; ru_maxrss would count this Python's pages at the fork) and its output line."""
    start = time.time()
    run = subprocess.run([binary, "--gtest_filter=ParquetReaderBench.*"], env={**os.environ, "ROPEX_PARQUET_BENCH": path},
                         capture_output=True, text=True)
    seconds = time.time() - start
    line = next((l for l in run.stdout.splitlines() if l.startswith("parquet bench:")), None)
    if run.returncode or line is None:
        sys.exit(f"{binary} failed on {path}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    peak = next(int(l.split()[-2]) for l in run.stdout.splitlines() if l.startswith("parquet bench peak:"))
    return peak, line, seconds


if not os.path.exists(args.file):
    t = time.time()
    n = write(args.file, args.size_mb)
    print(f"wrote {args.file}: {n} rows, {os.path.getsize(args.file) / 2**20:.0f} MiB in {time.time() - t:.0f} s")
meta = pq.read_metadata(args.file)
print(f"{args.file}: {os.path.getsize(args.file) / 2**20:.0f} MiB, {meta.num_rows} rows, {meta.num_row_groups} row groups "
      f"(largest {max(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups)) / 2**20:.0f} MiB uncompressed)")

small = args.file + ".one_row.parquet"
pq.write_table(pa.table({"text": ["one row"]}), small)
base, _, _ = peak_rss_kib(small)
peak, line, seconds = peak_rss_kib(args.file)
os.remove(small)
print(line)
print(f"peak RSS reading it: {peak / 1024:.0f} MiB in {seconds:.1f} s (the same binary on a one-row file: {base / 1024:.0f} MiB); "
      f"file {os.path.getsize(args.file) / 2**20:.0f} MiB")
