#!/usr/bin/env python3
"""ropex's GPU check: one prepared call that proves the CUDA path on a GPU node.

Runs six stages in order, each with a time budget of its own, and ends with one table:

  env           torch / CUDA / cuDNN / NCCL versions, the GPU, nvidia-smi, the CPU; the machine's
                ceilings (GPU: bf16 8192^3 matmul TFLOP/s and a 1 GiB device-to-device copy;
                CPU: float32 1024^3 matmul GFLOP/s and a 256 MiB copy); `ropex device-check env`
  fp32-parity   `ropex device-check parity`: ropex's float32 step against its reference
  bf16-vs-hf    a random Llama saved in Hugging Face format; ropex's bfloat16 logits and loss
                (`ropex device-check logits`) and transformers' own bfloat16 ones, both measured
                against transformers in float32 (TF32 off, eager attention); ropex may be no
                further from the float32 answer than transformers' bf16 path, up to one bf16 rounding
  sdpa          `ropex device-check sdpa`: the attention backend ropex picks per shape, each backend's
                forward+backward time and its errors (output, dq, dk, dv) against float32
  train-resume  a tokenizer, tiny model and token store from the repository's own text;
                configs/debug_tiny.json on the device (GPU: bfloat16 with float32 masters) with the
                real NCCL (Gloo) backend on one rank, stopped at step 20 (ZeRO-0), resumed to 40 as
                ZeRO-1, exported; the loss must fall
  bench         `ropex bench` against bench/baseline_hf.py (transformers eager and torch.compile):
                tokens/s, MFU, peak memory against ropex's plan (GPU: TinyLlama-1.1B and Llama-2-7B
                shapes at 4096 tokens, bf16, activation checkpointing)

--cpu is a dry run of every stage's logic on the CPU (Gloo, tiny shapes), for CI: same commands,
same table, a few minutes on two cores.

The whole run has a deadline (--deadline; 600 s on a GPU, 540 s with --cpu) that shortens a stage's
budget when earlier stages were slow, keeping 20 s for each stage still to come.
Every command runs as a process group of its own (start_new_session) under the stage's budget:
one that overruns is killed with its whole group (SIGKILL), the stage is marked `timeout`, and the
next stage runs. A stage whose command fails is `fail`, with the last lines of its output in the
log. The script never stops at the first failure; it exits 1 if any stage did not pass, else 0.

What comes back (--out DIR gets exactly these four files, rewritten as the stages end):
  gpu-check.log   every stage's commands and their full output, in order, a header per stage
  table.md        | stage | result | figure | pass |, then the bench rows
  summary.json    per stage: name, result, figure, pass, seconds, details
  bench.jsonl     the raw JSON lines of the bench stage
Everything else (models, token stores, checkpoints, the commands' output files) goes to --work, a
fresh temporary folder removed at the end unless --keep-work (a folder given with --work is kept).

It does not build ropex (./run.sh gpu-check does), download anything, tune anything, or compare
against numbers from other machines: the figures are this machine's. The bench targets (MFU,
ratios to transformers) are reported as met or missed; they do not fail the stage.

Usage: ./run.sh gpu-check [--cpu] [--out DIR] [--only STAGE,...], or directly
    python bench/gpu_check.py --ropex build/ropex --out DIR [--cpu] [--only env,bench] [--work DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

SELF = Path(__file__).resolve()
REPO = SELF.parent.parent

# Stage name -> time budget in seconds (GPU, --cpu).
# Budgets are ceilings, not expectations: on an H200 the stages before bench take about 2 minutes
# together and bench about 6 (six runs, two of them torch.compile's), so the call fits in about 8
# minutes plus the build; the 7B compile run is what the bench budget is sized for.
BUDGETS = {
    "env": (60, 45),
    "fp32-parity": (90, 60),
    "bf16-vs-hf": (150, 120),
    "sdpa": (90, 45),
    "train-resume": (180, 120),
    "bench": (420, 180),
}
# The whole run's ceiling (GPU, --cpu), under the stages' own: a stage gets at most what is left of
# it, less STAGE_RESERVE for each stage after it, so a slow stage cannot starve the rest. On the GPU
# node: 10 minutes of stages + the machine's start and the build stay inside a 15-minute allowance.
DEADLINE = (600, 540)
STAGE_RESERVE = 20
OUT_FILES = ("gpu-check.log", "table.md", "summary.json", "bench.jsonl")


# ---------------------------------------------------------------------------------------------
# Small formatting helpers
# ---------------------------------------------------------------------------------------------

def sci(x) -> str:
    """2 significant digits, short exponent: 3.1e-7."""
    if x is None:
        return "n/a"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x == 0 or not math.isfinite(x):
        return str(x) if x != 0 else "0"
    mantissa, exp = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exp)}"


def num(x, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def tok_s(x) -> str:
    if x is None:
        return "n/a"
    return f"{x / 1e3:.1f}k" if x >= 1e4 else f"{x:.0f}"


def tail(text: str, n: int = 15) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    return "\n".join(lines[-n:])


def reason(text: str) -> str:
    """The line of a failed command's output most likely to say why (for the table)."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for line in reversed(lines):
        if re.search(r"error|unknown|failed|exception|what\(\)|not found|no such", line, re.I):
            return line[:200]
    return lines[-1][:200] if lines else "no output"


def json_line(text: str):
    """The last line of `text` that is a JSON object, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def cell(text) -> str:
    """Text for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap(p: subprocess.Popen) -> None:
    """Waits for a killed process, but not forever: one stuck in the kernel (a wedged GPU driver)
    does not die even of SIGKILL, and the check must go on without it."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Stages: running commands under a budget
# ---------------------------------------------------------------------------------------------

class StageFail(Exception):
    """Ends a stage as failed; the message is the table's figure."""


class Proc:
    def __init__(self, argv, rc, out, err, seconds, limit, timed_out):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.seconds, self.limit, self.timed_out = seconds, limit, timed_out

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    @property
    def text(self) -> str:
        return self.out + ("\n" + self.err if self.err else "")


class Check:
    """What every stage shares: arguments, folders, the log."""

    def __init__(self, args):
        self.args = args
        self.cuda = not args.cpu
        self.device = "cuda" if self.cuda else "cpu"
        self.ropex = str(Path(args.ropex).resolve())
        self.out = Path(args.out)
        self.work = Path(args.work)
        self.started = datetime.datetime.now().isoformat(timespec="seconds")
        self.deadline = time.monotonic() + args.deadline * args.budget_scale
        self.sdpa_without_cudnn = False  # set by the sdpa stage when ropex's choice failed there
        self.logf = open(self.out / "gpu-check.log", "w", encoding="utf-8")

    def log(self, text: str = "") -> None:
        self.logf.write(text + ("\n" if not text.endswith("\n") else ""))
        self.logf.flush()


class Stage:
    def __init__(self, check: Check, name: str, budget: float):
        self.check, self.name, self.budget = check, name, budget
        self.deadline = time.monotonic() + budget
        self.details: dict = {}
        self.timed_out = False  # a command overran (or the budget ran out before one)
        self.n = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, argv, *, limit: float | None = None, env: dict | None = None, cwd=None, merge=False) -> Proc:
        """Runs argv in a process group of its own, for at most `limit` seconds and never past the
        stage's deadline; stdout and stderr go to files under WORK/logs (no pipe can fill up and
        nothing read from it can hang), then into the log. merge: one stream, in order."""
        argv = [str(a) for a in argv]
        left = self.remaining()
        if left < 1:
            self.timed_out = True
            self.check.log(f"$ {shlex.join(argv)}\n[not run: the stage's {self.budget:.0f} s are spent]")
            short = " ".join(Path(a).name if "/" in a else a for a in argv[:3])
            raise StageFail(f"time budget ({self.budget:.0f} s) spent before `{short}`")
        limit = left if limit is None else max(1.0, min(limit, left))
        self.n += 1
        logs = self.check.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out_path = logs / f"{self.name}-{self.n}.out"
        err_path = logs / f"{self.name}-{self.n}.err"
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        extra = "".join(f"{k}={v} " for k, v in (env or {}).items())
        self.check.log(f"$ {extra}{shlex.join(argv)}" + (f"   (in {cwd})" if cwd else "") + f"   [limit {limit:.0f} s]")
        t0 = time.monotonic()
        rc, timed_out, spawn_error = None, False, ""
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            try:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=subprocess.STDOUT if merge else fe,
                                     cwd=cwd, env=full_env, start_new_session=True)
            except OSError as e:
                rc, spawn_error = 127, f"cannot start {argv[0]}: {e}"
            else:
                try:
                    rc = p.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    kill_group(p.pid)
                    reap(p)
                except BaseException:  # interrupted: take the group down with us
                    kill_group(p.pid)
                    reap(p)
                    raise
                # Whatever the command left running in its group (compile workers, ...) goes too.
                kill_group(p.pid)
        seconds = time.monotonic() - t0
        out = out_path.read_text(errors="replace")
        err = spawn_error or err_path.read_text(errors="replace")
        if merge:
            self.check.log("--- output (stdout and stderr) ---\n" + out)
        else:
            self.check.log("--- stdout ---\n" + out)
            self.check.log("--- stderr ---\n" + err)
        if timed_out:
            self.timed_out = True
            self.check.log(f"[timeout after {seconds:.1f} s: process group killed]\n")
        else:
            self.check.log(f"[exit {rc}, {seconds:.1f} s]\n")
        return Proc(argv, rc, out, err, seconds, limit, timed_out)

    def failure(self, p: Proc, what: str) -> str:
        """Logs why p failed (the last lines of its output) and returns a one-line reason."""
        if p.timed_out:
            why = f"{what}: no result within {p.limit:.0f} s (process group killed)"
        else:
            why = f"{what}: exit {p.rc}: {reason(p.text)}"
        last = tail(p.text)
        self.check.log(f"!! {why}\n-- last lines of {what} --\n{last}\n")
        self.details.setdefault("failures", []).append(
            {"command": shlex.join(p.argv), "exit": p.rc, "timed_out": p.timed_out, "last_lines": last})
        return why

    def require(self, p: Proc, what: str) -> None:
        if not p.ok:
            raise StageFail(self.failure(p, what))

    def json_of(self, p: Proc, what: str) -> dict:
        """The JSON line p printed on stdout. A command may print one and still exit non-zero (a
        check that failed); without a line, its failure (or the missing line) fails the stage."""
        j = None if p.timed_out else json_line(p.out)
        if j is None:
            self.require(p, what)
            raise StageFail(self.failure(p, f"{what} printed no JSON line"))
        return j


# ---------------------------------------------------------------------------------------------
# Stage 1: env
# ---------------------------------------------------------------------------------------------

def stage_env(c: Check, st: Stage):
    # The measurements run in a child so that the budget holds even if the GPU hangs; a third of
    # the budget is kept for ropex's own look, which runs whatever the child did.
    problems = []
    p_py = st.run([sys.executable, SELF, "_env_child", "--device", c.device], limit=st.remaining() * 2 / 3)
    py = json_line(p_py.out) if p_py.ok else None
    if py is None:
        problems.append(st.failure(p_py, "python environment and ceilings"))
    rx = None
    try:
        p_rx = st.run([c.ropex, "device-check", "env", "--device", c.device])
        rx = json_line(p_rx.out) if p_rx.ok else None
        if rx is None:
            problems.append(st.failure(p_rx, "ropex device-check env"))
    except StageFail as e:  # the budget ran out
        problems.append(str(e))
    st.details.update(python=py, ropex=rx)

    parts = []
    if py:
        versions = f"torch {py.get('torch')}"
        if c.cuda:
            gpu = str(py.get("gpu") or "no GPU").removeprefix("NVIDIA ")
            parts.append(f"{gpu}, bf16 {num(py.get('matmul_tflops'), '.0f')} TFLOP/s, "
                         f"copy {num(py.get('copy_gb_s'), '.0f')} GB/s")
            versions += f", cuDNN {py.get('cudnn')}, NCCL {py.get('nccl')}"
        else:
            parts.append(f"{py.get('cpu_model')} ({py.get('cpu_count')} cores), fp32 "
                         f"{num(py.get('matmul_gflops'), '.0f')} GFLOP/s, copy {num(py.get('copy_gb_s'), '.1f')} GB/s")
        parts.append(versions)
    if rx is not None:
        parts.append(f"ropex sees CUDA: {str(rx.get('cuda_available')).lower()}, NCCL built: "
                     f"{str(rx.get('nccl_built')).lower()}, expandable segments: {str(rx.get('expandable_segments')).lower()}, "
                     f"SDPA order {rx.get('sdpa_order')}")
    passed = not problems
    if c.cuda and rx is not None and rx.get("cuda_available") is not True:
        passed = False
        problems.append("ropex does not see CUDA")
    return passed, "; ".join(parts + problems)


def env_child(argv) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check.py _env_child")
    ap.add_argument("--device", choices=["cuda", "cpu"], required=True)
    a = ap.parse_args(argv)
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads()}
    try:
        info["cudnn"] = torch.backends.cudnn.version()
    except Exception as e:  # noqa: BLE001 - a version we cannot read is reported, not fatal
        info["cudnn"] = f"unknown ({e})"
    try:
        v = torch.cuda.nccl.version()
        info["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception as e:  # noqa: BLE001
        info["nccl"] = f"unknown ({type(e).__name__})"
    info["nvidia_smi"] = nvidia_smi()
    if a.device == "cuda":
        if not torch.cuda.is_available():
            info["error"] = "torch.cuda.is_available() is false"
            print(json.dumps(info))
            return 1
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", gpu_count=torch.cuda.device_count(),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1))
        info.update(gpu_ceilings(torch))
    else:
        info.update(cpu_ceilings(torch))
    print(json.dumps(info))
    return 0


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def nvidia_smi():
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        r = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip() or r.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"failed: {e}"


def gpu_ceilings(torch) -> dict:
    def median_ms(fn, warmup=3, iters=10):
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            e1.synchronize()
            times.append(e0.elapsed_time(e1))
        return statistics.median(times)

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    mm_ms = median_ms(lambda: torch.matmul(a, b, out=c))
    a = b = c = None  # freed before the copy's buffers (the timed lambda is done with them)
    nbytes = 1 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_(0, 256)
    dst = torch.empty_like(src)
    cp_ms = median_ms(lambda: dst.copy_(src))
    src = dst = None
    torch.cuda.empty_cache()
    return {"matmul": f"bf16 {n}x{n}x{n}", "matmul_ms": mm_ms, "matmul_tflops": 2 * n**3 / (mm_ms * 1e-3) / 1e12,
            "copy": "1 GiB device to device", "copy_ms": cp_ms, "copy_gb_s": 2 * nbytes / (cp_ms * 1e-3) / 1e9}


def cpu_ceilings(torch) -> dict:
    def median_ms(fn, warmup=3, iters=10):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)

    n = 1024
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    mm_ms = median_ms(lambda: torch.matmul(a, b, out=c))
    nbytes = 256 << 20
    src = torch.empty(nbytes, dtype=torch.uint8).random_(0, 256)
    dst = torch.empty_like(src)
    cp_ms = median_ms(lambda: dst.copy_(src))
    return {"matmul": f"float32 {n}x{n}x{n}", "matmul_ms": mm_ms, "matmul_gflops": 2 * n**3 / (mm_ms * 1e-3) / 1e9,
            "copy": "256 MiB", "copy_ms": cp_ms, "copy_gb_s": 2 * nbytes / (cp_ms * 1e-3) / 1e9}


# ---------------------------------------------------------------------------------------------
# Stage 2: fp32-parity
# ---------------------------------------------------------------------------------------------

def stage_parity(c: Check, st: Stage):
    p = st.run([c.ropex, "device-check", "parity", "--device", c.device, "--json"])
    j = st.json_of(p, "ropex device-check parity")
    st.details.update(j)
    tol = j.get("tolerances") or {}
    tol_text = ", ".join(f"{k} {sci(v) if isinstance(v, (int, float)) else v}" for k, v in tol.items())
    figure = (f"loss rel {sci(j.get('loss_rel'))}, worst grad rel {sci(j.get('grad_rel_max'))} ({j.get('grad_worst')}), "
              f"step rel {sci(j.get('param_rel_max'))}, step excess {sci(j.get('step_excess'))} (tol {tol_text or 'n/a'}; "
              f"attention {j.get('attention_backend')})")
    if not p.ok:
        figure += f"; exit {p.rc}"
    return j.get("pass") is True and p.ok, figure


# ---------------------------------------------------------------------------------------------
# Stage 3: bf16-vs-hf
# ---------------------------------------------------------------------------------------------

def bf16_shapes(device: str) -> tuple[dict, tuple[int, int]]:
    if device == "cuda":
        cfg = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=4,
                   num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=4096)
        return cfg, (2, 1024)
    cfg = dict(vocab_size=1000, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return cfg, (2, 128)


def stage_bf16(c: Check, st: Stage):
    d = c.work / "bf16"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    p = st.run([sys.executable, SELF, "_bf16_make", "--work", d, "--device", c.device])
    st.require(p, "making the model and input ids")
    p = st.run([c.ropex, "device-check", "logits", "--model", d / "model", "--input", d / "ids.safetensors",
                "--output", d / "ropex.safetensors", "--device", c.device, "--dtype", "bfloat16"])
    st.require(p, "ropex device-check logits")
    p = st.run([sys.executable, SELF, "_bf16_compare", "--work", d, "--device", c.device])
    st.require(p, "transformers float32 / bfloat16 and the comparison")
    j = st.json_of(p, "the comparison")
    st.details.update(j)
    errs = [j[k] for k in ("ropex_logit_err", "hf_logit_err", "ropex_loss_err", "hf_loss_err")]
    # Both ropex and transformers' bf16 path compute in bfloat16 with float32 accumulation, so both
    # are some way from the float32 answer (a few 1e-3 of the logits' norm, dominated by the bf16
    # weights and activations both share). ropex may differ in rounding (its fused RMSNorm rounds
    # once where transformers rounds twice) but not in kind: its logits error at most 1.25x
    # transformers' own. Anything done in the wrong precision or order (RoPE in bf16, a norm in
    # bf16) moves it by a factor of several. The loss, a mean over every token, errs by ~1e-4 nats in
    # both; 1.25x transformers' plus 1e-3 nats.
    passed = (all(math.isfinite(e) for e in errs)
              and j["ropex_logit_err"] <= 1.25 * j["hf_logit_err"]
              and j["ropex_loss_err"] <= 1.25 * j["hf_loss_err"] + 1e-3)
    ratio = j["ropex_logit_err"] / j["hf_logit_err"] if j["hf_logit_err"] else float("nan")
    figure = (f"logits rel err ropex {sci(j['ropex_logit_err'])} vs transformers {sci(j['hf_logit_err'])} "
              f"(x{ratio:.2f}, limit x1.25); loss |err| {sci(j['ropex_loss_err'])} vs {sci(j['hf_loss_err'])}")
    return passed, figure


def bf16_make(argv) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check.py _bf16_make")
    ap.add_argument("--work", required=True)
    ap.add_argument("--device", choices=["cuda", "cpu"], required=True)
    a = ap.parse_args(argv)
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    shape, (batch, seq) = bf16_shapes(a.device)
    cfg = LlamaConfig(**shape, rms_norm_eps=1e-5, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)  # float32, transformers' own init (normal, std initializer_range = 0.02)
    model.save_pretrained(os.path.join(a.work, "model"), safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=g, dtype=torch.int64)
    save_file({"input_ids": ids}, os.path.join(a.work, "ids.safetensors"))
    print(json.dumps({"config": shape, "input_ids": [batch, seq]}))
    return 0


def bf16_compare(argv) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check.py _bf16_compare")
    ap.add_argument("--work", required=True)
    ap.add_argument("--device", choices=["cuda", "cpu"], required=True)
    a = ap.parse_args(argv)
    import torch
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM

    dev = torch.device(a.device)
    # The reference is true float32: no TF32 in matmuls or convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model_dir = os.path.join(a.work, "model")
    ids = load_file(os.path.join(a.work, "ids.safetensors"))["input_ids"].to(dev)
    rx = load_file(os.path.join(a.work, "ropex.safetensors"))
    if "logits" not in rx or "loss" not in rx:
        raise SystemExit(f"ropex.safetensors holds {sorted(rx)}, expected logits and loss")

    def run(dtype, attn):
        model = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn).to(dev).eval()
        got = {p.dtype for p in model.parameters()}
        if got != {dtype}:  # (an older transformers ignores `dtype` silently: it wanted torch_dtype)
            raise SystemExit(f"transformers loaded the model as {got}, not {dtype}")
        with torch.no_grad():
            out = model(input_ids=ids, labels=ids)
        logits, loss = out.logits.detach(), float(out.loss)
        del model, out
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return logits, loss

    ref_logits, ref_loss = run(torch.float32, "eager")
    hf_logits, hf_loss = run(torch.bfloat16, "sdpa")
    if tuple(rx["logits"].shape) != tuple(ref_logits.shape):
        raise SystemExit(f"ropex logits have shape {list(rx['logits'].shape)}, transformers' {list(ref_logits.shape)}")

    def rel_err(x, ref, rows=256):
        """||x - ref||_F / ||ref||_F in float64 on the device, a few rows of [B*T, V] at a time."""
        x, ref = x.reshape(-1, x.shape[-1]), ref.reshape(-1, ref.shape[-1])
        num = torch.zeros((), dtype=torch.float64, device=dev)
        den = torch.zeros((), dtype=torch.float64, device=dev)
        for i in range(0, ref.shape[0], rows):
            r = ref[i:i + rows].to(dev, torch.float64)
            num += (x[i:i + rows].to(dev, torch.float64) - r).square().sum()
            den += r.square().sum()
        return float((num.sqrt() / den.sqrt()).item())

    rx_loss = float(rx["loss"].float().item())
    res = {"shape": list(ref_logits.shape), "ref_loss": ref_loss, "ropex_loss": rx_loss, "hf_bf16_loss": hf_loss,
           "ropex_logit_err": rel_err(rx["logits"], ref_logits), "hf_logit_err": rel_err(hf_logits, ref_logits),
           "ropex_loss_err": abs(rx_loss - ref_loss), "hf_loss_err": abs(hf_loss - ref_loss),
           "ropex_logits_dtype": str(rx["logits"].dtype), "hf_bf16_logits_dtype": str(hf_logits.dtype)}
    print(json.dumps(res))
    return 0


# ---------------------------------------------------------------------------------------------
# Stage 4: sdpa
# ---------------------------------------------------------------------------------------------

def stage_sdpa(c: Check, st: Stage):
    p = st.run([c.ropex, "device-check", "sdpa", "--device", c.device, "--json"])
    j = st.json_of(p, "ropex device-check sdpa")
    st.details.update(j)
    parts = []
    for s in j.get("shapes") or []:
        ms = {k: v for k, v in (s.get("ms") or {}).items() if v is not None}
        choice = s.get("choice")
        # Every backend that ran the shape, fastest first (flash against cuDNN is the question).
        times = ", ".join(f"{k} {ms[k]:.3g} ms" for k in sorted(ms, key=ms.get))
        err, gerr = (s.get("err") or {}).get(choice), (s.get("grad_err") or {}).get(choice)
        failed = (s.get("errors") or {}).get(choice)
        bad = failed or err is None or gerr is None or err > j.get("tolerance", 0) or gerr > j.get("grad_tolerance", 0)
        if bad and choice == "cudnn":
            c.sdpa_without_cudnn = True
        parts.append(f"{s.get('name')}: {choice}, err {sci(err)} / grads {sci(gerr)}" + (f" ({times})" if times else "")
                     + (f" FAILED: {failed}" if failed else ""))
    if c.sdpa_without_cudnn:
        parts.append("the bench runs ropex without cuDNN attention (--sdpa-backends flash,efficient,math)")
    figure = "; ".join(parts) or "no shapes"
    if not p.ok:
        figure += f"; exit {p.rc}"
    return j.get("pass") is True and p.ok, figure


# ---------------------------------------------------------------------------------------------
# Stage 5: train-resume
# ---------------------------------------------------------------------------------------------

def corpus_files() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "bench").glob("*.md")), REPO / "configs" / "README.md"]
    for sub in ("models", "trainer", "data"):
        files += sorted(p for p in (REPO / sub).rglob("*") if p.suffix in (".cpp", ".h") and p.is_file())
    return [f for f in files if f.is_file()]


def stage_train(c: Check, st: Stage):
    d = c.work / "train"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    files = corpus_files()
    corpus = d / "corpus.txt"
    with open(corpus, "w", encoding="utf-8") as f:
        for p in files:
            f.write(p.read_text(encoding="utf-8", errors="replace").rstrip("\n") + "\n\n")
    st.details["corpus"] = {"files": len(files), "bytes": corpus.stat().st_size}
    c.log(f"corpus: {len(files)} files of the repository, {corpus.stat().st_size} bytes -> {corpus}")

    # As ./run.sh debug-tiny makes its data.
    st.require(st.run([c.ropex, "train-tokenizer", "--input", corpus, "--output", d / "tok", "--vocab-size", "500"],
                      merge=True), "ropex train-tokenizer")
    st.require(st.run([c.ropex, "new-model", "--output", d / "model", "--overwrite", "--tokenizer", d / "tok.model",
                       "--set", "hidden_size=64", "--set", "intermediate_size=128", "--set", "num_hidden_layers=2",
                       "--set", "num_attention_heads=4", "--set", "num_key_value_heads=2",
                       "--set", "max_position_embeddings=64"], merge=True), "ropex new-model")
    st.require(st.run([c.ropex, "prepare", "--tokenizer", d / "tok.model", "--input", corpus, "--output", d / "store",
                       "--txt-split", "blank_line"], merge=True), "ropex prepare")

    config = REPO / "configs" / "debug_tiny.json"
    steps = json.loads(config.read_text())["schedule"]["steps"]
    backend = "nccl" if c.cuda else "gloo"
    run_dir = d / "run"
    train = [c.ropex, "train", config, "--set", f"model.path={d / 'model'}", "--set", f"data.store={d / 'store'}",
             "--set", f"run.output_dir={run_dir}", "--set", f"model.device={c.device}", "--set", "model.dtype=auto",
             "--set", f"distributed.backend={backend}", "--set", "distributed.collectives_with_one_rank=true",
             "--set", "logging.progress=off"]
    if c.sdpa_without_cudnn:  # the sdpa stage saw cuDNN attention fail here: keep it out of this stage's verdict
        train += ["--set", "model.sdpa_backends=flash,efficient,math"]
    # The first half replicated (ZeRO-0: all-reduce), the second resumed sharded (ZeRO-1: reduce-
    # scatter and all-gather, the sharded fused AdamW); model.dtype auto is bfloat16 (float32 masters)
    # on the GPU, float32 on the CPU.
    # One rank: the backend runs over an in-process store (no port, no launcher variables).
    first = st.run(train + ["--set", "run.stop_after=20", "--set", "distributed.zero_stage=0"], cwd=d, merge=True)
    # run.stop_after ends with a checkpoint and status 0 (trainer/cmd_train.cpp: only a signal gives
    # 75); 75 is accepted too, the resume below is what matters.
    st.details["first_run_exit"] = first.rc
    if first.timed_out or first.rc not in (0, 75):
        raise StageFail(st.failure(first, "ropex train (to step 20)"))
    second = st.run(train + ["--set", "distributed.zero_stage=1"], cwd=d, merge=True)
    st.require(second, "ropex train (resumed, to the end)")

    m = re.search(r"resumed from .*? at step (\d+)", second.out)
    records = []
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            with contextlib.suppress(ValueError):
                r = json.loads(line)
                if isinstance(r, dict) and isinstance(r.get("loss"), (int, float)) and "step" in r:
                    records.append(r)
    records.sort(key=lambda r: r["step"])
    exported = (run_dir / "export" / "config.json").is_file()
    st.details.update(steps=steps, backend=backend, resumed_at=int(m.group(1)) if m else None,
                      logged_steps=len(records), export=exported)
    problems = []
    if not m:
        problems.append("the second run's log has no 'resumed from ... at step N'")
    if not records:
        raise StageFail(f"no loss records in {metrics}")
    first_loss, last_loss = records[0]["loss"], records[-1]["loss"]
    st.details.update(first_step=records[0]["step"], first_loss=first_loss, last_step=records[-1]["step"],
                      last_loss=last_loss)
    if not last_loss < first_loss:
        problems.append("the loss did not fall")
    if records[-1]["step"] != steps:
        problems.append(f"metrics end at step {records[-1]['step']}, not {steps}")
    if not exported:
        problems.append("no export/config.json")
    dtype = "bfloat16" if c.cuda else "float32"
    figure = (f"loss {first_loss:.2f} -> {last_loss:.2f} over {records[-1]['step']} steps, {dtype}, "
              f"resumed at {m.group(1) if m else '?'} from ZeRO-0 into ZeRO-1, {backend}")
    return not problems, "; ".join([figure] + problems)


# ---------------------------------------------------------------------------------------------
# Stage 6: bench
# ---------------------------------------------------------------------------------------------

# Relative time each kind of run gets: each run's limit is its weight's share of what is left of
# the stage's budget, over the runs still to come (a run that ends early leaves its time to them,
# none can take more than its share). torch.compile's compilation runs in the warm-up.
BENCH_WEIGHTS = {"ropex": 1.0, "hf-eager": 1.2, "hf-compile": 3.5}
# GPU targets (reported as met / missed, not a failure): MFU per shape, and ropex's tokens/s
# against transformers eager and torch.compile at every shape.
MFU_TARGETS = {"tinyllama-1.1b": 0.50, "llama2-7b": 0.40}
RATIO_TARGETS = {"hf-eager": 1.2, "hf-compile": 1.0}


def bench_runs(c: Check):
    common = ["--device", c.device, "--warmup", "2", "--steps", "5", "--breakdown-steps", "1", "--json"]
    if c.cuda:
        shapes = [(s, ["--shape", s, "--seq", "4096", "--batch", "1", "--dtype", "bfloat16", "--ckpt"])
                  for s in ("tinyllama-1.1b", "llama2-7b")]
        hf_extra = []
    else:
        shapes = [("debug", ["--shape", "debug", "--seq", "256", "--batch", "1", "--dtype", "float32", "--ckpt"])]
        hf_extra = ["--threads", "2"]
    baseline = [sys.executable, REPO / "bench" / "baseline_hf.py"]
    # cuDNN attention first unless the sdpa stage saw it fail on this machine.
    ropex_extra = ["--sdpa-backends", "flash,efficient,math"] if c.sdpa_without_cudnn else []
    # In order of what the figures need most, so that a run cut by the deadline is the least
    # needed: ropex at every shape, then transformers eager, then torch.compile (the slowest to start).
    runs = [(shape, "ropex", [c.ropex, "bench", *a, *common, *ropex_extra]) for shape, a in shapes]
    runs += [(shape, "hf-eager", [*baseline, *a, *common, *hf_extra]) for shape, a in shapes]
    runs += [(shape, "hf-compile", [*baseline, *a, *common, *hf_extra, "--compile"]) for shape, a in shapes]
    return runs


def stage_bench(c: Check, st: Stage):
    runs = bench_runs(c)
    rows = st.details["rows"] = []
    for i, (shape, impl, argv) in enumerate(runs):
        row = {"shape": shape, "impl": impl}
        rows.append(row)
        left = st.remaining()
        if left < 1:
            st.timed_out = True
            row["error"] = "not run: the stage's time budget is spent"
            c.log(f"$ {shlex.join(map(str, argv))}\n[not run: the stage's {st.budget:.0f} s are spent]\n")
            continue
        weight_left = sum(BENCH_WEIGHTS[r[1]] for r in runs[i:])
        limit = left * BENCH_WEIGHTS[impl] / weight_left
        # Every run gets the allocator setting ropex gives itself (trainer/cuda_allocator.h), unless
        # the caller chose one. On a CPU of few cores torch.compile's background compile workers
        # compete with the timed steps (measured: 156 tok/s against 5349 with one compile thread).
        env = {}
        if "PYTORCH_ALLOC_CONF" not in os.environ and "PYTORCH_CUDA_ALLOC_CONF" not in os.environ:
            env["PYTORCH_ALLOC_CONF"] = "expandable_segments:True"
        if impl == "hf-compile" and not c.cuda:
            env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
        try:
            p = st.run(argv, limit=limit, env=env)
        except StageFail as e:  # the budget ran out in between
            row["error"] = str(e)
            continue
        j = None if p.timed_out else json_line(p.out)
        if j is not None:
            with open(c.out / "bench.jsonl", "a") as f:
                f.write(next(l.strip() for l in reversed(p.out.splitlines()) if json_line(l) is not None) + "\n")
            row.update({k: j.get(k) for k in ("tokens_per_s", "mfu", "peak_mem_gib", "plan_without_allowance_gib",
                                              "step_ms", "error")})
        row["seconds"] = round(p.seconds, 1)
        if p.timed_out:
            row["error"] = f"timeout after {p.seconds:.0f} s"
        elif row.get("tokens_per_s") is None and not row.get("error"):
            row["error"] = f"exit {p.rc}: {reason(p.text)}"
        if row.get("tokens_per_s") is None:
            st.failure(p, f"bench {shape} {impl}")

    figures, targets = [], {}
    for shape in dict.fromkeys(r["shape"] for r in rows):
        by = {r["impl"]: r for r in rows if r["shape"] == shape}
        rx = by.get("ropex", {})
        tps = rx.get("tokens_per_s")
        bits = [f"ropex {tok_s(tps)} tok/s"]

        def mark(name, value, target):
            if not c.cuda or target is None or value is None:
                return ""
            met = value >= target
            targets[f"{shape} {name}"] = {"value": value, "target": target, "met": met}
            return f" ({'met' if met else 'missed'} >= {target:g})"

        if rx.get("mfu") is not None:
            bits.append(f"MFU {rx['mfu']:.2f}" + mark("mfu", rx["mfu"], MFU_TARGETS.get(shape)))
        for impl, label in (("hf-eager", "eager"), ("hf-compile", "compile")):
            other = by.get(impl, {}).get("tokens_per_s")
            if tps and other:
                ratio = tps / other
                bits.append(f"x{ratio:.2f} {label}" + mark(f"ropex/{label}", ratio, RATIO_TARGETS[impl]))
            else:
                bits.append(f"{label} n/a")
        peak, plan = rx.get("peak_mem_gib"), rx.get("plan_without_allowance_gib")
        if peak is not None and plan:
            bits.append(f"peak {peak:.3g} GiB vs plan {plan:.3g} ({peak / plan:.2f})")
        else:
            bits.append(f"peak n/a, plan {num(plan, '.3g')} GiB")
        figures.append(f"{shape}: " + ", ".join(bits))
    st.details["targets"] = targets
    failed, unmeasured = bench_verdict(rows)
    figure = "; ".join(figures)
    if unmeasured:
        figure += f"; not measured in time: {', '.join(unmeasured)}"
    if failed:
        figure += f"; no number from {', '.join(failed)}"
    return not failed, figure


def bench_verdict(rows) -> tuple[list[str], list[str]]:
    """(runs that failed the stage, runs not measured in time). ropex and transformers eager must
    give a number. torch.compile's cold compilation of a 22- or 32-layer model can take minutes on a
    fresh node: a compile baseline cut by its time limit is reported as not measured (its ratio
    missing), not as a failure of ropex; one that errs otherwise fails."""
    def cut_compile(r):
        return r["impl"] == "hf-compile" and "timeout" in str(r.get("error"))
    missing = [r for r in rows if r.get("tokens_per_s") is None]
    name = lambda r: f"{r['shape']} {r['impl']} ({r.get('error')})"  # noqa: E731
    return [name(r) for r in missing if not cut_compile(r)], [name(r) for r in missing if cut_compile(r)]


def bench_table(rows) -> str:
    out = ["| shape | impl | tok/s | MFU | peak GiB | plan GiB |", "|---|---|---|---|---|---|"]
    for r in rows:
        tps = r.get("tokens_per_s")
        out.append(f"| {r['shape']} | {r['impl']} | {num(tps, '.0f') if tps is not None else cell(r.get('error', 'n/a'))} | "
                   f"{num(r.get('mfu'), '.3f')} | {num(r.get('peak_mem_gib'), '.3g')} | "
                   f"{num(r.get('plan_without_allowance_gib'), '.3g')} |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

STAGES = {"env": stage_env, "fp32-parity": stage_parity, "bf16-vs-hf": stage_bf16, "sdpa": stage_sdpa,
          "train-resume": stage_train, "bench": stage_bench}


def progress(text: str) -> None:
    print(f"[gpu-check] {text}", file=sys.stderr, flush=True)


def run_stage(c: Check, index: int, count: int, name: str) -> dict:
    budget = BUDGETS[name][0 if c.cuda else 1] * c.args.budget_scale
    left = c.deadline - time.monotonic() - STAGE_RESERVE * c.args.budget_scale * (count - index)
    if left < budget:
        c.log(f"(the whole run's deadline leaves this stage {max(left, 0):.0f} s of its {budget:.0f})")
        budget = max(left, 0.0)
    st = Stage(c, name, budget)
    c.log(f"\n{'=' * 100}\n== stage {index}/{count}: {name} (budget {budget:.0f} s, device {c.device}) "
          f"{datetime.datetime.now().isoformat(timespec='seconds')}\n{'=' * 100}")
    progress(f"{index}/{count} {name}: start (budget {budget:.0f} s)")
    t0 = time.monotonic()
    try:
        passed, figure = STAGES[name](c, st)
    except StageFail as e:
        passed, figure = False, str(e)
    except Exception as e:  # noqa: BLE001 - a bug in a stage must not stop the others
        passed, figure = False, f"gpu_check.py error: {type(e).__name__}: {e}"
        c.log(traceback.format_exc())
    seconds = time.monotonic() - t0
    result = "pass" if passed else ("timeout" if st.timed_out else "fail")
    c.log(f"== {name}: {result} in {seconds:.1f} s: {figure}")
    progress(f"{index}/{count} {name}: {result} in {seconds:.1f} s: {figure}")
    return {"name": name, "result": result, "figure": figure, "pass": passed, "seconds": round(seconds, 1),
            "details": st.details}


def write_outputs(c: Check, results: list[dict], pending: list[str], total: float, interrupted=False) -> str:
    """table.md and summary.json for the stages done so far; `pending` are listed as not run (the
    first of them as interrupted when the check was)."""
    status = {n: "interrupted" if interrupted and i == 0 else "not run" for i, n in enumerate(pending)}
    lines = ["| stage | result | figure | pass |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['result']} | {cell(r['figure'])} | {'yes' if r['pass'] else 'no'} |")
    for name in pending:
        lines.append(f"| {name} | {status[name]} | | no |")
    text = "\n".join(lines) + "\n"
    bench = next((r for r in results if r["name"] == "bench" and r["details"].get("rows")), None)
    if bench:
        text += "\nbench rows:\n\n" + bench_table(bench["details"]["rows"]) + "\n"
    text += f"\n{c.device}, total wall time {total:.0f} s\n"
    (c.out / "table.md").write_text(text)
    summary = {"mode": c.device, "ropex": c.ropex, "python": sys.executable,
               "started": c.started, "total_seconds": round(total, 1),
               "passed": bool(results) and not pending and all(r["pass"] for r in results),
               "stages": results + [{"name": n, "result": status[n], "figure": "", "pass": False, "seconds": 0,
                                     "details": {}} for n in pending]}
    (c.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ropex", required=True, help="the ropex binary (build/ropex)")
    ap.add_argument("--out", required=True, help="folder for gpu-check.log, table.md, summary.json, bench.jsonl")
    ap.add_argument("--cpu", action="store_true", help="dry run on the CPU: Gloo, tiny shapes")
    ap.add_argument("--only", help=f"comma-separated stages, of: {','.join(STAGES)}")
    ap.add_argument("--work", help="scratch folder (default: a fresh temporary one, removed at the end)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    ap.add_argument("--deadline", type=float, help="seconds for the whole run (default: 600 on a GPU, 540 with --cpu)")
    ap.add_argument("--budget-scale", type=float, default=1.0, help=argparse.SUPPRESS)  # tests of the timeout path
    args = ap.parse_args(argv)
    names = list(STAGES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in STAGES]
        if unknown or not names:
            ap.error(f"--only: unknown stage(s) {', '.join(unknown) or '(none given)'}; stages: {', '.join(STAGES)}")
        names = [n for n in STAGES if n in names]  # always in the stages' order
    if not (args.budget_scale > 0):
        ap.error("--budget-scale must be > 0")
    if args.deadline is None:
        args.deadline = DEADLINE[1 if args.cpu else 0]
    elif not (args.deadline > 0):
        ap.error("--deadline must be > 0")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_work = not args.work and not args.keep_work
    args.work = args.work or tempfile.mkdtemp(prefix="ropex-gpu-check-")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (out / "bench.jsonl").write_text("")
    c = Check(args)
    c.log(f"ropex gpu check, {c.started}\n$ {shlex.join([sys.executable, *sys.argv])}\n"
          f"device {c.device}, ropex {c.ropex}, python {sys.executable}, work {c.work}, stages {', '.join(names)}")

    # A TERM (a job's time limit) ends like a Ctrl-C: the running command's group is killed and
    # the files say what was done.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    t0 = time.monotonic()
    results: list[dict] = []
    interrupted = False
    try:
        for i, name in enumerate(names, 1):
            results.append(run_stage(c, i, len(names), name))
            write_outputs(c, results, names[i:], time.monotonic() - t0)
    except KeyboardInterrupt:
        interrupted = True
        c.log("\n!! interrupted")
        progress("interrupted")
    total = time.monotonic() - t0
    text = write_outputs(c, results, names[len(results):], total, interrupted)
    c.log("\n" + text)
    c.logf.close()
    print(text, end="")
    print(f"total wall time {total:.0f} s; files in {out}" + ("" if remove_work else f"; work folder {c.work}"))
    if remove_work:
        shutil.rmtree(c.work, ignore_errors=True)
    if interrupted:
        return 130
    return 0 if results and all(r["pass"] for r in results) else 1


CHILDREN = {"_env_child": env_child, "_bf16_make": bf16_make, "_bf16_compare": bf16_compare}

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in CHILDREN:
        sys.exit(CHILDREN[sys.argv[1]](sys.argv[2:]))
    sys.exit(main())
