#!/usr/bin/env python3
"""Reference outputs from transformers for ropex's parity tests.

Usage: make_reference.py OUTDIR

For each case below it builds a tiny random LlamaForCausalLM with transformers, saves it as a
Hugging Face directory OUTDIR/<case>/ (config.json + model.safetensors), rewrites config.json in the
layout the case names (transformers 4.x `rope_scaling` + top-level `rope_theta`, or 5.x
`rope_parameters`), and writes OUTDIR/<case>/reference.safetensors with
  input_ids, position_ids [B, T] int64, logits [B, T, V] float32, loss [] float32 and
  grad.<parameter name> for every parameter (float32), all computed by transformers in float32, and
  logits_bf16 from a bfloat16 copy of the same model
  with an explicit all-ones attention mask (without it transformers treats a jump in position_ids
  as the start of a packed sequence and masks across it).
Dynamic-scaling cases have one file per sequence length (reference_T<len>.safetensors) because the
frequencies depend on the length. OUTDIR/cases.json lists the cases and their files.
"""
import copy
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

BASE = dict(vocab_size=320, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
            rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False)

# name -> (config overrides, rope dict or None, layout, sequence lengths, contiguous positions?
#          [, (overrides, rope) of the config.json ropex reads, when it differs from transformers' model])
# The last kind checks the types transformers lacks through an exact equivalence: static NTK with
# factor f is the default rope with theta * f^(D/(D-2)); dynamic-yarn at length T (contiguous ids) is
# yarn with factor T / original, and the base rope below the original length.
HEAD = 16  # hidden 64 / 4 heads
CASES = {
    "mha_untied": (dict(), None, "v4", [48], True),
    "gqa_tied": (dict(num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True), None, "v4", [40], True),
    "head_dim_bias": (dict(head_dim=24, num_key_value_heads=2, attention_bias=True, mlp_bias=True,
                           rope_theta=500000.0, rms_norm_eps=1e-5), None, "v5", [40], False),
    "linear_v4": (dict(), {"type": "linear", "factor": 4.0}, "v4", [150], False),
    "linear_v5": (dict(num_key_value_heads=2), {"rope_type": "linear", "factor": 2.5}, "v5", [120], True),
    "yarn_v5": (dict(num_key_value_heads=2, rope_theta=1e6),
                {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64,
                 "beta_fast": 24.0, "beta_slow": 2.0}, "v5", [200], False),
    "yarn_v4_mscale": (dict(), {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
                                "mscale": 0.8, "mscale_all_dim": 0.5, "truncate": False}, "v4", [180], True),
    "dynamic_v4": (dict(), {"type": "dynamic", "factor": 3.0}, "v4", [40, 130], True),
    "llama3_v5": (dict(num_key_value_heads=1, rope_theta=500000.0),
                  {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 32}, "v5", [160], False),
    "ntk_equiv": (dict(rope_theta=10000.0 * 4.0 ** (HEAD / (HEAD - 2))), None, "v4", [150], False,
                  (dict(rope_theta=10000.0), {"rope_type": "ntk", "factor": 4.0})),
    "dynamic_yarn_above": (dict(), {"rope_type": "yarn", "factor": 200 / 64, "original_max_position_embeddings": 64},
                           "v4", [200], True,
                           (dict(), {"rope_type": "dynamic-yarn", "factor": 1.0, "original_max_position_embeddings": 64})),
    "dynamic_yarn_below": (dict(), None, "v4", [50], True,
                           (dict(), {"rope_type": "dynamic-yarn", "factor": 1.0, "original_max_position_embeddings": 64})),
}


def write_config(path, overrides, rope, layout):
    cfg = dict(BASE, **overrides, architectures=["LlamaForCausalLM"], model_type="llama",
               bos_token_id=1, eos_token_id=2, hidden_act="silu", torch_dtype="float32")
    theta = cfg.pop("rope_theta")
    if layout == "v4":  # transformers 4.x: top-level rope_theta, rope_scaling (or null)
        cfg["rope_theta"] = theta
        cfg["rope_scaling"] = rope
    else:  # transformers 5.x: rope_parameters holds rope_theta
        params = dict(rope) if rope else {"rope_type": "default"}
        params["rope_theta"] = theta
        cfg["rope_parameters"] = params
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def positions(batch, length, contiguous, gen):
    if contiguous:
        return torch.arange(length).repeat(batch, 1)
    # Strictly increasing ids with jumps (as PoSE/CREAM produce), reaching past the window.
    rows = []
    for _ in range(batch):
        steps = torch.randint(1, 4, (length,), generator=gen)
        steps[0] = 0
        rows.append(torch.cumsum(steps, 0))
    return torch.stack(rows)


def reference(model, input_ids, position_ids):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, position_ids=position_ids, attention_mask=torch.ones_like(input_ids),
                labels=input_ids, use_cache=False)
    out.loss.backward()
    tensors = {"input_ids": input_ids.contiguous(), "position_ids": position_ids.contiguous(),
               "logits": out.logits.detach().float().contiguous(), "loss": out.loss.detach().float().reshape(())}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().float().contiguous()
    # transformers' own bfloat16 run of the same weights: how far bfloat16 legitimately moves the logits
    # (the limit of ropex's bfloat16 check is a multiple of this spread).
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    with torch.no_grad():
        out = bf16(input_ids=input_ids, position_ids=position_ids, attention_mask=torch.ones_like(input_ids), use_cache=False)
    tensors["logits_bf16"] = out.logits.float().contiguous()
    return tensors


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    index = {}
    for name, (overrides, rope, layout, lengths, contiguous, *ropex_view) in CASES.items():
        case_dir = os.path.join(outdir, name)
        os.makedirs(case_dir, exist_ok=True)
        write_config(os.path.join(case_dir, "config.json"), overrides, rope, layout)
        config = LlamaConfig.from_pretrained(case_dir)
        config._attn_implementation = "sdpa"
        model = LlamaForCausalLM(config).float()
        with torch.no_grad():  # random norms and biases so every parameter matters
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
                elif pname.endswith(".bias"):
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        model.save_pretrained(case_dir, safe_serialization=True)
        write_config(os.path.join(case_dir, "config.json"), overrides, rope, layout)  # our layout, not 5.x's
        files = []
        for length in lengths:
            ids = torch.randint(0, BASE["vocab_size"], (2, length), generator=gen)
            pos = positions(2, length, contiguous, gen)
            fname = "reference.safetensors" if len(lengths) == 1 else f"reference_T{length}.safetensors"
            save_file(reference(model, ids, pos), os.path.join(case_dir, fname))
            files.append(fname)
        if ropex_view:  # what ropex reads: the equivalent configuration in ropex's own terms
            write_config(os.path.join(case_dir, "config.json"), dict(overrides, **ropex_view[0][0]), ropex_view[0][1], layout)
        index[name] = files
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(f"wrote {len(index)} reference cases to {outdir}")


if __name__ == "__main__":
    main()
