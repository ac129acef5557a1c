#!/usr/bin/env python3
"""inv_freq / attention-factor references for ropex's frequency-scaling parity test.

Usage: rope_reference.py OUT.json

Writes a list of cases {"config": <config.json fragment>, "seq_len": L, "source": ...,
"inv_freq": [...], "attention_factor": A}. For every type transformers has (default, linear,
dynamic, yarn, llama3) the expected values come from transformers itself (ROPE_INIT_FUNCTIONS, and
the rotary class's default computation). For the types it lacks (ntk, dynamic-yarn) they come from
the formulas in ../shared/spec/position_methods.md evaluated here in float64 with numpy: an
independent computation, not a copy of ropex's code.
"""
import itertools
import json
import math
import sys

import numpy as np
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

HEAD_DIMS = [64, 128]
THETAS = [1e4, 5e5, 1e6]
FACTORS = [2.0, 2.5, 8.0, 16.7, 64.0]
ORIGINALS = [2048, 4096, 8192]


def hf_config(head_dim, theta, max_pos, rope):
    params = dict(rope or {"rope_type": "default"}, rope_theta=theta)
    cfg = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, num_key_value_heads=4, head_dim=head_dim,
                      max_position_embeddings=max_pos, rope_parameters=params, vocab_size=8, intermediate_size=8,
                      num_hidden_layers=1)
    return cfg


def fragment(head_dim, theta, max_pos, rope):
    """The config.json ropex reads for this case (4.x layout; rope_theta top-level)."""
    frag = {"vocab_size": 8, "hidden_size": head_dim * 4, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": head_dim,
            "max_position_embeddings": max_pos, "rope_theta": theta, "rope_scaling": rope}
    return frag


def from_transformers(head_dim, theta, max_pos, rope, seq_len=None):
    cfg = hf_config(head_dim, theta, max_pos, rope)
    rtype = (rope or {}).get("rope_type") or (rope or {}).get("type") or "default"
    if rtype == "default":
        inv, att = LlamaRotaryEmbedding.compute_default_rope_parameters(cfg)
    else:
        inv, att = ROPE_INIT_FUNCTIONS[rtype](cfg, "cpu", seq_len=seq_len)
    return inv.float().tolist(), float(att)


def base_inv(theta, dim):
    return theta ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def ntk_formula(head_dim, theta, factor):
    return base_inv(theta * factor ** (head_dim / (head_dim - 2)), head_dim), 1.0


def yarn_formula(head_dim, theta, original, s, beta_fast=32.0, beta_slow=1.0):
    """YaRN at scale s, float64, from the spec's formulas."""
    inv = base_inv(theta, head_dim)
    def corr(n):
        return head_dim * math.log(original / (2 * math.pi * n)) / (2 * math.log(theta))
    lo, hi = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), head_dim - 1)
    if lo == hi:
        hi += 0.001
    ramp = np.clip((np.arange(head_dim // 2) - lo) / (hi - lo), 0, 1)
    keep = 1 - ramp
    return (inv / s) * (1 - keep) + inv * keep, (0.1 * math.log(s) + 1.0 if s > 1 else 1.0)


def main():
    cases = []

    def add(head_dim, theta, max_pos, rope, inv, att, seq_len=0, source="transformers"):
        cases.append({"config": fragment(head_dim, theta, max_pos, rope), "seq_len": seq_len, "source": source,
                      "inv_freq": [float(x) for x in inv], "attention_factor": float(att)})

    for d, theta in itertools.product(HEAD_DIMS, THETAS):
        add(d, theta, 4096, None, *from_transformers(d, theta, 4096, None))
        for f, orig in itertools.product(FACTORS, ORIGINALS):
            lin = {"rope_type": "linear", "type": "linear", "factor": f}
            add(d, theta, int(orig * f), lin, *from_transformers(d, theta, int(orig * f), lin))
            dyn = {"type": "dynamic", "factor": f}
            for seq in (None, orig // 2, orig + 1, int(orig * 3.3)):  # init, below and above the switch point
                add(d, theta, orig, dyn, *from_transformers(d, theta, orig, dyn, seq), seq_len=seq or 0)
            for variant in range(5):
                yarn = {"rope_type": "yarn", "factor": f, "original_max_position_embeddings": orig}
                if variant == 1:
                    yarn.update(beta_fast=24.0, beta_slow=2.0)
                if variant == 2:
                    yarn.update(truncate=False)
                if variant == 3:
                    yarn.update(attention_factor=1.0)  # NTK-by-parts
                if variant == 4:
                    yarn.update(mscale=0.707, mscale_all_dim=1.0, beta_fast=16.0)
                add(d, theta, int(orig * f), yarn, *from_transformers(d, theta, int(orig * f), yarn))
            for low, high in ((1.0, 4.0), (2.0, 8.0)):
                l3 = {"rope_type": "llama3", "factor": f, "low_freq_factor": low, "high_freq_factor": high,
                      "original_max_position_embeddings": orig}
                add(d, theta, int(orig * f), l3, *from_transformers(d, theta, int(orig * f), l3))
            ntk = {"rope_type": "ntk", "factor": f}
            add(d, theta, orig, ntk, *ntk_formula(d, theta, f), source="formula")
            for fine_tuned, seq in itertools.product((1.0, f), (orig // 2, orig, int(orig * 1.7), int(orig * f * 2))):
                dy = {"rope_type": "dynamic-yarn", "factor": fine_tuned, "original_max_position_embeddings": orig}
                s = max(fine_tuned, seq / orig)
                inv, att = (base_inv(theta, d), 1.0) if s <= 1 else yarn_formula(d, theta, orig, s)
                add(d, theta, orig, dy, inv, att, seq_len=seq, source="formula")
    with open(sys.argv[1], "w") as f:
        json.dump(cases, f)
    print(f"wrote {len(cases)} rope cases")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float32)
    main()
