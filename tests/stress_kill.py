#!/usr/bin/env python3
"""SIGKILL a 2-rank training job at random moments (start-up, resume and verification, training,
save, commit, prune) over and over, resuming each time, and check that nothing is lost:

  * after every kill, every checkpoint folder under RUN/checkpoints passes `ropex verify-checkpoint`
    (0 corrupt), and the newest one is never older than the newest one before the kill (0 lost);
  * once the job is let finish, its final state equals an uninterrupted run's, bit for bit (both
    exported to float32 by `ropex export`, whose writer is deterministic, and compared byte for byte).

Half of the launches save asynchronously (checkpoint.async), a quarter kill one rank a few
milliseconds before the other. Usage:

  python tests/stress_kill.py --ropex build/ropex --kills 200            # the full run (~10 min)
  python tests/stress_kill.py --ropex build/ropex --kills 8              # ctest's small version

Prints one line per kill and a summary; exit 0 when there were 0 corrupt and 0 lost checkpoints and
the final states are identical.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def sh(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(args)}\n{r.stdout}")
    return r.stdout


def setup(ropex, work):
    with open(os.path.join(work, "corpus.txt"), "w") as f:
        for d in range(40):
            f.write(" ".join(f"Document {d} sentence {s}: the {'quick' if s % 3 else 'slow'} fox number "
                             f"{(d * 31 + s * 7) % 97} jumps over {'lazy' if s % 2 else 'busy'} dogs." for s in range(12)))
            f.write("\n\n")
    sh([ropex, "train-tokenizer", "--input", f"{work}/corpus.txt", "--output", f"{work}/tok", "--vocab-size", "320"])
    sh([ropex, "new-model", "--output", f"{work}/model", "--tokenizer", f"{work}/tok.model", "--set", "hidden_size=32",
        "--set", "intermediate_size=64", "--set", "num_hidden_layers=2", "--set", "num_attention_heads=4",
        "--set", "num_key_value_heads=2", "--set", "max_position_embeddings=32"])
    sh([ropex, "prepare", "--tokenizer", f"{work}/tok.model", "--input", f"{work}/corpus.txt", "--output",
        f"{work}/store", "--txt-split", "blank_line"])
    # The tiny setup's training config (as tests/train_fixture.h): lr and weight decay are what it
    # trains with, not tolerances; every comparison here is exact (same arithmetic, same order).
    with open(f"{work}/run.json", "w") as f:
        f.write(f'''{{"model": {{"path": "{work}/model", "device": "cpu", "dtype": "float32"}},
  "data": {{"store": "{work}/store", "train_len": 32}},
  "rope": {{"type": "linear", "target_len": 128}}, "sampler": {{"name": "cream", "cream_mode": "relativity"}},
  "optim": {{"lr": 3e-3, "weight_decay": 0.01}},
  "schedule": {{"type": "cosine", "warmup_steps": 2, "steps": 80}},
  "batch": {{"micro_batch_size": 1, "grad_accum": 2}},
  "distributed": {{"zero_stage": 1, "bucket_mb": 0.01, "timeout_s": 20}},
  "checkpoint": {{"every": 1, "keep_last": 2}},
  "export": {{"at_end": false}}, "logging": {{"progress": "off"}}}}''')


def launch(ropex, work, run, extra):
    port = str(random.randint(20000, 40000))
    procs = []
    for r in range(2):
        env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1")
        log = open(f"{run}.rank{r}.log", "a")
        procs.append(subprocess.Popen([ropex, "train", f"{work}/run.json", "--set", f"run.output_dir={run}"] + extra,
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def checkpoints(run):
    root = os.path.join(run, "checkpoints")
    if not os.path.isdir(root):
        return []
    names = os.listdir(root)
    # A .step_X.old folder is a complete step_X moved aside while the same step is saved again; the
    # next start puts it back if the new one did not arrive.
    put_back = [d[1:-4] for d in names if d.startswith(".step_") and d.endswith(".old") and d[1:-4] not in names]
    return sorted([d for d in names if d.startswith("step_") and "." not in d] + put_back)


def export(ropex, ckpt, out):
    sh([ropex, "export", "--checkpoint", ckpt, "--output", out, "--dtype", "float32", "--max-shard-size", "0"])
    with open(os.path.join(out, "model.safetensors"), "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ropex", required=True)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    ropex = os.path.abspath(a.ropex)
    work = tempfile.mkdtemp(prefix="ropex-stress-")
    print(f"seed {seed}, work {work}", flush=True)
    setup(ropex, work)

    straight = f"{work}/straight"
    t0 = time.time()
    for p in launch(ropex, work, straight, []):
        if p.wait() != 0:
            sys.exit("the uninterrupted run failed: see " + straight + ".rank0.log")
    whole = time.time() - t0  # an uninterrupted run, start-up included
    startup = os.path.getctime(f"{straight}/metrics.jsonl") - t0  # to the first step's line
    reference = export(ropex, f"{straight}/checkpoints/step_00000080", f"{work}/export_straight")

    run = f"{work}/run"
    corrupt = lost = finished = during = 0
    newest = ""
    for k in range(a.kills):
        extra = ["--set", "checkpoint.async=true"] if random.random() < 0.5 else []
        procs = launch(ropex, work, run, extra)
        # A moment while the job still runs: start-up (resume and verification included) plus the
        # time the steps left would take.
        left = 1 - (int(newest[5:]) if newest else 0) / 80
        time.sleep(random.uniform(0.05, startup + (whole - startup) * left))
        staggered = random.random() < 0.25
        for i, p in enumerate(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            if staggered and i == 0:
                time.sleep(random.uniform(0.001, 0.05))
        codes = [p.wait() for p in procs]
        during += any(c != 0 for c in codes)  # killed while the job ran (not after it had ended)
        present = checkpoints(run)
        bad = []
        for c in present:
            folder = f"{run}/checkpoints/{c}"
            if not os.path.isdir(folder):
                folder = f"{run}/checkpoints/.{c}.old"
            r = subprocess.run([ropex, "verify-checkpoint", folder], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                bad.append(c + ": " + r.stdout.strip())
        corrupt += len(bad)
        if newest and (not present or present[-1] < newest):
            lost += 1
            print(f"  LOST: newest was {newest}, now {present[-1] if present else 'none'}")
        newest = present[-1] if present else newest
        print(f"kill {k + 1}/{a.kills}: exit {codes}, {'async' if extra else 'sync'}{', staggered' if staggered else ''}, "
              f"checkpoints {present[-2:] if present else '[]'}" + ("".join("\n  CORRUPT " + b for b in bad)), flush=True)
        if all(c == 0 for c in codes):  # it reached the end before the kill: start another run
            finished += 1
            got = export(ropex, f"{run}/checkpoints/step_00000080", f"{work}/export_{finished}")
            if got != reference:
                sys.exit(f"FAIL: run {finished} ended with other weights than the uninterrupted run")
            shutil.rmtree(run)
            for r in range(2):
                os.remove(f"{run}.rank{r}.log")
            newest = ""

    for p in launch(ropex, work, run, []):  # let it finish
        if p.wait() != 0:
            sys.exit("the final resume failed: see " + run + ".rank0.log")
    same = export(ropex, f"{run}/checkpoints/step_00000080", f"{work}/export_final") == reference
    print(f"{a.kills} kills, {during} of them while the job ran ({finished} runs reached the end first): {corrupt} corrupt checkpoints, "
          f"{lost} lost, final weights {'identical to' if same else 'DIFFERENT from'} the uninterrupted run")
    if not a.keep:
        shutil.rmtree(work)
    return 0 if corrupt == 0 and lost == 0 and same else 1


if __name__ == "__main__":
    sys.exit(main())
