#!/usr/bin/env python3
"""The demo's corpus: the Python standard library's own source files (the top-level *.py modules of
the interpreter running this script, which every Python installation ships). Source code is a good
small long-context corpus: names defined near the top of a module recur thousands of tokens later,
so a model that can attend far predicts it better, and one whose positions break past its window
predicts it worse.

Files are taken in sorted order; every 8th is held out for perplexity. Writes to OUT_DIR:
  train.jsonl, heldout.jsonl   one {"text": ...} per module (for `ropex prepare`)
  train.txt                    the training modules concatenated (for `ropex train-tokenizer`)
  corpus.json                  where the files came from, which are held out, and the sizes

usage: demo_corpus.py OUT_DIR
"""
import json
import os
import sys
import sysconfig


def main(argv):
    if len(argv) != 1:
        sys.exit(__doc__)
    out = argv[0]
    stdlib = sysconfig.get_paths()["stdlib"]
    names = sorted(n for n in os.listdir(stdlib) if n.endswith(".py"))
    if len(names) < 80:
        sys.exit(f"demo_corpus.py: error: {stdlib} holds only {len(names)} .py modules; expected the "
                 f"standard library (about 170 top-level modules in Python 3.11)")
    os.makedirs(out, exist_ok=True)
    split = {"train": [], "heldout": []}
    for i, name in enumerate(names):
        split["heldout" if i % 8 == 7 else "train"].append(name)
    sizes = {}
    for part, files in split.items():
        texts = []
        for name in files:
            with open(os.path.join(stdlib, name), encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        with open(os.path.join(out, part + ".jsonl.partial"), "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        if part == "train":
            with open(os.path.join(out, "train.txt.partial"), "w", encoding="utf-8") as f:
                f.write("\n".join(texts))
        sizes[part] = sum(len(t) for t in texts)
    manifest = {"source": stdlib, "python": sys.version.split()[0], "every_nth_held_out": 8,
                "characters": sizes, "heldout": split["heldout"], "train": split["train"]}
    with open(os.path.join(out, "corpus.json.partial"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    for name in ("train.jsonl", "heldout.jsonl", "train.txt", "corpus.json"):  # corpus.json last: the marker
        os.replace(os.path.join(out, name + ".partial"), os.path.join(out, name))
    print(f"{len(split['train'])} training modules ({sizes['train']:,} characters), "
          f"{len(split['heldout'])} held out ({sizes['heldout']:,}), from {stdlib}")


if __name__ == "__main__":
    main(sys.argv[1:])
