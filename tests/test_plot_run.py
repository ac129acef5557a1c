#!/usr/bin/env python3
"""Self-check for trainer/plot_run.py: python tests/test_plot_run.py

Writes a synthetic metrics.jsonl (two segments, the second resuming below the first's last step as
a killed run does, evaluation steps, a non-finite step, a line cut by a crash), checks what the
script reads from it (the last record of each step, in step order; the cut line skipped), runs it
and checks the picture is a PNG of the expected size; then that bad inputs give a one-line error
with exit code 2. Exit code 0 on success, 1 with a message on the first failure.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "trainer", "plot_run.py")
sys.path.insert(0, os.path.join(HERE, "..", "trainer"))
import plot_run  # noqa: E402


def check(cond, message):
    if not cond:
        print(f"test_plot_run.py: FAIL: {message}", file=sys.stderr)
        sys.exit(1)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


# Synthetic values: any numbers do (none is a limit); what is checked is that they come back as written.
def record(step, segment, loss=None, evaluated=False):
    loss = 5.0 / math.sqrt(step) if loss is None else loss
    r = {"step": step, "loss": loss, "lr": 1e-3 * min(1.0, step / 10), "grad_norm": 1.0 + 0.1 * (step % 7),
         "tokens_per_s": 1000.0 + step, "tokens_seen": 4096 * step, "elapsed_s": 0.1 * step, "step_s": 0.1,
         "segment": segment}
    if evaluated:
        r["eval_loss"] = loss + 0.2
        r["eval_ppl"] = math.exp(loss + 0.2)
    return r


with tempfile.TemporaryDirectory() as tmp:
    run_dir = os.path.join(tmp, "my-run")
    os.makedirs(run_dir)
    lines = [json.dumps(record(s, 1, evaluated=s % 10 == 0)) for s in range(1, 36)]
    # Segment 2 resumed from the checkpoint at step 30: steps 31..35 are logged again.
    lines += [json.dumps(record(s, 2, evaluated=s % 10 == 0)) for s in range(31, 61)]
    lines[35 + 45 - 31] = json.dumps({**record(45, 2), "loss": None, "skipped": True})  # a non-finite step
    lines.append('{"step": 61, "loss": 0.5, "lr"')  # cut by a crash
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")

    records = plot_run.load(run_dir)
    check([r["step"] for r in records] == list(range(1, 61)), "steps 1..60 once each, in order")
    check(all(r["segment"] == (1 if r["step"] <= 30 else 2) for r in records),
          "a step logged by both segments keeps the resumed segment's record")
    steps, losses = plot_run.series(records, "loss")
    check(45 not in steps and len(steps) == 59, "the non-finite step is not on the loss line")
    ex, ey = plot_run.series(records, "eval_loss")
    check(ex == [10, 20, 30, 40, 50, 60], f"evaluation steps {ex}")
    # Exact: json.dumps writes the shortest repr of a float and json.loads reads the same float back.
    check(all(y == 5.0 / math.sqrt(x) + 0.2 for x, y in zip(ex, ey)), "evaluation losses as written")
    mx, my = plot_run.moving_average([1, 2, 3, 4], [1.0, None, 3.0, 5.0], 2)
    check(mx == [1, 2, 3, 4] and my == [1.0, 1.0, 3.0, 4.0], f"moving average {my}")

    p = run(run_dir)
    check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
    out = os.path.join(run_dir, "run.png")
    check(p.stdout.strip() == out, f"prints the path: {p.stdout!r}")
    with open(out, "rb") as f:
        head = f.read(24)
    check(head[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    check((width, height) == (9 * plot_run.DPI, 9 * plot_run.DPI), f"size {width}x{height}")
    other = os.path.join(tmp, "sub", "picture.png")
    check(run(run_dir, "--output", other).returncode == 0 and os.path.getsize(other) > 10000, "--output FILE")

    # Bad inputs: one line, exit code 2.
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    for args, needle in [((os.path.join(tmp, "nope"),), "no such file"), ((empty,), "no such file")]:
        p = run(*args)
        check(p.returncode == 2 and needle in p.stderr and p.stderr.count("\n") == 1, f"{args}: {p.stderr!r}")
    with open(os.path.join(empty, "metrics.jsonl"), "w") as f:
        f.write("")
    p = run(empty)
    check(p.returncode == 2 and "no records yet" in p.stderr, p.stderr)
    with open(os.path.join(empty, "metrics.jsonl"), "w") as f:
        f.write('{"loss": 1}\n')
    p = run(empty)
    check(p.returncode == 2 and "metrics.jsonl:1: expected a JSON object with an integer \"step\"" in p.stderr, p.stderr)
print("test_plot_run.py: ok")
