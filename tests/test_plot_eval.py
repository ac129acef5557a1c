#!/usr/bin/env python3
"""Self-check for trainer/plot_eval.py: python tests/test_plot_eval.py

Writes two synthetic `ropex eval` results files (one as DIR/results.json) in a
temporary directory, runs the script on them, and checks the pictures and
summary.md; then checks that bad inputs give a one-line error with exit code 2.
Exit code 0 on success, 1 with a message on the first failure.
"""
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer", "plot_eval.py")
PICTURES = ("ppl_vs_length.png", "passkey_heatmap.png", "kv_by_position.png")
LENGTHS = [128, 256, 512]
DEPTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


def results(label, ppl, passkey, kv):
    rows = [{"length": L, "docs": 4, "tokens": 4 * L, "ppl": p, "ppl_token_weighted": p}
            for L, p in zip(LENGTHS, ppl)]
    return {
        "ropex_eval": 1, "label": label, "model": f"/models/{label}", "rope": "linear (factor 4)",
        "pretrained_len": 128, "max_position_embeddings": 512,
        "ppl": {"data": "valid.bin", "aggregation": "text", "truncated": {"rows": rows},
                "sliding": {"stride": 64, "rows": rows}},
        "passkey": {"lengths": LENGTHS, "depths": DEPTHS, "samples": 4, "accuracy": passkey},
        "kv": {"lengths": LENGTHS, "bins": ["start", "middle", "end"], "accuracy": kv,
               "total": [[8, 8, 8]] * len(LENGTHS)},
    }


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def check(cond, message):
    if not cond:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    tuned = results("tuned", [12.25, 11.5, 11.0],
                    [[1.0] * 5, [1.0, 0.75, 0.5, 0.75, 1.0], [0.5, 0.25, 0.0, 0.25, 1.0]],
                    [[1.0, 0.875, 1.0], [0.875, 0.625, 0.75], [0.5, 0.125, 0.375]])
    base = results("base", [12.5, 310.0, 5.0e6],  # the last one is drawn clipped
                   [[1.0] * 5, [0.25] * 5, [0.0] * 5],
                   [[1.0, 1.0, 1.0], [0.25, 0.0, 0.5], [0.0, 0.0, 0.0]])
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "tuned"))
        with open(os.path.join(tmp, "tuned", "results.json"), "w") as f:
            json.dump(tuned, f)
        with open(os.path.join(tmp, "base.json"), "w") as f:
            json.dump(base, f)
        out = os.path.join(tmp, "out")
        proc = run("--output", out, os.path.join(tmp, "tuned"), os.path.join(tmp, "base.json"))
        check(proc.returncode == 0, f"plot_eval.py exited {proc.returncode}: {proc.stderr.strip()}")
        printed = proc.stdout.split()
        for name in PICTURES + ("summary.md",):
            path = os.path.join(out, name)
            check(os.path.isfile(path) and os.path.getsize(path) > 0, f"{name} missing or empty")
            check(path in printed, f"{name} not printed on stdout: {proc.stdout!r}")
        for name in PICTURES:
            with open(os.path.join(out, name), "rb") as f:
                check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG")

        with open(os.path.join(out, "summary.md"), encoding="utf-8") as f:
            md = f.read()
        for label in ("tuned", "base"):
            check(f"| {label} |" in md, f"summary.md has no row for {label}")
        # passkey: mean over depths, computed here independently of the script
        for res in (tuned, base):
            for L, accs in zip(LENGTHS, res["passkey"]["accuracy"]):
                mean = f"{100 * sum(accs) / len(accs):.1f}%"
                check(mean in md, f"passkey mean {mean} ({res['label']}, length {L}) not in summary.md")
        tuned_pk = "| tuned | 100.0% | 80.0% | 40.0% |"
        check(tuned_pk in md, f"passkey row {tuned_pk!r} not in summary.md:\n{md}")
        check("| tuned | 12.25 | 11.50 | 11.00 |" in md, "perplexity row for tuned not in summary.md")
        check("| base | 12.50 | 310.00 | 5e+06 |" in md, "perplexity row for base not in summary.md")
        check("| base | 100.0% | 100.0% | 100.0% | 25.0% | 0.0% | 50.0% | 0.0% | 0.0% | 0.0% |" in md,
              "kv row for base not in summary.md")

        # a null ppl is a skipped length ("docs": 0, drawn nowhere) or an overflow (drawn clipped)
        rows = tuned["ppl"]["truncated"]["rows"]
        tuned["ppl"]["truncated"]["rows"] = [rows[0], dict(rows[1], ppl=None),
                                             dict(rows[2], docs=0, tokens=0, ppl=None)]
        with open(os.path.join(tmp, "nulls.json"), "w") as f:
            json.dump(tuned, f)
        proc = run("--output", os.path.join(tmp, "out_nulls"), os.path.join(tmp, "nulls.json"))
        check(proc.returncode == 0, f"null perplexities failed: {proc.stderr.strip()}")
        with open(os.path.join(tmp, "out_nulls", "summary.md"), encoding="utf-8") as f:
            check("| tuned | 12.25 | non-finite | — |" in f.read(), "null perplexities misreported")

        # a file with only one section draws only that picture
        only_kv = {k: v for k, v in tuned.items() if k not in ("ppl", "passkey")}
        with open(os.path.join(tmp, "kv.json"), "w") as f:
            json.dump(only_kv, f)
        proc = run("--output", os.path.join(tmp, "out_kv"), os.path.join(tmp, "kv.json"))
        check(proc.returncode == 0, f"kv-only input failed: {proc.stderr.strip()}")
        names = sorted(os.path.basename(p) for p in proc.stdout.split())
        check(names == ["kv_by_position.png", "summary.md"], f"kv-only input wrote {names}")

        # bad inputs: one line naming the file, exit code 2, no traceback
        bad = {"broken.json": "{not json", "wrong.json": json.dumps({"hello": 1}),
               "shape.json": json.dumps(dict(tuned, passkey=dict(tuned["passkey"], accuracy=[[1.0]])))}
        for name, text in bad.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        for name in list(bad) + ["missing.json"]:
            path = os.path.join(tmp, name)
            proc = run("--output", os.path.join(tmp, "out_bad"), path)
            err = proc.stderr.strip()
            check(proc.returncode == 2, f"{name}: exit code {proc.returncode}, expected 2 ({err})")
            check("Traceback" not in err and len(err.splitlines()) == 1, f"{name}: not a one-line error: {err}")
            check(path in err, f"{name}: error does not name the file: {err}")
    print("test_plot_eval: ok")


if __name__ == "__main__":
    main()
