#!/usr/bin/env python3
"""A tiny random model of a family, saved by transformers with a tokenizer.json, and its NLL on a text.

  hf_family_score.py make FAMILY OUTDIR TOKENIZER_JSON   writes OUTDIR (config.json, model.safetensors,
      tokenizer.json, tokenizer_config.json) for FAMILY in llama3, qwen2, mistral
  hf_family_score.py score OUTDIR TEXT_FILE              prints {"tokens", "nll"}: the text's ids as the
      `tokenizers` library gives them with add_special_tokens=True (what `ropex score` must use),
      and transformers' float32 mean next-token NLL on them (eager attention)

For tests/test_tokenize_cli.cpp's check that `ropex score` equals transformers on Qwen2, Mistral
and Llama-3 directories that ship only tokenizer.json.
"""
import json
import os
import shutil
import sys

import torch
from tokenizers import Tokenizer

mode = sys.argv[1]
if mode == "make":
    family, out, tok_path = sys.argv[2:5]
    import transformers as tf
    vocab = Tokenizer.from_file(tok_path).get_vocab_size(with_added_tokens=True)
    common = dict(vocab_size=vocab + 7, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6)  # the models' settings (Llama-2's epsilon), not limits
    if family == "qwen2":
        cfg = tf.Qwen2Config(**common, tie_word_embeddings=True, use_sliding_window=False, rope_theta=1000000.0)
        cls, special = tf.Qwen2ForCausalLM, {"bos_token": None, "eos_token": "<|endoftext|>"}
    elif family == "mistral":
        cfg = tf.MistralConfig(**common, sliding_window=None, rope_theta=1000000.0)
        cls, special = tf.MistralForCausalLM, {"bos_token": "<s>", "eos_token": "</s>"}
    elif family == "llama3":
        cfg = tf.LlamaConfig(**common, tie_word_embeddings=True, rope_theta=500000.0,
                             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        cls, special = tf.LlamaForCausalLM, {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
    else:
        sys.exit(f"unknown family {family!r}")
    torch.manual_seed(0)
    model = cls(cfg).to(torch.float32)
    with torch.no_grad():
        for p in model.parameters():  # weights large enough that the NLL depends on every layer
            p.normal_(0, 0.08)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(tok_path, os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(special, f)
elif mode == "score":
    out, text_path = sys.argv[2:4]
    from transformers import AutoModelForCausalLM
    text = open(text_path, encoding="utf-8", newline="").read()
    ids = Tokenizer.from_file(os.path.join(out, "tokenizer.json")).encode(text, add_special_tokens=True).ids
    model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        x = torch.tensor([ids])
        loss = model(input_ids=x, labels=x).loss.item()
    print(json.dumps({"tokens": len(ids), "nll": loss, "ids": ids}))
else:
    sys.exit(f"unknown mode {mode!r}")
