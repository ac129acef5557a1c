"""Reads TensorBoard event files back with TensorBoard's own code, for tests/test_tensorboard.cpp.

  tb_read.py scalars RUN_DIR OUT.json
      every scalar EventAccumulator finds in RUN_DIR (purge_orphaned_data on, its default; every
      event kept: size_guidance 0), as {"files": [names], "file_version": float,
      "scalars": {tag: [[step, value, wall_time], ...]}}; a NaN value is null, infinities "inf"/"-inf"
  tb_read.py crc32c OUT.json HEX...
      TensorBoard's own pure-Python CRC32C of each hex string: [[crc32c, masked_crc32c], ...]

The result goes to OUT.json: TensorBoard logs to stderr (a purge is a warning), which the tests'
command runner mixes with stdout.
"""
import json
import math
import os
import sys


def value(v):
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def scalars(run_dir):
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(run_dir, size_guidance={ea.SCALARS: 0})
    acc.Reload()
    return {
        "files": sorted(f for f in os.listdir(run_dir) if "tfevents" in f),
        "file_version": acc.file_version,
        "scalars": {tag: [[e.step, value(e.value), e.wall_time] for e in acc.Scalars(tag)]
                    for tag in acc.Tags()["scalars"]},
    }


def crcs(hexes):
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as pw

    return [[pw.crc32c(bytes.fromhex(h)), pw.masked_crc32c(bytes.fromhex(h))] for h in hexes]


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "scalars" and len(args) == 2:
        out, result = args[1], scalars(args[0])
    elif mode == "crc32c" and len(args) >= 1:
        out, result = args[0], crcs(args[1:])
    else:
        sys.exit(__doc__)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
