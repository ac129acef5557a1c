#!/usr/bin/env python3
"""Seed inputs and dictionaries for the fuzz targets in tests/fuzz (run by `./run.sh fuzz`).

Writes OUT/seeds/<target>/ (valid files made by the libraries that write these formats for real:
safetensors, transformers' LlamaConfig, sentencepiece, and the token store and checkpoint state
formats as ropex writes them) and OUT/dict/<target>.dict (tests/fuzz/json.dict plus the keys and
names of that format). The small hand-written seeds committed under tests/fuzz/corpus/<target>/ are
used beside these; binary seeds are made here rather than committed.

Inputs made of several files are joined with the separator line of tests/fuzz/fuzz_util.h.
Deterministic: the same files every run. Does not run any fuzzer.

usage: make_seeds.py OUT        (needs numpy, safetensors, sentencepiece; transformers and torch
                                 for a few more seeds, skipped with a note when missing)
"""
import io
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

SEP = b"\n--8<--\n"  # fuzz_util.h's kPartSeparator
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def write(out: Path, target: str, name: str, data) -> None:
    d = out / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def jdump(obj) -> str:
    return json.dumps(obj, indent=2) + "\n"


# ---- safetensors ----
def safetensors_files():
    from safetensors.numpy import save

    files = {
        "small_f32.safetensors": save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, metadata={"format": "pt"}),
        "mixed.safetensors": save(
            {
                "model.embed_tokens.weight": np.ones((4, 2), dtype=np.float16),
                "ids": np.arange(3, dtype=np.int64),
                "mask": np.array([True, False]),
                "empty": np.zeros((0, 3), dtype=np.uint8),
                "scalar": np.array(1.5, dtype=np.float64),
                "i8": np.array([-1, 2], dtype=np.int8),
                "u16": np.array([7], dtype=np.uint16),
                "i32": np.array([[1], [2]], dtype=np.int32),
            },
            metadata={"format": "pt", "note": "seed"},
        ),
        "no_metadata.safetensors": save({"a": np.zeros(1, dtype=np.uint32), "b": np.zeros(2, dtype=np.uint64)}),
    }
    try:
        import torch
        from safetensors.torch import save as tsave

        files["bf16_f8.safetensors"] = tsave(
            {
                "q": torch.ones(2, 2, dtype=torch.bfloat16),
                "e4": torch.zeros(3, dtype=torch.float8_e4m3fn),
                "e5": torch.zeros(3, dtype=torch.float8_e5m2),
            },
            metadata={"format": "pt"},
        )
    except Exception as e:  # torch is optional here
        print(f"make_seeds: no bfloat16/float8 safetensors seed ({e})", file=sys.stderr)
    return files


def safetensors_seeds(out: Path) -> None:
    for name, data in safetensors_files().items():
        write(out, "safetensors", name, data)


def index_seeds(out: Path) -> None:
    from safetensors.numpy import save

    shards = [
        {"model.embed_tokens.weight": np.ones((4, 2), dtype=np.float32), "model.norm.weight": np.ones(2, dtype=np.float32)},
        {"lm_head.weight": np.ones((4, 2), dtype=np.float16)},
    ]
    for count in (1, 2):
        names = [f"model-{k + 1:05d}-of-{count:05d}.safetensors" for k in range(count)]
        weight_map, blobs, total = {}, [], 0
        for k in range(count):
            for t, a in shards[k].items():
                weight_map[t] = names[k]
                total += a.nbytes
            blobs.append(save(shards[k], metadata={"format": "pt"}))
        if count == 1:  # the single shard holds everything
            weight_map = {t: names[0] for s in shards for t in s}
            blobs = [save({**shards[0], **shards[1]}, metadata={"format": "pt"})]
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        write(out, "safetensors_index", f"shards_{count}", SEP.join([jdump(index).encode(), *blobs]))
    # An index without metadata (allowed) over two shards.
    index = {"weight_map": {t: f"model-{k + 1:05d}-of-00002.safetensors" for k in range(2) for t in shards[k]}}
    write(out, "safetensors_index", "no_metadata",
          SEP.join([jdump(index).encode(), *(save(s) for s in shards)]))


# ---- HF config.json ----
def llama_config_seeds(out: Path) -> None:
    try:
        from transformers import LlamaConfig
    except Exception as e:
        print(f"make_seeds: no transformers config seeds ({e})", file=sys.stderr)
        return
    tiny = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=256)
    ropes = {
        "default": None,
        "linear": {"rope_type": "linear", "factor": 4.0},
        "dynamic": {"rope_type": "dynamic", "factor": 2.0},
        "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32.0,
                 "beta_slow": 1.0},
        "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 64},
    }
    for name, rope in ropes.items():
        kwargs = dict(tiny)
        if rope is not None:
            kwargs["rope_scaling"] = rope
        try:
            text = LlamaConfig(**kwargs).to_json_string()
        except Exception as e:
            print(f"make_seeds: transformers refused the {name} config ({e})", file=sys.stderr)
            continue
        write(out, "llama_config", f"tiny_{name}.json", text)
    write(out, "llama_config", "llama2_7b_default.json", LlamaConfig().to_json_string())


def llama_config_keys():
    keys = {"rope_scaling", "rope_parameters", "rope_type", "type", "factor", "original_max_position_embeddings",
            "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate", "low_freq_factor",
            "high_freq_factor", "rope_theta", "partial_rotary_factor", "head_dim", "torch_dtype", "dtype", "linear",
            "dynamic", "yarn", "dynamic-yarn", "llama3", "ntk", "default", "bfloat16", "float16", "float32", "silu"}
    try:
        from transformers import LlamaConfig

        keys |= set(LlamaConfig().to_dict())
    except Exception:
        pass
    return sorted(keys)


# ---- run config ----
def run_config_seeds(out: Path) -> None:
    files = sorted((ROOT / "configs").rglob("*.json"))
    for f in files:
        rel = f.relative_to(ROOT / "configs").as_posix().replace("/", "_")
        text = f.read_text()
        write(out, "run_config", rel, text)
        # The same with model.path at a folder that exists (validate() checks it) and a few --set lines.
        doc = json.loads(text)
        doc.setdefault("model", {})["path"] = "."
        # Sample --set lines for the fuzzer to mutate: ordinary valid settings, not limits or tolerances.
        overrides = ["optim.lr=3e-4", "model.activation_checkpointing=2", "rope.extra={\"beta_fast\": 16}",
                     "run.name=123", "sampler.name=contiguous"]
        write(out, "run_config", "set_" + rel, jdump(doc).encode() + SEP + "\n".join(overrides).encode() + b"\n")


def run_config_keys():
    keys = set()
    readme = ROOT / "configs" / "README.md"
    if readme.exists():
        for m in re.finditer(r"^\| `?([a-z_]+(?:\.[a-z_0-9]+)+)`? \|", readme.read_text(), re.M):
            keys.add(m.group(1))
    words = set()
    for k in keys:
        words.add(k)
        words.update(k.split("."))
    return sorted(words)


# ---- token store ----
def store_bytes(docs, vocab, extra=None):
    width = 2 if vocab <= 65536 else 4
    offsets = [0]
    for d in docs:
        offsets.append(offsets[-1] + len(d))
    meta = {"format": "ropex-token-store", "version": 1, "vocab_size": vocab, "token_bytes": width,
            "num_documents": len(docs), "num_tokens": offsets[-1], **(extra or {})}
    index = struct.pack(f"<{len(offsets)}Q", *offsets)
    flat = [t for d in docs for t in d]
    tokens = struct.pack(f"<{len(flat)}{'H' if width == 2 else 'I'}", *flat)
    return SEP.join([jdump(meta).encode(), index, tokens])


def token_store_seeds(out: Path) -> None:
    write(out, "token_store", "u16", store_bytes([[1, 5, 9, 2], [1, 2], [], [1, 7, 7, 7, 2]], 32000,
                                                 {"tokenizer": {"path": "/x/tok.model", "size": 1, "fnv1a64": "0123456789abcdef",
                                                                "vocab_size": 32000, "bos_id": 1, "eos_id": 2},
                                                  "prepare": {"inputs": ["a.jsonl"], "text_field": "text"},
                                                  "stats": {"documents": 4}}))
    write(out, "token_store", "u32", store_bytes([[1, 70000, 2], [3]], 128256))
    write(out, "token_store", "empty", store_bytes([], 10))


# ---- SentencePiece tokenizer.model ----
def tokenizer_seeds(out: Path) -> None:
    import sentencepiece as spm

    text = (ROOT / "README.md").read_text(errors="replace").splitlines()
    sentences = [s for s in text if s.strip()][:400] + ["Hello wörld 12345 τεστ", "the quick brown fox"]
    common = dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1, normalization_rule_name="identity", add_dummy_prefix=True,
                  remove_extra_whitespaces=False, split_digits=True, minloglevel=2, num_threads=1)
    for name, opts in {"bpe_bytes": dict(model_type="bpe", vocab_size=400, byte_fallback=True),
                       "unigram": dict(model_type="unigram", vocab_size=120),
                       "char": dict(model_type="char", vocab_size=60, character_coverage=0.98),
                       "word": dict(model_type="word", vocab_size=80)}.items():
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf, **common, **opts)
        except Exception as e:
            print(f"make_seeds: sentencepiece could not train the {name} seed ({e})", file=sys.stderr)
            continue
        write(out, "tokenizer", f"{name}.model", buf.getvalue())


# ---- deep nesting ----
def deep_seeds(out: Path) -> None:
    """Values nested 1200-2000 deep where each reader looks (4-8 KB, within every target's max_len): run
    with a 1 MiB stack (run.sh), recursion that follows the input's depth overflows on them."""
    arr, obj = "[" * 2000 + "]" * 2000, '{"a":' * 1200 + "1" + "}" * 1200
    for i, deep in enumerate((arr, obj)):
        write(out, "json", f"deep_{i}.json", deep)
        write(out, "llama_config", f"deep_{i}.json", '{"hidden_size": 64, "rope_scaling": %s}' % deep)
        write(out, "run_config", f"deep_{i}.json", '{"optim": {"lr": %s}}' % deep)
        write(out, "token_store", f"deep_{i}", '{"format": "ropex-token-store", "version": %s}' % deep)
        write(out, "checkpoint_state", f"deep_{i}.json", '{"format": "ropex-checkpoint", "step": %s}' % deep)
        write(out, "checkpoint_manifest", f"deep_{i}.json", '{"format": "ropex-checkpoint", "tensors": {"a": %s}}' % deep)
        header = ('{"w": {"dtype": "F32", "shape": %s, "data_offsets": [0, 4]}}' % deep).encode()
        write(out, "safetensors", f"deep_{i}.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 4)
        index = ('{"weight_map": {"w": %s}}' % deep).encode()
        write(out, "safetensors_index", f"deep_{i}", index)
    lines = "".join('{"text": %s}\n' % d for d in (arr, obj))
    write(out, "prepare", "deep.jsonl", lines)


# ---- dictionaries ----
def write_dicts(out: Path, targets) -> None:
    base = (HERE / "json.dict").read_text()
    extra = {
        "safetensors": ["__metadata__", "dtype", "shape", "data_offsets", "format", "pt", "BOOL", "U8", "I8", "I16",
                        "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"],
        "llama_config": llama_config_keys(),
        "run_config": run_config_keys() + ["=", "true", "false"],
        "token_store": ["ropex-token-store", "format", "version", "vocab_size", "token_bytes", "num_documents",
                        "num_tokens", "tokenizer", "fnv1a64", "prepare", "stats"],
        "prepare": ["text", "\\n\\n", "\\u0000", "\\ud800"],
        "checkpoint_state": ["ropex-checkpoint", "format", "version", "step", "optimizer_steps", "tokens_seen",
                             "world_size", "seed", "skipped_steps", "consecutive_skips", "step_00000100"],
        "checkpoint_manifest": ["ropex-checkpoint", "format", "version", "step", "world_size", "tensors", "files", "name",
                                "bytes", "xxh3", "trainer_state.json", "config.json", "run_config.json", "rank_0.json",
                                "shard-00000-of-00001.safetensors", "0123456789abcdef"],
    }
    extra["safetensors_index"] = extra["safetensors"] + ["weight_map", "metadata", "total_size",
                                                         "model-00001-of-00002.safetensors", "../", "/"]
    d = out / "dict"
    d.mkdir(parents=True, exist_ok=True)
    for t in targets:
        lines = [base]
        for i, w in enumerate(extra.get(t, [])):
            esc = w.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'kw_{i}="{esc}"\n')
            lines.append(f'kwq_{i}="\\"{esc}\\""\n')
        (d / f"{t}.dict").write_text("".join(lines))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    safetensors_seeds(out)
    index_seeds(out)
    llama_config_seeds(out)
    run_config_seeds(out)
    token_store_seeds(out)
    tokenizer_seeds(out)
    deep_seeds(out)
    write_dicts(out, ["safetensors", "safetensors_index", "llama_config", "run_config", "token_store", "prepare",
                      "tokenizer", "json", "checkpoint_state", "checkpoint_manifest"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
