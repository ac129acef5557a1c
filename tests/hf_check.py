#!/usr/bin/env python3
"""transformers-side checks called by ropex's C++ tests (exit code 0 = pass, message on stderr).

  hf_check.py export DIR REFERENCE --limit L [--rope-type T] [--max-pos N]
      DIR (written by ropex) must load in transformers with no warning about unknown or unused
      config keys, carry the expected rope type / max_position_embeddings, and reproduce the
      reference logits (REFERENCE: input_ids, position_ids, logits) within L relative to the largest
      |logit| (the caller derives L from the model's shape: tests/tolerance.h).
  hf_check.py score DIR TEXT MAX_TOKENS
      prints {"tokens", "nll", "ppl"} as transformers computes them for ropex's `score` protocol:
      the text's first MAX_TOKENS tokens with BOS, one window, mean next-token NLL.
  hf_check.py ppl DIR DOCS_JSON LENGTHS STRIDE
      perplexity by length as evaluation_protocols.md defines it, written independently of ropex:
      DOCS_JSON is a list of token lists (no BOS); for each L in LENGTHS (comma-separated) the docs
      with >= L-1 tokens, truncated (BOS + first L-1 tokens) and sliding (window L, stride STRIDE,
      labels of already-scored tokens set to -100 as in transformers' perplexity guide); prints
      {"truncated": [rows], "sliding": [rows]} with ppl (mean of window means) and token-weighted ppl.
  hf_check.py greedy DIR IDS_JSON MAX_NEW
      transformers' greedy generate() continuation of the prompt ids (BOS included), as a JSON list.
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
    limit = float(opts["--limit"])
    if not err <= limit:
        sys.exit(f"{path}: logits differ from the reference by {err:.3e} (relative to max |logit|), limit {limit:.3e}")
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


def ppl(argv):
    path, docs_path, lengths, stride = argv[0], argv[1], [int(x) for x in argv[2].split(",")], int(argv[3])
    with open(docs_path) as f:
        docs = json.load(f)
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")
    bos = model.config.bos_token_id

    def window(tokens, n_scored):
        """Sum of NLL over the last n_scored predicted tokens of [BOS] + tokens."""
        ids = torch.tensor([[bos] + tokens])
        labels = ids.clone()
        labels[:, : ids.shape[1] - n_scored] = -100
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits.double()
        lp = torch.log_softmax(logits[0, :-1], -1)
        tgt = labels[0, 1:]
        keep = tgt != -100
        return -lp[keep].gather(1, tgt[keep].unsqueeze(1)).sum().item(), int(keep.sum())

    def rows(protocol):
        out = []
        for L in lengths:
            chosen = [d for d in docs if len(d) >= L - 1]
            wins = []
            for d in chosen:
                if protocol == "truncated":
                    wins.append(window(d[: L - 1], L - 1))
                    continue
                prev_end = 0
                for begin in range(0, len(d), stride):
                    end = min(begin + L - 1, len(d))
                    if end > prev_end:
                        wins.append(window(d[begin:end], end - max(prev_end, begin)))
                    prev_end = end
                    if end == len(d):
                        break
            wins = [w for w in wins if w[1] > 0]
            nll = sum(w[0] for w in wins)
            tokens = sum(w[1] for w in wins)
            mean_of_means = sum(w[0] / w[1] for w in wins) / len(wins)
            out.append({"length": L, "docs": len(chosen), "windows": len(wins), "tokens": tokens,
                        "ppl": math.exp(mean_of_means), "ppl_token_weighted": math.exp(nll / tokens)})
        return out

    print(json.dumps({"truncated": rows("truncated"), "sliding": rows("sliding")}))


def greedy(argv):
    path, ids, max_new = argv[0], json.loads(argv[1]), int(argv[2])
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=max_new, eos_token_id=model.config.eos_token_id,
                             pad_token_id=model.config.eos_token_id)
    new = out[0, len(ids):].tolist()
    eos = model.config.eos_token_id
    if eos in new:
        new = new[: new.index(eos)]
    print(json.dumps(new))


if __name__ == "__main__":
    {"export": check_export, "score": score, "rope": rope, "ppl": ppl, "greedy": greedy}[sys.argv[1]](sys.argv[2:])
