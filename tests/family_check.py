#!/usr/bin/env python3
"""transformers-side checks for ropex's model-family and LongRoPE tests (exit code 0 = pass, message on
stderr).

  family_check.py export DIR REFERENCE --limit L --arch CLASS [--rope-type T]
      DIR (written by ropex) must load through AutoModelForCausalLM as transformers class CLASS
      (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) with no warning about unknown, unused
      or missing keys or weights, carry rope type T, and reproduce REFERENCE's logits (input_ids,
      position_ids, logits) within L relative to the largest |logit| (L from tests/tolerance.h).
  family_check.py longrope OUT.json
      inv_freq and attention factor of transformers' LlamaRotaryEmbedding for a grid of LongRoPE
      configs, each after a forward at a given length (so the short/long switch of
      dynamic_rope_update is the one the model makes): a list of {"config", "seq_len", "inv_freq",
      "attention_factor"}.
"""
import json
import logging
import math
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.utils import logging as hf_logging


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def check_export(argv):
    path, ref_path = argv[0], argv[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    hf_logging.set_verbosity_warning()
    cap = Capture()
    root = hf_logging.get_logger()
    root.addHandler(cap)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    finally:
        root.removeHandler(cap)
    bad = [w for w in cap.records if any(s in w.lower() for s in ("unrecognized", "unknown", "not used", "unexpected",
                                                                    "missing", "newly initialized", "invalid"))]
    if bad:
        sys.exit(f"{path}: transformers warned while loading: {bad}")
    if type(model).__name__ != opts["--arch"]:
        sys.exit(f"{path}: transformers loaded {type(model).__name__}, expected {opts['--arch']}")
    rope = model.config.rope_parameters or {}
    if "--rope-type" in opts and rope.get("rope_type") != opts["--rope-type"]:
        sys.exit(f"{path}: rope_type is {rope.get('rope_type')!r}, expected {opts['--rope-type']!r}")
    ref = load_file(ref_path)
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"], position_ids=ref["position_ids"],
                       attention_mask=torch.ones_like(ref["input_ids"]), use_cache=False).logits.float()
    err = ((logits - ref["logits"]).abs().max() / ref["logits"].abs().max()).item()
    if not err <= float(opts["--limit"]):
        sys.exit(f"{path}: logits differ from the reference by {err:.3e} (relative to max |logit|), limit {opts['--limit']}")
    print(json.dumps({"rel_err": err, "class": type(model).__name__}))


def longrope_grid(argv):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    cases = []
    for head_dim in (64, 96, 128):
        half = head_dim // 2
        short = [1.0 + 0.02 * i for i in range(half)]
        long = [1.0 + 0.5 * i ** 1.3 for i in range(half)]
        for theta, original, max_pos in ((1e4, 4096, 131072), (5e5, 2048, 8192), (1e6, 8192, 8192)):
            for variant in ("factor", "no_factor", "attention_factor", "top_level"):
                rope = {"rope_type": "longrope", "short_factor": short, "long_factor": long}
                top = {}
                if variant == "factor":
                    rope.update(factor=16.7, original_max_position_embeddings=original)
                elif variant == "no_factor":
                    rope.update(original_max_position_embeddings=original)
                elif variant == "attention_factor":
                    rope.update(attention_factor=1.1892, original_max_position_embeddings=original)
                else:  # Phi-3: original length at the top level only
                    top = {"original_max_position_embeddings": original}
                frag = {"vocab_size": 8, "hidden_size": head_dim * 4, "intermediate_size": 8, "num_hidden_layers": 1,
                        "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": head_dim, "model_type": "llama",
                        "max_position_embeddings": max_pos, "rope_theta": theta, "rope_scaling": rope, **top}
                for seq_len in (1, original // 2, original, original + 1, 3 * original):
                    cfg = AutoConfig.for_model(**json.loads(json.dumps(frag)))
                    emb = LlamaRotaryEmbedding(cfg)
                    emb(torch.zeros(1), torch.arange(seq_len).unsqueeze(0))
                    cases.append({"config": frag, "seq_len": seq_len, "inv_freq": emb.inv_freq.float().tolist(),
                                  "attention_factor": float(emb.attention_scaling)})
    with open(argv[0], "w") as f:
        json.dump(cases, f)
    print(f"wrote {len(cases)} longrope cases")


if __name__ == "__main__":
    {"export": check_export, "longrope": longrope_grid}[sys.argv[1]](sys.argv[2:])
