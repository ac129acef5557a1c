#!/usr/bin/env python3
"""Self-check for bench/gpu_check.py (the driver of ./run.sh gpu-check): python tests/test_gpu_check.py

The real stages run in CI through `./run.sh gpu-check --cpu` (the end of ./run.sh test). This checks
what that run cannot show, with a fake `ropex` (a shell script) standing in for the binary:
  - a command that hangs is killed with its whole process group when its stage's budget ends, the
    stage is reported `timeout`, and the next stage still runs;
  - a stage whose check fails (`pass: false`, exit 1) is `fail`, and the run exits 1;
  - the whole-run deadline shortens later stages instead of letting one starve them;
  - the sdpa stage flags a failing cuDNN choice (the bench then runs ropex without it);
  - the bench stage fails on any missing number except a torch.compile baseline cut by time;
  - DIR gets exactly the four files, the table lists every stage.
Exit code 0 on success, 1 with a message on the first failure.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRIVER = HERE.parent / "bench" / "gpu_check.py"
sys.path.insert(0, str(DRIVER.parent))
import gpu_check  # noqa: E402  (the driver's own functions, for the stage-level checks)

FAKE = r"""#!/usr/bin/env bash
# A stand-in for build/ropex: `device-check env` hangs (with a child, to test the group kill),
# `parity` fails its check, `sdpa` reports cuDNN chosen and failing.
case "$1 $2" in
  "device-check env") sleep 300 & echo $! > "$PIDFILE"; sleep 300 ;;
  "device-check parity") echo '{"pass": false, "loss_rel": 0.5, "grad_rel_max": 0.1, "grad_worst": "x", "param_rel_max": 0, "tolerances": {}}'; exit 1 ;;
  "device-check sdpa") echo '{"pass": false, "tolerance": 0.02, "grad_tolerance": 0.05, "shapes": [{"name": "s", "choice": "cudnn", "ms": {"cudnn": null, "flash": 1.5}, "err": {"cudnn": null, "flash": 0.001}, "grad_err": {"cudnn": null, "flash": 0.002}, "errors": {"cudnn": "cuDNN Frontend error: No execution plans"}}]}'; exit 1 ;;
  *) echo "fake ropex: $*" >&2; exit 2 ;;
esac
"""


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def dead(pid, wait_s=5.0):
    """True once `pid` is gone or a zombie (killed, not yet reaped by its new parent)."""
    end = time.monotonic() + wait_s
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.1)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fake = tmp / "ropex"
        fake.write_text(FAKE)
        fake.chmod(0o755)
        pidfile = tmp / "child.pid"
        out = tmp / "out"
        env = dict(os.environ, PIDFILE=str(pidfile))
        # env's budget is 45 s on --cpu; x0.1 = 4.5 s, of which its python part takes two thirds.
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, DRIVER, "--ropex", fake, "--out", out, "--cpu", "--only", "env,fp32-parity,sdpa",
                            "--budget-scale", "0.1"], env=env, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        if p.returncode != 1:
            fail(f"exit {p.returncode}, expected 1 (stages failed)\n{p.stdout}\n{p.stderr}")
        if took > 60:
            fail(f"took {took:.0f} s: the hanging command was not cut at its budget")
        if sorted(f.name for f in out.iterdir()) != sorted(gpu_check.OUT_FILES):
            fail(f"DIR holds {sorted(f.name for f in out.iterdir())}, expected {sorted(gpu_check.OUT_FILES)}")
        summary = json.loads((out / "summary.json").read_text())
        results = {s["name"]: s for s in summary["stages"]}
        if results["env"]["result"] not in ("timeout", "fail") or results["env"]["pass"]:
            fail(f"env: {results['env']}")
        if "no result within" not in json.dumps(results["env"]):
            fail(f"env: the hang is not reported as one: {results['env']['figure']}")
        if results["fp32-parity"]["result"] != "fail" or "loss rel 5.0e-1" not in results["fp32-parity"]["figure"]:
            fail(f"fp32-parity: {results['fp32-parity']}")
        if results["sdpa"]["result"] != "fail" or "without cuDNN" not in results["sdpa"]["figure"]:
            fail(f"sdpa: a failing cuDNN choice must be flagged: {results['sdpa']['figure']}")
        table = (out / "table.md").read_text()
        for name in ("env", "fp32-parity", "sdpa"):
            if f"| {name} |" not in table:
                fail(f"table.md lacks {name}:\n{table}")
        # The hanging command's child (its process group) is gone: killed, so at most a zombie until
        # whoever inherited it reaps it.
        pid = int(pidfile.read_text())
        if not dead(pid):
            fail(f"the hanging command's child {pid} is still running")

        # The whole-run deadline: 30 s x 0.1 = 3 s for three stages; a later stage is not run or cut.
        out2 = tmp / "out2"
        p = subprocess.run([sys.executable, DRIVER, "--ropex", fake, "--out", out2, "--cpu", "--only", "env,fp32-parity,sdpa",
                            "--budget-scale", "0.1", "--deadline", "30"], env=env, capture_output=True, text=True,
                           timeout=120)
        summary = json.loads((out2 / "summary.json").read_text())
        if summary["total_seconds"] > 15:
            fail(f"the deadline of 3 s did not hold: {summary['total_seconds']} s")

        # The bench targets are marked only on a GPU, and a missed one does not fail the stage.
        class C:
            cuda, device, ropex, sdpa_without_cudnn = True, "cuda", "ropex", True
        runs = gpu_check.bench_runs(C())
        ropex_runs = [r for r in runs if r[1] == "ropex"]
        if not ropex_runs or any("flash,efficient,math" not in map(str, r[2]) for r in ropex_runs):
            fail("after a failing cuDNN choice the bench must run ropex with --sdpa-backends flash,efficient,math")
        # A torch.compile baseline cut by time is "not measured"; any other missing number fails.
        rows = [{"shape": "a", "impl": "ropex", "tokens_per_s": 1.0},
                {"shape": "a", "impl": "hf-compile", "tokens_per_s": None, "error": "timeout after 90 s"},
                {"shape": "b", "impl": "hf-compile", "tokens_per_s": None, "error": "exit 1: Inductor error"},
                {"shape": "b", "impl": "ropex", "tokens_per_s": None, "error": "timeout after 60 s"}]
        failed, unmeasured = gpu_check.bench_verdict(rows)
        if [f.split()[:2] for f in failed] != [["b", "hf-compile"], ["b", "ropex"]] or len(unmeasured) != 1:
            fail(f"bench verdict: failed {failed}, not measured {unmeasured}")
        pairs = [(r[0], r[1]) for r in runs]
        want = [(s, i) for i in ("ropex", "hf-eager", "hf-compile") for s in ("tinyllama-1.1b", "llama2-7b")]
        if pairs != want:
            fail(f"the GPU bench must run ropex, then eager, then compile, at both shapes: {pairs}")
    print("ok")


if __name__ == "__main__":
    main()
