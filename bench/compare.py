#!/usr/bin/env python3
"""Markdown comparison of ropex's training-step benchmark with the transformers baseline.

Reads JSON lines from the files given (bench/baseline_hf.py lines, impl "hf-eager" / "hf-compile",
and ropex's own bench lines, impl "ropex", with the same fields), groups them by
(shape, seq, batch, dtype, device, ckpt) and prints one table row per group: tokens/s of each
implementation, ropex's speed relative to each baseline, MFU and peak memory of each.

Lines that are not JSON objects (log output mixed into a file) are skipped. When a group has more
than one line for an implementation the last one read wins (a note goes to stderr). A line with an
"error" field shows its error text in its cells. Missing entries show "–".

Usage:
    python bench/compare.py results/ropex.jsonl results/hf.jsonl [more.jsonl ...] [--out table.md]
"""
from __future__ import annotations

import argparse
import json
import sys

IMPLS = ("ropex", "hf-eager", "hf-compile")
KEY = ("shape", "seq", "batch", "dtype", "device", "ckpt")
DASH = "–"


def read_lines(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    print(f"compare: {path}:{n}: not valid JSON, skipped", file=sys.stderr)
                    continue
                if not isinstance(r, dict) or r.get("impl") not in IMPLS:
                    print(f"compare: {path}:{n}: no known impl ({r.get('impl') if isinstance(r, dict) else r!r}), "
                          "skipped", file=sys.stderr)
                    continue
                r["_src"] = f"{path}:{n}"
                out.append(r)
    return out


def key_of(r: dict) -> tuple:
    return tuple(bool(r.get(k)) if k == "ckpt" else r.get(k) for k in KEY)


def group(rows: list[dict]) -> dict:
    groups: dict[tuple, dict] = {}
    for r in rows:
        g = groups.setdefault(key_of(r), {})
        if r["impl"] in g:
            print(f"compare: {r['_src']} replaces {g[r['impl']]['_src']} for {r['impl']} {key_of(r)}",
                  file=sys.stderr)
        g[r["impl"]] = r
    return groups


def cell_err(r: dict) -> str:
    return "error: " + str(r["error"]).replace("|", "\\|").replace("\n", " ")[:120]


def fmt_num(r: dict | None, field: str, fmt: str, scale: float = 1.0) -> str:
    if r is None:
        return DASH
    if r.get("error"):
        return cell_err(r)
    v = r.get(field)
    if v is None:
        return DASH
    return format(v * scale, fmt)


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or a.get("error") or b.get("error"):
        return DASH
    x, y = a.get("tokens_per_s"), b.get("tokens_per_s")
    if not x or not y:
        return DASH
    return f"{x / y:.2f}x"


def sort_key(k: tuple):
    shape, seq, batch, dtype, device, ckpt = k
    return (str(shape), str(device), str(dtype), bool(ckpt), batch or 0, seq or 0)


def table(groups: dict) -> str:
    head = ["shape", "seq", "batch", "dtype", "device", "ckpt",
            "ropex tok/s", "hf-eager tok/s", "hf-compile tok/s", "ropex/eager", "ropex/compile",
            "MFU ropex", "MFU eager", "MFU compile", "peak GiB ropex", "peak GiB eager", "peak GiB compile"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in sorted(groups, key=sort_key):
        g = groups[k]
        ro, he, hc = (g.get(i) for i in IMPLS)
        shape, seq, batch, dtype, device, ckpt = k
        row = [str(shape), str(seq), str(batch), str(dtype), str(device), "yes" if ckpt else "no"]
        row += [fmt_num(r, "tokens_per_s", ",.0f") for r in (ro, he, hc)]
        row += [ratio(ro, he), ratio(ro, hc)]
        row += [fmt_num(r, "mfu", ".1%") if r and not r.get("error") else (DASH if r is None else "err")
                for r in (ro, he, hc)]
        row += [fmt_num(r, "peak_mem_gib", ".2f") if r and not r.get("error") else (DASH if r is None else "err")
                for r in (ro, he, hc)]
        # An error's text is shown once, in the tok/s column; its MFU / memory cells say "err".
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def notes(rows: list[dict]) -> str:
    seen: dict[str, set] = {}
    for r in rows:
        for field in ("optimizer", "gpu", "torch", "transformers", "compile_mode"):
            v = r.get(field)
            if v:
                seen.setdefault(f"{r['impl']} {field}", set()).add(str(v))
    if not seen:
        return ""
    out = ["", "", "Run details:"]
    for k in sorted(seen):
        out.append(f"- {k}: {', '.join(sorted(seen[k]))}")
    out.append("- MFU = tokens/s x (6N + 6 L T d_attn) / peak; recomputation not counted (bench/FLOPS.md).")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="files of JSON lines")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--no-notes", action="store_true", help="table only")
    args = ap.parse_args(argv)
    rows = read_lines(args.files)
    if not rows:
        print("compare: no result lines found", file=sys.stderr)
        return 1
    text = table(group(rows)) + ("" if args.no_notes else notes(rows))
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
