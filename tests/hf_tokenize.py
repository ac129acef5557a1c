#!/usr/bin/env python3
"""The `tokenizers` library's answer for `ropex tokenize` tests (tests/test_tokenize_cli.cpp).

  hf_tokenize.py encode TOKENIZER_JSON TEXT_FILE [--special]   -> {"ids": [...]}
  hf_tokenize.py decode TOKENIZER_JSON IDS_JSON [--special]    -> {"text": "..."}
  hf_tokenize.py auto MODEL_DIR TEXT_FILE                      -> {"ids": [...]} from transformers'
      AutoTokenizer(MODEL_DIR)(text).input_ids: what transformers feeds a model (special tokens added)

encode: encode(text, add_special_tokens=--special); decode: decode(ids, skip_special_tokens=not --special).
"""
import json
import sys

mode, path, arg = sys.argv[1:4]
special = "--special" in sys.argv[4:]
if mode == "auto":
    from transformers import AutoTokenizer
    text = open(arg, encoding="utf-8", newline="").read()
    print(json.dumps({"ids": AutoTokenizer.from_pretrained(path)(text)["input_ids"]}))
    sys.exit(0)
from tokenizers import Tokenizer
tok = Tokenizer.from_file(path)
if mode == "encode":
    text = open(arg, encoding="utf-8", newline="").read()
    print(json.dumps({"ids": tok.encode(text, add_special_tokens=special).ids}))
elif mode == "decode":
    ids = json.load(open(arg))["ids"]
    print(json.dumps({"text": tok.decode(ids, skip_special_tokens=not special)}))
else:
    sys.exit(f"hf_tokenize.py: unknown mode {mode!r}")
