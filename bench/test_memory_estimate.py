#!/usr/bin/env python3
"""Checks bench/memory_estimate.py against transformers, on CPU. Plain python; exit 0 on success.

1. Parameter counts (total, matmul, embedding, lm_head, per layer) of every shape against a real
   transformers LlamaForCausalLM built on the meta device (no memory, no download).
2. One decoder layer's saved-for-backward set against what autograd actually saves in a bf16
   transformers LlamaDecoderLayer on CPU (saved_tensors_hooks, unique storages, parameters and the
   shared rope cos/sin excluded), for a GQA and an MHA shape. transformers' layer runs the same op
   sequence as ropex's (fp32-upcast RMSNorm, rotate-half RoPE, SDPA, SiLU-gated MLP).
3. The model-state arithmetic: 16 B/param unsharded; ZeRO-1 4 + 12/W; ZeRO-2 2 + 14/W.
4. bench/MEMORY.md carries the table the script prints now.
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory_estimate as me  # noqa: E402

FAILS: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        FAILS.append(what)


def hf_config(cfg: dict, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(rms_norm_eps=1e-5, rope_theta=10000.0, attn_implementation="sdpa", use_cache=False,
                       **cfg, **extra)


def test_param_counts() -> None:
    from transformers import LlamaForCausalLM

    for name, cfg in me.SHAPES.items():
        with torch.device("meta"):
            model = LlamaForCausalLM(hf_config(cfg))
        total = sum(p.numel() for p in model.parameters())
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
        layer0 = sum(p.numel() for p in model.model.layers[0].parameters())
        embed = model.model.embed_tokens.weight.numel()
        pc = me.param_counts(cfg)
        check(total == pc["total"], f"{name}: total params {total} == estimate {pc['total']}")
        check(linear == pc["matmul"], f"{name}: linear (matmul) params {linear} == estimate {pc['matmul']}")
        check(layer0 == pc["per_layer"], f"{name}: per-layer params {layer0} == estimate {pc['per_layer']}")
        check(embed == pc["embed"], f"{name}: embedding params {embed} == estimate {pc['embed']}")
        largest = max(p.numel() for p in model.parameters())
        check(largest == pc["largest"], f"{name}: largest parameter {largest} == estimate {pc['largest']}")


def saved_bytes_of_layer(cfg: dict, B: int, T: int) -> tuple[int, dict]:
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    torch.manual_seed(0)
    hc = hf_config(cfg)
    with torch.device("cpu"):
        layer = LlamaDecoderLayer(hc, layer_idx=0).to(torch.bfloat16)
        rope = LlamaRotaryEmbedding(hc)
    x = torch.randn(B, T, cfg["hidden_size"], dtype=torch.bfloat16, requires_grad=True)
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    cos, sin = rope(x, pos)
    exclude = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    exclude |= {cos.untyped_storage().data_ptr(), sin.untyped_storage().data_ptr()}
    seen: dict[int, tuple] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in exclude:
            seen.setdefault(s.data_ptr(), (s.nbytes(), tuple(t.shape), t.dtype))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x, attention_mask=None, position_ids=pos, position_embeddings=(cos, sin))
    out = out[0] if isinstance(out, tuple) else out
    out.float().sum().backward()  # the graph is valid end to end
    return sum(v[0] for v in seen.values()), seen


def test_layer_saved_set() -> None:
    shapes = {
        "gqa h256 I688 4q/2kv": dict(vocab_size=100, hidden_size=256, intermediate_size=688, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2),
        "mha h192 I512 3q/3kv": dict(vocab_size=100, hidden_size=192, intermediate_size=512, num_hidden_layers=1,
                                     num_attention_heads=3, num_key_value_heads=3),
    }
    for name, cfg in shapes.items():
        B, T = 2, 160  # T differs from every other dimension, so a T x T tensor is recognisable
        got, seen = saved_bytes_of_layer(cfg, B, T)
        est = me.layer_saved_bytes(cfg, B, T)
        want = sum(est.values())
        square = [v for v in seen.values() if list(v[1]).count(T) >= 2]
        # No T x T attention matrix may be saved (SDPA with a flash-type kernel).
        check(not square, f"layer {name}: no T x T tensor saved ({len(seen)} saved storages)")
        # Counting bytes is exact arithmetic; the estimate leaves out only tensors whose size does not grow
        # with B*T (SDPA's seed/offset scalars: bytes against the ~10^6 bytes saved here), so anything near
        # 1% is a missing or extra per-token tensor.
        rel = abs(got - want) / want
        check(rel <= 0.01, f"layer {name}: saved {got} bytes vs estimate {want} ({100 * rel:.2f}% off)")
        if rel > 0.01:
            for k, v in sorted(seen.items(), key=lambda kv: -kv[1][0]):
                print(f"        saved {v[0]:>10} bytes {v[2]} {list(v[1])}")
            for k, v in est.items():
                print(f"        estimate {k}: {v}")


def test_state_arithmetic() -> None:
    cfg = me.SHAPES["llama2-7b"]
    P = me.param_counts(cfg)["total"]
    e = me.estimate(cfg, 4096, 1, ranks=1, zero=0)
    check(e["states_total"] == 16 * P, "1 rank, ZeRO-0: 16 B/param")
    for W in (8, 64):
        sh = -(-P // W)
        b = int(25 * 2**20)
        e0 = me.estimate(cfg, 4096, 1, ranks=W, zero=0)
        e0n = me.estimate(cfg, 4096, 1, ranks=W, zero=0, flat_buckets=False)
        e1 = me.estimate(cfg, 4096, 1, ranks=W, zero=1)
        e2 = me.estimate(cfg, 4096, 1, ranks=W, zero=2)
        check(e0n["states_total"] == 16 * P, f"W={W} ZeRO-0 without flat buckets: 16 B/param")
        check(e0["states_total"] == 18 * P, f"W={W} ZeRO-0 with ropex's flat buckets: 18 B/param")
        check(e1["states_total"] == 4 * P + 12 * sh + b, f"W={W} ZeRO-1: 4P + 12P/W + bucket")
        check(e2["states_total"] == 2 * P + 14 * sh + b, f"W={W} ZeRO-2: 2P + 14P/W + bucket")
        check(e0["peak"] > e1["peak"] > e2["peak"], f"W={W}: peak falls with the ZeRO stage")
    ec = me.estimate(cfg, 4096, 1, ckpt=True)
    en = me.estimate(cfg, 4096, 1, ckpt=False)
    check(en["activation_peak"] > ec["activation_peak"], "checkpointing lowers the activation peak")
    e2x = me.estimate(cfg, 8192, 1, ckpt=True)
    check(1.9 < e2x["activation_peak"] / ec["activation_peak"] < 2.1, "activations linear in T (no T^2 term)")


def test_doc_table() -> None:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "MEMORY.md")
    with open(path) as f:
        doc = f.read()
    check(me.table() in doc, "bench/MEMORY.md holds the current `memory_estimate.py --table` output")


def main() -> int:
    test_param_counts()
    test_doc_table()
    test_layer_saved_set()
    test_state_arithmetic()
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
