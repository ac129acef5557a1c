#!/usr/bin/env python3
"""A picture of a training run from its metrics.jsonl (`ropex train` draws it at the end; `ropex
plot-run RUN_DIR` on demand).

Usage: plot_run.py RUN_DIR [--output FILE]

Reads RUN_DIR/metrics.jsonl (one record per step: step, loss, lr, grad_norm, tokens_per_s,
segment, and eval_loss at evaluation steps) and writes FILE (default RUN_DIR/run.png): the
training loss (each step, and a moving average over about 2% of the steps) with the evaluation
loss, the learning rate, and the gradient norm, against the step; resumed segments are marked
with a dotted line, steps whose loss was not finite with a cross. Prints the path written. A
record cut short (a run killed mid-write) is skipped; a missing file, no records, or a record
without a step is a one-line error and exit code 2, like plot_eval.py.
"""
import argparse
import collections
import json
import math
import os
import sys

try:
    import matplotlib
except ImportError:
    print("plot_run.py: error: matplotlib is not installed for this Python "
          "(use .venv/bin/python, or pip install -r requirements.txt)", file=sys.stderr)
    sys.exit(2)
matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

DPI = 120


class InputError(Exception):
    pass


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load(run_dir):
    """The records of RUN_DIR/metrics.jsonl in step order (the last record of a step wins)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (is {run_dir} a ropex run directory?)")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})")
    by_step = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the next start rewrites the file without it
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            raise InputError(f"{path}:{n}: expected a JSON object with an integer \"step\"")
        by_step[rec["step"]] = rec
    if not by_step:
        raise InputError(f"{path}: no records yet")
    return [by_step[s] for s in sorted(by_step)]


def moving_average(xs, ys, window):
    """Mean of the finite values among the last `window` points, at each point (linear time)."""
    out_x, out_y, buf = [], [], collections.deque()
    total, count = 0.0, 0
    for x, y in zip(xs, ys):
        buf.append(y)
        if _finite(y):
            total, count = total + y, count + 1
        if len(buf) > window:
            old = buf.popleft()
            if _finite(old):
                total, count = total - old, count - 1
        if count:
            out_x.append(x)
            out_y.append(total / count)
    return out_x, out_y


def series(records, key):
    pts = [(r["step"], r[key]) for r in records if _finite(r.get(key))]
    return [p[0] for p in pts], [p[1] for p in pts]


def run_name(run_dir):
    """run.name from RUN_DIR/run_config.json (written by ropex train), else the folder's name."""
    try:
        with open(os.path.join(run_dir, "run_config.json"), encoding="utf-8") as f:
            name = json.load(f)["run"]["name"]
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return os.path.basename(os.path.normpath(run_dir))


def fmt_count(n):
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:g}"


def plot(records, out, title):
    fig, (ax_loss, ax_lr, ax_grad) = plt.subplots(3, 1, figsize=(9, 9), sharex=True, layout="constrained",
                                                  height_ratios=[2.2, 1, 1])
    steps, loss = series(records, "loss")
    window = max(1, len(records) // 50)
    ax_loss.plot(steps, loss, color="C0", alpha=0.3 if window > 1 else 1.0, linewidth=0.8, label="training loss")
    if window > 1:
        mx, my = moving_average(steps, loss, window)
        ax_loss.plot(mx, my, color="C0", linewidth=1.8, label=f"training loss, mean of {window} steps")
    ex, ey = series(records, "eval_loss")
    if ex:
        ax_loss.plot(ex, ey, "o-", color="C3", linewidth=1.5, markersize=5, label="evaluation loss")
    bad = [r["step"] for r in records if not _finite(r.get("loss")) or r.get("skipped")]
    if bad:
        top = max(loss + ey) if loss or ey else 1.0
        ax_loss.plot(bad, [top] * len(bad), "x", color="black", markersize=7, label="loss not finite (update skipped)")
    ax_loss.set_ylabel("loss (nats / token)")
    ax_loss.grid(True, alpha=0.3)

    lx, ly = series(records, "lr")
    ax_lr.plot(lx, ly, color="C2")
    ax_lr.set_ylabel("learning rate")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax_lr.grid(True, alpha=0.3)

    gx, gy = series(records, "grad_norm")
    ax_grad.plot(gx, gy, color="C4", linewidth=0.9)
    if gy and min(gy) > 0 and max(gy) / min(gy) > 50:
        ax_grad.set_yscale("log")
    ax_grad.set_ylabel("gradient norm\n(before clipping)")
    ax_grad.set_xlabel("step")
    ax_grad.grid(True, alpha=0.3)

    # Resumes: where the segment number changes.
    prev = None
    for r in records:
        seg = r.get("segment")
        if prev is not None and isinstance(seg, int) and seg != prev:
            for ax in (ax_loss, ax_lr, ax_grad):
                ax.axvline(r["step"] - 0.5, color="grey", linestyle=":", linewidth=1.2,
                           label="resumed" if ax is ax_loss else None)
        if isinstance(seg, int):
            prev = seg
    handles, labels = ax_loss.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax_loss.legend(uniq.values(), uniq.keys(), fontsize=9, loc="upper right")
    last = records[-1]
    tokens = last.get("tokens_seen")
    fig.suptitle(title + f" — {last['step']} steps" +
                 (f", {fmt_count(tokens)} tokens" if _finite(tokens) else ""))
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="a ropex run directory (holding metrics.jsonl)")
    ap.add_argument("--output", help="the PNG to write (default RUN_DIR/run.png)")
    args = ap.parse_args(argv)
    try:
        records = load(args.run_dir)
    except InputError as e:
        print(f"plot_run.py: error: {e}", file=sys.stderr)
        return 2
    out = args.output or os.path.join(args.run_dir, "run.png")
    try:
        if os.path.dirname(out):
            os.makedirs(os.path.dirname(out), exist_ok=True)
        plot(records, out, run_name(args.run_dir))
    except OSError as e:
        print(f"plot_run.py: error: {out}: cannot write ({e})", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
