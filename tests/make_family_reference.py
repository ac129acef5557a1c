#!/usr/bin/env python3
"""Reference outputs from transformers for ropex's model-family and LongRoPE parity tests.

Usage: make_family_reference.py OUTDIR

For each case below it builds a tiny random model with transformers' own class for its family
(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) and saves it with save_pretrained, so
config.json is exactly what transformers writes (5.x layout: rope_parameters, layer_types,
use_sliding_window, ...). A case may then replace config.json with a hand-written one (the Phi-3
layout of LongRoPE: top-level original_max_position_embeddings, rope_scaling without factor) that
transformers reads into the same model. Each case's reference_T<len>.safetensors holds what
tests/make_reference.py's reference() writes (input_ids, position_ids, logits, loss, every gradient,
logits_bf16), computed by transformers in float32 at that length. OUTDIR/cases.json lists
{case: {"files": [...], "architecture": ..., "model_type": ...}}.

LongRoPE switches from short to long factors once max(position_ids) + 1 exceeds the original length,
so its cases have one length below and one above it. The Mistral window case is longer than its
window, so the sliding-window mask is exercised.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import positions, reference  # noqa: E402

TINY = dict(vocab_size=320, hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-6)  # the models' settings (Llama-2's epsilon), not limits
HALF = 8  # head_dim 16 / 2: entries of a LongRoPE factor list


def factors(start, step):
    return [round(start + step * i, 4) for i in range(HALF)]


SHORT, LONG = factors(1.0, 0.05), factors(1.2, 0.9)

# name -> (config class, model class, config kwargs, [(length, contiguous positions?)], hand-written config.json
# keys or None). Jumpy position ids (steps of 1-3) reach about twice the length.
CASES = {
    "mistral_gqa": (MistralConfig, MistralForCausalLM,
                    dict(TINY, head_dim=24, sliding_window=None, max_position_embeddings=128, rope_parameters={
                        "rope_type": "default", "rope_theta": 1e6}), [(40, False)], None),
    # MistralConfig's own default window (4096): longer than any length here, so no effect, but it must load.
    "mistral_default_window": (MistralConfig, MistralForCausalLM, dict(TINY, max_position_embeddings=64), [(48, True)], None),
    "mistral_window": (MistralConfig, MistralForCausalLM, dict(TINY, sliding_window=16, max_position_embeddings=64),
                       [(48, True), (40, False)], None),
    "qwen2_tied": (Qwen2Config, Qwen2ForCausalLM,
                   dict(TINY, tie_word_embeddings=True, max_position_embeddings=64, bos_token_id=5, eos_token_id=6,
                        rope_parameters={"rope_type": "default", "rope_theta": 1e6}), [(40, False)], None),
    "qwen2_yarn": (Qwen2Config, Qwen2ForCausalLM,
                   dict(TINY, num_key_value_heads=4, max_position_embeddings=256, rope_parameters={
                       "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "rope_theta": 1e4}),
                   [(150, False)], None),
    # Llama 3.2's shape in small: tied embeddings, explicit head_dim, GQA, llama3 rope, eos list.
    "llama32_like": (LlamaConfig, LlamaForCausalLM,
                     dict(TINY, num_attention_heads=8, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                          max_position_embeddings=256, bos_token_id=0, eos_token_id=[1, 2, 3], rope_parameters={
                              "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 32, "rope_theta": 500000.0}),
                     [(100, False)], None),
    "longrope_llama": (LlamaConfig, LlamaForCausalLM,
                       dict(TINY, max_position_embeddings=256, rope_parameters={
                           "rope_type": "longrope", "short_factor": SHORT, "long_factor": LONG, "factor": 4.0,
                           "original_max_position_embeddings": 64, "rope_theta": 1e4}),
                       [(50, True), (64, True), (65, True), (60, False)], None),
    # Phi-3's layout: original length at the top level, no factor (attention factor from 256 / 32). The
    # rope dict's own original length (64) loses to the top-level one, as in transformers' rotary embedding.
    "longrope_phi3_layout": (LlamaConfig, LlamaForCausalLM,
                             dict(TINY, max_position_embeddings=256, rope_parameters={
                                 "rope_type": "longrope", "short_factor": SHORT, "long_factor": LONG,
                                 "original_max_position_embeddings": 32, "rope_theta": 1e4}),
                             [(30, True), (100, False)],
                             {"original_max_position_embeddings": 32,
                              "rope_scaling": {"type": "longrope", "short_factor": SHORT, "long_factor": LONG,
                                               "original_max_position_embeddings": 64}}),
    "longrope_qwen2_attention_factor": (Qwen2Config, Qwen2ForCausalLM,
                                        dict(TINY, max_position_embeddings=200, rope_parameters={
                                            "rope_type": "longrope", "short_factor": LONG, "long_factor": SHORT,
                                            "attention_factor": 1.3, "original_max_position_embeddings": 48,
                                            "rope_theta": 1e5}), [(40, True), (120, False)], None),
}


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4321)
    index = {}
    for name, (config_cls, model_cls, kwargs, lengths, hand_config) in CASES.items():
        case_dir = os.path.join(outdir, name)
        config = config_cls(**kwargs)
        config._attn_implementation = "sdpa"
        model = model_cls(config).float()
        with torch.no_grad():  # random norms and biases so every parameter matters
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
                elif pname.endswith(".bias"):
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        model.save_pretrained(case_dir, safe_serialization=True)
        if hand_config is not None:
            path = os.path.join(case_dir, "config.json")
            with open(path) as f:
                cfg = json.load(f)
            rope_theta = cfg.pop("rope_parameters")["rope_theta"]
            cfg.update(hand_config, rope_theta=rope_theta)
            with open(path, "w") as f:
                json.dump(cfg, f, indent=2)
            # The reference is computed by the model transformers loads from that file.
            model = model_cls.from_pretrained(case_dir, torch_dtype=torch.float32, attn_implementation="sdpa")
        files = []
        for length, contiguous in lengths:
            ids = torch.randint(0, TINY["vocab_size"], (2, length), generator=gen)
            pos = positions(2, length, contiguous, gen)
            fname = f"reference_T{length}.safetensors"
            save_file(reference(model, ids, pos), os.path.join(case_dir, fname))
            files.append(fname)
        index[name] = {"files": files, "architecture": model_cls.__name__, "model_type": config.model_type}
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(f"wrote {len(index)} family reference cases to {outdir}")


if __name__ == "__main__":
    main()
