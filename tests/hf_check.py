#!/usr/bin/env python3
"""transformers-side checks called by ropex's C++ tests (exit code 0 = pass, message on stderr).

  hf_check.py export DIR REFERENCE [--rope-type T] [--max-pos N]
      DIR (written by ropex) must load in transformers with no warning about unknown or unused
      config keys, carry the expected rope type / max_position_embeddings, and reproduce the
      reference logits (REFERENCE: a reference.safetensors from make_reference.py) to 1e-5.
  hf_check.py score DIR TEXT MAX_TOKENS
      prints {"tokens", "nll", "ppl"} as transformers computes them for ropex's `score` protocol:
      the text's first MAX_TOKENS tokens with BOS, one window, mean next-token NLL.
"""
import json
import logging
import math
import sys

import torch
import sentencepiece as spm
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
from transformers.utils import logging as hf_logging


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_capturing_warnings(path):
    hf_logging.set_verbosity_warning()
    cap = Capture()
    root = hf_logging.get_logger()  # transformers' library root logger
    root.addHandler(cap)
    try:
        model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="sdpa")
    finally:
        root.removeHandler(cap)
    return model, cap.records


def check_export(argv):
    path, ref_path = argv[0], argv[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    model, warnings = load_capturing_warnings(path)
    bad = [w for w in warnings if any(s in w.lower() for s in ("unrecognized", "unknown", "not used", "unexpected",
                                                                 "missing", "newly initialized", "invalid"))]
    if bad:
        sys.exit(f"{path}: transformers warned while loading: {bad}")
    cfg = model.config
    rope = cfg.rope_parameters or {}
    if "--rope-type" in opts and rope.get("rope_type") != opts["--rope-type"]:
        sys.exit(f"{path}: rope_type is {rope.get('rope_type')!r}, expected {opts['--rope-type']!r}")
    if "--max-pos" in opts and cfg.max_position_embeddings != int(opts["--max-pos"]):
        sys.exit(f"{path}: max_position_embeddings is {cfg.max_position_embeddings}, expected {opts['--max-pos']}")
    ref = load_file(ref_path)
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"], position_ids=ref["position_ids"],
                       attention_mask=torch.ones_like(ref["input_ids"]), use_cache=False).logits.float()
    err = ((logits - ref["logits"]).abs().max() / ref["logits"].abs().max()).item()
    if not err <= 1e-5:
        sys.exit(f"{path}: logits differ from the reference by {err:.3e} (relative to max |logit|), limit 1e-5")
    print(json.dumps({"rel_err": err, "warnings": warnings}))


def score(argv):
    path, text_path, max_tokens = argv[0], argv[1], int(argv[2])
    sp = spm.SentencePieceProcessor(model_file=f"{path}/tokenizer.model")
    with open(text_path, encoding="utf-8") as f:
        ids = [sp.bos_id()] + sp.encode(f.read())
    ids = torch.tensor([ids[:max_tokens]])
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="sdpa")
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids, use_cache=False)
    nll = out.loss.item()
    print(json.dumps({"tokens": ids.shape[1], "nll": nll, "ppl": math.exp(nll)}))


def rope(argv):
    """rope DIR ROPE_SCALING_JSON: transformers' inv_freq and attention factor for DIR's config with
    rope_scaling replaced (the same thing `ropex inspect rope --rope-scaling` prints)."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    with open(f"{argv[0]}/config.json") as f:
        cfg = json.load(f)
    cfg.pop("rope_parameters", None)
    cfg["rope_scaling"] = json.loads(argv[1])
    config = LlamaConfig(**cfg)
    rtype = config.rope_parameters.get("rope_type", "default")
    if rtype == "default":
        inv, att = LlamaRotaryEmbedding.compute_default_rope_parameters(config)
    else:
        inv, att = ROPE_INIT_FUNCTIONS[rtype](config, "cpu")
    print(json.dumps({"inv_freq": inv.float().tolist(), "attention_factor": float(att)}))


if __name__ == "__main__":
    {"export": check_export, "score": score, "rope": rope}[sys.argv[1]](sys.argv[2:])
