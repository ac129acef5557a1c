#!/usr/bin/env python3
"""Python baseline for ropex's training-step benchmark.

Times full training steps of transformers' LlamaForCausalLM (attn_implementation="sdpa", random
weights built from a LlamaConfig, nothing downloaded) with torch.optim.AdamW, so ropex's own bench
numbers have a reference built from the standard PyTorch stack.

One step = forward (the model's built-in causal-LM loss, labels = input ids), backward,
optimizer.step(), optimizer.zero_grad(set_to_none=True).

Optimizer: AdamW(fused=True) on CUDA, AdamW(foreach=True) on CPU, updating the parameters in their
own dtype. With --dtype bfloat16 that is "fused AdamW on bf16 params": params, grads and both Adam
moments in bf16 (8 B/param). ropex instead keeps fp32 master weights and fp32 moments for bf16
params (16 B/param), which torch does not offer natively; the `optimizer` field of every result
says which update was measured so the comparison stays honest.

Timing: W untimed warm-up steps (they include torch.compile's compilation), then S steps timed as
one block (CUDA: torch.cuda.synchronize() + CUDA events; CPU: time.perf_counter). After the timed
steps, a step-time breakdown (forward / backward / optimizer) is measured in separate passes with a
synchronisation after each phase, so fwd_ms + bwd_ms + opt_ms is close to, but not the same as,
step_ms (no overlap of CPU launch work across phase boundaries).

FLOPs and MFU (model FLOPs utilisation, not hardware FLOPs):

    flops_per_token = 6 * N + 6 * n_layers * T * d_attn

    N       parameters that take part in matmuls: every nn.Linear (q, k, v, o, gate, up, down in
            each layer, and lm_head); the embedding lookup is not a matmul and is excluded
            (norm weights are not matmul parameters either).
    T       sequence length; d_attn = num_attention_heads * head_dim.
    6 * N   2 FLOPs per multiply-add in the forward, twice that in the backward (grad wrt input
            and grad wrt weight).
    6 * n_layers * T * d_attn
            causal attention: for one query token QK^T and AV cost 2*T*d_attn FLOPs each in the
            forward with full attention (4*T*d_attn), halved by the causal mask (2*T*d_attn),
            times 3 for forward + backward.

Recomputation under activation checkpointing is not counted (MFU, not HFU). Peak FLOP/s: --peak-tflops,
or a table keyed on torch.cuda.get_device_name() (bfloat16 dense tensor-core peak: H100 SXM 989,
H200 989, H100 PCIe 756); any other GPU, or float32, gives mfu null. See bench/FLOPS.md.

Examples:
    python bench/baseline_hf.py --shape debug --seq 256 --batch 4 --dtype float32 --device cpu --json
    python bench/baseline_hf.py --shape llama2-7b --seq 4096 --batch 1 --ckpt --json --out hf.jsonl
    python bench/baseline_hf.py --shape tinyllama-1.1b --seq 8192 --batch 1 --ckpt --compile --json

CPU runs: the machine's other load makes timings noisy; --threads N (torch.set_num_threads) steadies
them. Inductor's CPU kernels are generated for the thread count at compile time and cached
(TORCHINDUCTOR_CACHE_DIR); keep --threads the same across --compile runs, or point the cache at a
fresh directory.

Exit status: 0 on success and on out-of-memory (the line then carries "error": "out of
memory"), 1 on any other failure (the line carries the error text), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback

import torch

from memory_estimate import SHAPES as _ALL_SHAPES  # one table of model shapes for bench/ (torch-free module)

SHAPES = {name: _ALL_SHAPES[name] for name in ("debug", "tinyllama-1.1b", "llama2-7b")}
COMMON = dict(rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=4096, hidden_act="silu",
              attention_bias=False, mlp_bias=False, initializer_range=0.02)

# (substring of torch.cuda.get_device_name(), dtype) -> dense peak TFLOP/s. First match wins, so the
# more specific names come first.
PEAK_TFLOPS = [
    ("H100 PCIe", "bfloat16", 756.0),
    ("H100", "bfloat16", 989.0),   # H100 SXM5
    ("H200", "bfloat16", 989.0),
]

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def peak_tflops(gpu_name: str | None, dtype: str, override: float | None) -> float | None:
    if override:
        return override
    if not gpu_name:
        return None
    for key, dt, tf in PEAK_TFLOPS:
        if key in gpu_name and dt == dtype:
            return tf
    return None


def flops_per_token(matmul_params: int, n_layers: int, seq: int, d_attn: int) -> int:
    """Model FLOPs per trained token: 6*N + 6*n_layers*T*d_attn (see the module docstring)."""
    return 6 * matmul_params + 6 * n_layers * seq * d_attn


def build_config(args):
    """Returns (shape name, LlamaConfig)."""
    from transformers import LlamaConfig

    if args.config:
        with open(args.config) as f:
            raw = json.load(f)
        raw = {k: v for k, v in raw.items() if k not in ("architectures", "model_type", "torch_dtype", "dtype",
                                                           "transformers_version", "_name_or_path")}
        name = args.name or os.path.splitext(os.path.basename(args.config))[0]
        kw = {**COMMON, **raw}
    else:
        name = args.shape
        kw = {**COMMON, **SHAPES[args.shape]}
    if args.layers:
        kw["num_hidden_layers"] = args.layers
        name = f"{name}-L{args.layers}"
    kw["max_position_embeddings"] = max(int(kw.get("max_position_embeddings", 0)), args.seq)
    kw["use_cache"] = False
    cfg = LlamaConfig(attn_implementation="sdpa", **kw)
    return name, cfg


def head_dim(cfg) -> int:
    hd = getattr(cfg, "head_dim", None)
    return hd if hd else cfg.hidden_size // cfg.num_attention_heads


def count_matmul_params(model) -> int:
    """Weights (and biases) of every nn.Linear, lm_head included even when tied to the embedding."""
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            n += m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    return n


class Timer:
    """Synchronised wall time of a region in ms: CUDA events on CUDA, perf_counter on CPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def start(self):
        if self.cuda:
            torch.cuda.synchronize()
            self._e0 = torch.cuda.Event(enable_timing=True)
            self._e0.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> float:
        if self.cuda:
            e1 = torch.cuda.Event(enable_timing=True)
            e1.record()
            torch.cuda.synchronize()
            return self._e0.elapsed_time(e1)
        return (time.perf_counter() - self._t0) * 1e3


_OOM_TYPES = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                               getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)


def is_oom(e: BaseException) -> bool:
    if _OOM_TYPES and isinstance(e, _OOM_TYPES):
        return True
    msg = str(e)
    return any(m in msg for m in ("CUDA out of memory", "OutOfMemoryError", "CUBLAS_STATUS_ALLOC_FAILED",
                                  "can't allocate memory"))


def run(args, res: dict) -> None:
    """Fills `res` in place, so a failure part-way still reports what is known."""
    from transformers import LlamaForCausalLM

    dev = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    torch.manual_seed(args.seed)

    name, cfg = build_config(args)
    res["shape"] = name
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with dev:
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(prev)
    # Parameters are already in `dtype` (built under it); no model.to(dtype), which would also cast
    # the fp32 rotary inv_freq buffer down, unlike from_pretrained(dtype=...).
    wrong = {str(p.dtype) for p in model.parameters() if p.dtype != dtype or p.device.type != dev.type}
    if wrong:
        raise RuntimeError(f"parameters built as {wrong}, expected {dtype} on {dev.type}")
    model.train()
    attn = getattr(model.config, "_attn_implementation", None)
    if attn != "sdpa":
        raise RuntimeError(f"model built with attn_implementation={attn!r}, expected 'sdpa'")
    if args.ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    n_params = sum(p.numel() for p in model.parameters())
    n_matmul = count_matmul_params(model)
    d_attn = cfg.num_attention_heads * head_dim(cfg)
    fpt = flops_per_token(n_matmul, cfg.num_hidden_layers, args.seq, d_attn)
    res.update(params=n_params, matmul_params=n_matmul, flops_per_token=fpt)

    # Two groups like ropex: norm weights and biases get no weight decay.
    decay, no_decay = [], []
    for pn, p in model.named_parameters():
        (no_decay if ("norm" in pn or pn.endswith(".bias")) else decay).append(p)
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    if dev.type == "cuda":
        opt = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.95), eps=1e-8, fused=True)
        kind = "fused"
    else:
        opt = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.95), eps=1e-8, foreach=True)
        kind = "foreach"
    res["optimizer"] = f"{kind} AdamW on {'bf16' if dtype == torch.bfloat16 else 'fp32'} params"

    fwd_model = model
    if args.compile:
        fwd_model = torch.compile(model, mode=args.compile_mode)

    g = torch.Generator(device="cpu").manual_seed(args.seed)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), generator=g).to(dev)

    def forward():
        return fwd_model(input_ids=ids, labels=ids, use_cache=False).loss

    def step():
        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    timer = Timer(args.device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    # Warm-up (compilation happens here); the first step's time is reported separately.
    for i in range(args.warmup):
        timer.start()
        step()
        ms = timer.stop()
        if i == 0:
            res["first_step_s"] = round(ms / 1e3, 3)

    # Timed block.
    per_step = []
    if dev.type == "cuda":
        torch.cuda.synchronize()
        events = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps + 1)]
        events[0].record()
        for s in range(args.steps):
            last = step()
            events[s + 1].record()
        torch.cuda.synchronize()
        per_step = [events[s].elapsed_time(events[s + 1]) for s in range(args.steps)]
        total_ms = events[0].elapsed_time(events[-1])
    else:
        t0 = time.perf_counter()
        prev_t = t0
        for s in range(args.steps):
            last = step()
            now = time.perf_counter()
            per_step.append((now - prev_t) * 1e3)
            prev_t = now
        total_ms = (prev_t - t0) * 1e3

    step_ms = total_ms / args.steps
    tokens_per_s = args.batch * args.seq * args.steps / (total_ms / 1e3)  # batch*seq tokens a step
    res.update(step_ms=round(step_ms, 3), step_ms_median=round(statistics.median(per_step), 3),
               step_ms_min=round(min(per_step), 3), step_ms_max=round(max(per_step), 3),
               tokens_per_s=round(tokens_per_s, 2), loss=round(float(last), 5))

    # Breakdown, separate synchronised passes.
    if args.breakdown_steps > 0:
        f, b, o = [], [], []
        for _ in range(args.breakdown_steps):
            timer.start()
            loss = forward()
            f.append(timer.stop())
            timer.start()
            loss.backward()
            b.append(timer.stop())
            timer.start()
            opt.step()
            opt.zero_grad(set_to_none=True)
            o.append(timer.stop())
            del loss
        res.update(fwd_ms=round(statistics.mean(f), 3), bwd_ms=round(statistics.mean(b), 3),
                   opt_ms=round(statistics.mean(o), 3),
                   breakdown=f"mean of {args.breakdown_steps} separate synchronized passes after the timed steps")

    if dev.type == "cuda":
        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        res["reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
    peak = peak_tflops(res.get("gpu"), args.dtype, args.peak_tflops)
    res["peak_tflops"] = peak
    res["mfu"] = round(tokens_per_s * fpt / (peak * 1e12), 4) if peak else None
    res["tflops"] = round(tokens_per_s * fpt / 1e12, 3)


def fmt_line(r: dict) -> str:
    head = f"{r['impl']} {r.get('shape')} seq={r['seq']} batch={r['batch']} {r['dtype']} {r['device']}" + \
           (" ckpt" if r["ckpt"] else "")
    if r.get("error"):
        return f"{head}: ERROR {r['error']}"
    s = (f"{head}: {r['tokens_per_s']:.1f} tok/s, step {r['step_ms']:.1f} ms "
         f"(median {r['step_ms_median']:.1f})")
    if r.get("fwd_ms") is not None:
        s += f" [fwd {r['fwd_ms']:.1f} / bwd {r['bwd_ms']:.1f} / opt {r['opt_ms']:.1f} ms]"
    s += f", {r['tflops']:.2f} TFLOP/s"
    if r.get("mfu") is not None:
        s += f", MFU {100 * r['mfu']:.1f}%"
    if r.get("peak_mem_gib") is not None:
        s += f", peak {r['peak_mem_gib']:.2f} GiB"
    s += f", params {r['params'] / 1e6:.1f}M, {r['optimizer']}"
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--shape", choices=sorted(SHAPES), default="debug")
    src.add_argument("--config", help="a transformers Llama config.json (random weights of that shape)")
    ap.add_argument("--name", help="shape name reported with --config (default: the file's stem)")
    ap.add_argument("--layers", type=int, help="override num_hidden_layers (name gets -L<n>)")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1, help="micro-batch size")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--ckpt", action="store_true", help="activation checkpointing (non-reentrant, every layer)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (optimizer stays eager)")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode (default: torch's default)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--breakdown-steps", type=int, default=5, help="passes for fwd/bwd/opt breakdown (0: skip)")
    ap.add_argument("--peak-tflops", type=float, help="peak dense TFLOP/s for MFU (overrides the table)")
    ap.add_argument("--threads", type=int, help="CPU: torch.set_num_threads (and OMP_NUM_THREADS)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--out", help="also append the JSON line to this file")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.seq < 2 or args.batch < 1 or args.warmup < 0:
        ap.error("need --steps >= 1, --seq >= 2, --batch >= 1, --warmup >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)

    try:
        import transformers
        tf_version = transformers.__version__
    except ImportError:
        tf_version = None

    res = {
        "impl": "hf-compile" if args.compile else "hf-eager",
        "shape": args.name or (os.path.splitext(os.path.basename(args.config))[0] if args.config else args.shape),
        "params": None, "seq": args.seq, "batch": args.batch, "dtype": args.dtype, "device": args.device,
        "ckpt": bool(args.ckpt), "steps": args.steps, "warmup": args.warmup, "tokens_per_step": args.batch * args.seq,
        "tokens_per_s": None, "step_ms": None, "fwd_ms": None, "bwd_ms": None, "opt_ms": None,
        "peak_mem_gib": None, "flops_per_token": None, "mfu": None,
        "attn": "sdpa", "optimizer": None, "fp32_matmul_precision": torch.get_float32_matmul_precision(), "threads": torch.get_num_threads() if args.device == "cpu" else None,
        "torch": torch.__version__, "transformers": tf_version,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
    }
    if args.compile:
        res["compile_mode"] = args.compile_mode or "default"
    rc = 0
    if tf_version is None:
        res["error"] = "transformers is not installed (pip install transformers)"
        rc = 1
    else:
        try:
            run(args, res)
        except Exception as e:  # noqa: BLE001 - report, never crash
            if is_oom(e):
                res["error"] = "out of memory"
                if args.device == "cuda":
                    try:
                        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
                    except Exception:  # noqa: BLE001
                        pass
            else:
                first = (str(e).strip().splitlines() or [""])[0]
                res["error"] = f"{type(e).__name__}: {first}"[:600]
                rc = 1
                traceback.print_exc(file=sys.stderr)
            res["tokens_per_s"] = None
            res["mfu"] = None

    line = json.dumps(res)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    print(line if args.json else fmt_line(res), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
