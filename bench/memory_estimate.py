#!/usr/bin/env python3
"""Analytic peak-memory model for full fine-tuning of a Llama model with ropex's layout.

Per GPU, in bytes. P = parameter count, W = data-parallel ranks, B = micro-batch, T = sequence
length, h = hidden size, I = intermediate size, V = vocabulary, L = layers, n_q / n_kv = query /
key-value heads, d_h = head dim, d_q = n_q*d_h, d_kv = n_kv*d_h. Every term is written out, with
its reasoning, in bench/MEMORY.md; the names below are the names of the printed lines.

Model states (ropex: bf16 params, fp32 master + fp32 Adam moments in the optimizer):
    params (bf16)          2P                      replicated at every ZeRO stage here (<= 2)
    grads (bf16)           2P, ZeRO-2: 2P/W        + one bucket (see below)
    master (fp32)          4P, ZeRO-1/2: 4P/W
    exp_avg (fp32)         4P, ZeRO-1/2: 4P/W
    exp_avg_sq (fp32)      4P, ZeRO-1/2: 4P/W
    ddp flat buckets       ZeRO-0, W > 1: 2P       ropex's GradReducer keeps one persistent flat copy
                                                   of every bucket (--no-flat-buckets drops it)
    comm bucket            ZeRO-1/2, W > 1: bucket_mb  the reduce-scatter bucket in flight

Activations (bf16 compute, SDPA flash/efficient attention: no T x T matrix):
    per-layer saved set    B*T*(16h + 4d_q + 4d_kv + 8I + 8) + 4*B*n_q*T
        two RMSNorms, each 8*B*T*h + 4*B*T: fp32 upcast of its input (4), the bf16 normalised
        value kept for the weight's gradient (2), its output, saved as the next linears' input
        (2), and the fp32 rsqrt per token (4*B*T);
        q and k after RoPE, v (2*B*T*d_q + 2*2*B*T*d_kv); attention output (2*B*T*d_q, saved by
        SDPA and by o_proj, one storage); SDPA's fp32 logsumexp (4*B*n_q*T);
        MLP: gate, silu(gate), up, silu(gate)*up, 2*B*T*I each.
    rope cos/sin           2 * 2*B*T*d_h           shared by all layers
    stored layer inputs    checkpointing: L * 2*B*T*h (the layer boundaries kept for recompute)
    backward transient     4*B*T*I + 14*B*T*h      MLP grads alive on top of the saved set (2 x
                                                   2BTI net), checkpoint boundary (recomputed output,
                                                   incoming and outgoing grad: 3 x 2BTh), RMSNorm
                                                   backward fp32 temporaries (2 x 4BTh)
    final norm saved       8*B*T*h
    loss (logits)          14*B*T*V at the loss backward: bf16 logits (2), their fp32 log-softmax
                           output (4), fp32 grad of the log-probs (4) and of the fp32 logits (4);
                           10*B*T*V in the loss forward (bf16 logits, fp32 copy, fp32 log-probs).

Peak = model states + max over the phases of a step:
    loss backward:   stored + final norm saved + 14*B*T*V
    layer backward:  stored + one layer's saved set + backward transient   (checkpointing)
                     all layers' saved sets + backward transient           (no checkpointing;
                                                                           "stored" = L saved sets)
    optimizer step:  12 * (largest parameter, or its shard) -- fp32 grad cast, sqrt(v), denom

Usage:
    python bench/memory_estimate.py --shape llama2-7b --seq 4096 --batch 1 --ranks 8 --zero 1 --ckpt
    python bench/memory_estimate.py --table            # markdown table for bench/MEMORY.md
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

GIB = 2**30

SHAPES = {
    "debug": dict(vocab_size=500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False),
    "tinyllama-1.1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, tie_word_embeddings=False),
    "llama2-7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, tie_word_embeddings=False),
    "llama2-13b": dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                       num_attention_heads=40, num_key_value_heads=40, tie_word_embeddings=False),
    "llama2-70b": dict(vocab_size=32000, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                       num_attention_heads=64, num_key_value_heads=8, tie_word_embeddings=False),
}

# Usable device memory as torch reports it (get_device_properties().total_memory), GiB.
CARDS = {"80GB": 79.1, "141GB": 139.8}


def _get(cfg: dict, key: str, default=None):
    v = cfg.get(key, default)
    return default if v is None else v


def dims(cfg: dict) -> dict:
    h = cfg["hidden_size"]
    nq = cfg["num_attention_heads"]
    nkv = _get(cfg, "num_key_value_heads", nq)
    hd = _get(cfg, "head_dim", h // nq)
    return dict(V=cfg["vocab_size"], h=h, I=cfg["intermediate_size"], L=cfg["num_hidden_layers"], nq=nq,
                nkv=nkv, hd=hd, dq=nq * hd, dkv=nkv * hd, tied=bool(_get(cfg, "tie_word_embeddings", False)),
                attn_bias=bool(_get(cfg, "attention_bias", False)), mlp_bias=bool(_get(cfg, "mlp_bias", False)))


def param_counts(cfg: dict) -> dict:
    """Parameter counts of a transformers / ropex LlamaForCausalLM with this config."""
    d = dims(cfg)
    h, I, dq, dkv = d["h"], d["I"], d["dq"], d["dkv"]
    attn = h * dq + 2 * h * dkv + dq * h + (dq + 2 * dkv + h if d["attn_bias"] else 0)
    mlp = 3 * h * I + (2 * I + h if d["mlp_bias"] else 0)
    norms = 2 * h
    per_layer = attn + mlp + norms
    embed = d["V"] * h
    lm_head = 0 if d["tied"] else d["V"] * h
    total = embed + d["L"] * per_layer + h + lm_head
    # Matmul parameters (FLOPs): every linear incl. lm_head (a tied lm_head still does the matmul).
    matmul = d["L"] * (attn + mlp) + d["V"] * h
    largest = max(embed, lm_head, h * I, h * dq)
    return dict(total=total, embed=embed, lm_head=lm_head, per_layer=per_layer, layer_attn=attn,
                layer_mlp=mlp, layer_norms=norms, final_norm=h, matmul=matmul, largest=largest)


def layer_saved_bytes(cfg: dict, B: int, T: int) -> dict:
    """Tensors one decoder layer saves for backward (bf16 compute, SDPA without a T x T matrix)."""
    d = dims(cfg)
    BT = B * T
    h, I, dq, dkv = d["h"], d["I"], d["dq"], d["dkv"]
    return {
        "rmsnorm x2 (fp32 input, bf16 normed, bf16 out, rsqrt)": 2 * (8 * BT * h + 4 * BT),
        "q, k after rope, v": 2 * BT * dq + 2 * 2 * BT * dkv,
        "attention output": 2 * BT * dq,
        "sdpa logsumexp (fp32)": 4 * B * d["nq"] * T,
        "mlp gate, silu, up, silu*up": 4 * 2 * BT * I,
    }


LAYOUTS = ("ropex", "hf-bf16")


def estimate(cfg: dict, seq: int, batch: int, ranks: int = 1, zero: int = 0, ckpt: bool = True,
             bucket_mb: float = 25.0, flat_buckets: bool = True, layout: str = "ropex") -> dict:
    """All terms in bytes, grouped; see the module docstring and bench/MEMORY.md.

    layout "ropex": bf16 params + bf16 grads (kept allocated between steps: zero_grad zeroes them)
    + fp32 master + fp32 moments, ZeRO 0/1/2 over `ranks`.
    layout "hf-bf16": what bench/baseline_hf.py measures on one GPU (eager): bf16 params, bf16
    moments (torch fused AdamW keeps state in the param dtype), bf16 grads that exist only from
    their backward to zero_grad(set_to_none=True); the loss output drops the logits (12BTV).
    """
    if zero not in (0, 1, 2):
        raise ValueError("zero must be 0, 1 or 2")
    if ranks < 1:
        raise ValueError("ranks must be >= 1")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    if layout == "hf-bf16" and (ranks != 1 or zero != 0):
        raise ValueError("layout hf-bf16 models the single-GPU baseline: ranks 1, ZeRO 0")
    d = dims(cfg)
    pc = param_counts(cfg)
    P, W, B, T = pc["total"], ranks, batch, seq
    BT = B * T
    h, I, L, V = d["h"], d["I"], d["L"], d["V"]
    shard = lambda n: math.ceil(n / W)  # noqa: E731
    bucket = int(bucket_mb * 2**20) if W > 1 else 0

    if layout == "ropex":
        states = {
            "params (bf16)": 2 * P,
            "grads (bf16)": 2 * (shard(P) if zero == 2 else P),
            "master (fp32)": 4 * (shard(P) if zero >= 1 else P),
            "exp_avg (fp32)": 4 * (shard(P) if zero >= 1 else P),
            "exp_avg_sq (fp32)": 4 * (shard(P) if zero >= 1 else P),
        }
        if zero == 0 and W > 1 and flat_buckets:
            states["ddp flat buckets (bf16)"] = 2 * P
        if zero >= 1 and W > 1:
            states["comm bucket"] = bucket
    else:
        states = {"params (bf16)": 2 * P, "grads (bf16)": 2 * P, "exp_avg (bf16)": 2 * P, "exp_avg_sq (bf16)": 2 * P}
    state_total = sum(states.values())

    layer = layer_saved_bytes(cfg, B, T)
    layer_total = sum(layer.values())
    rope = 2 * 2 * BT * d["hd"]
    final_norm = 8 * BT * h
    transient = 4 * BT * I + 14 * BT * h
    loss_fwd = 10 * BT * V
    loss_bwd = (14 if layout == "ropex" else 12) * BT * V
    stored = L * (2 * BT * h if ckpt else layer_total)
    stored_name = "stored layer inputs (L x 2BTh)" if ckpt else "saved sets of all layers (L x layer)"

    # Totals per phase (model states included).
    if layout == "ropex":
        states_at = {"loss": state_total, "layer": state_total, "opt": state_total}
        # Worst layer backward: the first one (every stored input still alive).
        layer_acts = stored + rope + (layer_total if ckpt else 0) + transient
        opt_numel = min(pc["largest"], shard(P)) if zero >= 1 else pc["largest"]
        opt_extra = 12 * opt_numel  # fp32 grad cast, sqrt(v), denom of the largest (shard of a) tensor
    else:
        no_grads = state_total - states["grads (bf16)"]
        if ckpt:
            # Grads grow by a layer's worth per layer while stored inputs shrink by 2BTh: the worst
            # is layer 0's backward, with every gradient but the embedding's already produced.
            states_at_layer = no_grads + 2 * (P - pc["embed"])
            layer_acts = 2 * BT * h + rope + layer_total + transient
        else:
            # All saved sets alive at the last layer's backward, with lm_head's, the final norm's
            # and that layer's gradients.
            states_at_layer = no_grads + 2 * (pc["lm_head"] + pc["final_norm"] + pc["per_layer"])
            layer_acts = stored + rope + transient
        states_at = {"loss": no_grads, "layer": states_at_layer, "opt": state_total}
        opt_extra = 0  # fused AdamW updates in place
    phases = {
        "loss backward": states_at["loss"] + stored + rope + final_norm + max(loss_bwd, loss_fwd),
        "layer backward": states_at["layer"] + layer_acts,
        "optimizer step": states_at["opt"] + opt_extra,
    }
    peak_phase = max(phases, key=phases.get)
    acts = {
        stored_name: stored,
        "rope cos/sin": rope,
        "one layer's saved set" + (" (recomputed)" if ckpt else ""): layer_total if ckpt else 0,
        "backward transient": transient,
        "final norm saved": final_norm,
        f"loss: logits + fp32 log-probs + grads ({loss_bwd // (BT * V)}BTV)": loss_bwd,
        "optimizer step transient": opt_extra,
    }
    peak = phases[peak_phase]
    return dict(
        layout=layout, params=P, matmul_params=pc["matmul"], counts=pc, seq=T, batch=B, ranks=W, zero=zero,
        ckpt=ckpt, states=states, states_total=state_total, layer_saved=layer, layer_saved_total=layer_total,
        activations=acts, phases=phases, peak_phase=peak_phase, activation_peak=peak - state_total, peak=peak,
    )


def load_config(args) -> tuple[str, dict]:
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
        return os.path.splitext(os.path.basename(args.config))[0], cfg
    return args.shape, dict(SHAPES[args.shape])


def fits(peak_bytes: int, card_gib: float, reserve_gib: float) -> str:
    g = peak_bytes / GIB
    if g + reserve_gib <= card_gib:
        return "yes"
    if g <= card_gib:
        return "tight"
    return "no"


def report(name: str, e: dict, reserve: float) -> str:
    out = [f"{name} [{e['layout']} layout]: {e['params'] / 1e9:.3f}B params, seq {e['seq']}, batch {e['batch']}, "
           f"{e['ranks']} rank(s), ZeRO-{e['zero']}, activation checkpointing {'on' if e['ckpt'] else 'off'}"]
    w = 56
    out.append("model states:")
    for k, v in e["states"].items():
        out.append(f"  {k:<{w}} {v / GIB:9.3f} GiB")
    out.append(f"  {'total':<{w}} {e['states_total'] / GIB:9.3f} GiB  ({e['states_total'] / e['params']:.2f} B/param)")
    out.append("activations (terms):")
    for k, v in e["activations"].items():
        if v:
            out.append(f"  {k:<{w}} {v / GIB:9.3f} GiB")
    out.append("  one layer's saved set, by tensor:")
    for k, v in e["layer_saved"].items():
        out.append(f"    {k:<{w - 2}} {v / GIB:9.3f} GiB")
    out.append("phases (totals, model states included):")
    for k, v in e["phases"].items():
        mark = "  <- peak" if k == e["peak_phase"] else ""
        out.append(f"  {k:<{w}} {v / GIB:9.3f} GiB{mark}")
    out.append(f"peak allocated: {e['peak'] / GIB:.2f} GiB (states {e['states_total'] / GIB:.2f} + "
               f"activations/transients {e['activation_peak'] / GIB:.2f}); with {reserve:g} GiB reserve (CUDA context, NCCL, "
               f"fragmentation): {e['peak'] / GIB + reserve:.2f} GiB; fits 80 GB: "
               f"{fits(e['peak'], CARDS['80GB'], reserve)}, 141 GB: {fits(e['peak'], CARDS['141GB'], reserve)}")
    return "\n".join(out)


def table(seq: int = 4096, batch: int = 1, ckpt: bool = True, reserve: float = 3.0, bucket_mb: float = 25.0,
          flat_buckets: bool = True) -> str:
    rows = ["| model | params | GPUs | ZeRO | states GiB | B/param | activations GiB | peak GiB | 80 GB | 141 GB |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("llama2-7b", "llama2-13b", "llama2-70b"):
        for W in (8, 64):
            for z in (0, 1, 2):
                e = estimate(SHAPES[name], seq, batch, W, z, ckpt, bucket_mb, flat_buckets)
                rows.append(f"| {name} | {e['params'] / 1e9:.2f}B | {W} | {z} | {e['states_total'] / GIB:.1f} | "
                            f"{e['states_total'] / e['params']:.2f} | {e['activation_peak'] / GIB:.1f} | "
                            f"{e['peak'] / GIB:.1f} | {fits(e['peak'], CARDS['80GB'], reserve)} | "
                            f"{fits(e['peak'], CARDS['141GB'], reserve)} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--shape", choices=sorted(SHAPES), default="llama2-7b")
    src.add_argument("--config", help="a Llama config.json")
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--zero", type=int, choices=(0, 1, 2), default=0)
    ap.add_argument("--ckpt", action="store_true", help="full activation checkpointing (every layer)")
    ap.add_argument("--bucket-mb", type=float, default=25.0, help="communication bucket size (ropex default 25)")
    ap.add_argument("--no-flat-buckets", action="store_true",
                    help="ZeRO-0: no persistent flat bucket copy of the gradients (bucket views)")
    ap.add_argument("--reserve-gib", type=float, default=3.0,
                    help="outside the allocator's count: CUDA context, NCCL buffers, fragmentation")
    ap.add_argument("--table", action="store_true",
                    help="markdown table: 7B/13B/70B on 8 and 64 GPUs, ZeRO 0/1/2 (uses --seq/--batch, "
                         "checkpointing on unless --no-ckpt-table)")
    ap.add_argument("--no-ckpt-table", action="store_true")
    ap.add_argument("--layout", choices=LAYOUTS, default="ropex",
                    help="ropex (fp32 master + moments) or hf-bf16 (bench/baseline_hf.py's bf16 fused AdamW)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.seq, args.batch, not args.no_ckpt_table, args.reserve_gib, args.bucket_mb,
                    not args.no_flat_buckets))
        return 0
    name, cfg = load_config(args)
    try:
        e = estimate(cfg, args.seq, args.batch, args.ranks, args.zero, args.ckpt, args.bucket_mb,
                     not args.no_flat_buckets, args.layout)
    except ValueError as err:
        ap.error(str(err))
    if args.json:
        print(json.dumps({"shape": name, **{k: v for k, v in e.items() if k != "counts"},
                          "peak_gib": round(e["peak"] / GIB, 3)}))
    else:
        print(report(name, e, args.reserve_gib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
