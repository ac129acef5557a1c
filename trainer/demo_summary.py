#!/usr/bin/env python3
"""The table `./run.sh demo` ends with: one row per evaluated model (results.json of `ropex eval`),
perplexity (truncated protocol) at the pre-trained window and at the longest length, passkey accuracy
(mean over depths) and key-value accuracy by position of the asked key at the longest length.

usage: demo_summary.py EVAL_DIR [EVAL_DIR ...]
"""
import sys

import plot_eval  # same folder: its load() reads and checks a results.json (or a directory holding one)


def load(path):
    try:
        return plot_eval.load(path)
    except plot_eval.InputError as e:
        sys.exit(f"demo_summary.py: error: {e}")


def ppl_at(r, length):
    for row in r.get("ppl", {}).get("truncated", {}).get("rows", []):
        if row["length"] == length and row["ppl"] is not None:
            return f'{row["ppl"]:.2f}'
    return "–"


def passkey_at(r, length):
    pk = r.get("passkey")
    if not pk or length not in pk["lengths"]:
        return "–"
    acc = [a for a in pk["accuracy"][pk["lengths"].index(length)] if a is not None]  # null: no prompt fitted
    return f"{100 * sum(acc) / len(acc):.0f}%" if acc else "–"


def kv_at(r, length, b):
    kv = r.get("kv")
    if not kv or length not in kv["lengths"]:
        return "–"
    a = kv["accuracy"][kv["lengths"].index(length)][b]
    return "–" if a is None else f"{100 * a:.0f}%"


def kv_ids(r):
    return r.get("kv", {}).get("ids", "?")


def main(argv):
    if not argv:
        sys.exit(__doc__)
    results = [load(a) for a in argv]
    base = results[0]["pretrained_len"]
    top = max(results[0]["lengths"])
    head = (f"| model | ppl @{base} | ppl @{top} | passkey @{base} | passkey @{top} "
            f"| kv @{top} start | kv @{top} middle | kv @{top} end |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in results:
        print(f'| {r["label"]} | {ppl_at(r, base)} | {ppl_at(r, top)} | {passkey_at(r, base)} | {passkey_at(r, top)} '
              f"| {kv_at(r, top, 0)} | {kv_at(r, top, 1)} | {kv_at(r, top, 2)} |")
    print(f"\nppl: truncated protocol on held-out text (exp of the mean per-window NLL); passkey: mean over "
          f"{len(results[0]['passkey']['depths']) if 'passkey' in results[0] else 0} depths; chance is about 0% "
          f"for passkey (a random number up to 50000) and at most 1/pairs for kv ({kv_ids(results[0])} ids; a guess "
          f"among the object's values).")


if __name__ == "__main__":
    main(sys.argv[1:])
