#!/usr/bin/env python3
"""Pictures and a markdown summary for `ropex eval` results.

Usage: plot_eval.py --output OUTDIR RESULTS [RESULTS ...]

Each RESULTS is a results.json written by `ropex eval`, or a directory holding
one. Several models are drawn on the same figures, labelled by "label". Writes
(each only when some input has the section) ppl_vs_length.png,
passkey_heatmap.png, kv_by_position.png, and always summary.md; prints the
paths written, one per line. A missing or malformed input is a one-line error
and exit code 2.
"""
import argparse
import json
import math
import os
import sys

try:
    import matplotlib
except ImportError:
    print("plot_eval.py: error: matplotlib is not installed for this Python "
          "(use .venv/bin/python, or pip install -r requirements.txt)", file=sys.stderr)
    sys.exit(2)
matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

CLIP = 1e4  # perplexities above this (or non-finite) are drawn at the top of the axis
DPI = 120
PPL_PROTOCOLS = ("truncated", "sliding")


class InputError(Exception):
    pass


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_grid(sec, name, cols_key, col_kind):
    """sec["accuracy"]: one row per sec["lengths"], each one value (or null) per sec[cols_key]."""
    rows, cols, grid = sec.get("lengths"), sec.get(cols_key), sec.get("accuracy")
    if not all(isinstance(x, list) for x in (rows, cols, grid)):
        raise InputError(f"{name}: needs lists 'lengths', '{cols_key}' and 'accuracy'")
    is_kind = _number if col_kind == "number" else (lambda x: isinstance(x, str))
    if not all(_number(x) for x in rows) or not all(is_kind(x) for x in cols):
        raise InputError(f"{name}: 'lengths' must be numbers and '{cols_key}' {col_kind}s")
    if len(grid) != len(rows) or any(not isinstance(r, list) or len(r) != len(cols) for r in grid):
        raise InputError(f"{name}.accuracy: expected {len(rows)} rows (lengths) "
                         f"of {len(cols)} values ({cols_key})")
    if not all(_number(v) or v is None for r in grid for v in r):
        raise InputError(f"{name}.accuracy: values must be numbers or null")


def load(path):
    """Reads and checks one results file; raises InputError naming the problem."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            res = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})")
    try:
        if not isinstance(res, dict) or res.get("ropex_eval") != 1:
            raise InputError("not a ropex eval results file (expected \"ropex_eval\": 1)")
        if not isinstance(res.get("label"), str) or not res["label"]:
            raise InputError("missing 'label'")
        for sec in ("ppl", "passkey", "kv"):
            if res.get(sec) is not None and not isinstance(res[sec], dict):
                raise InputError(f"'{sec}' must be an object")
        ppl = res.get("ppl")
        if ppl is not None:
            for proto in PPL_PROTOCOLS:
                if proto not in ppl:
                    continue
                rows = ppl[proto].get("rows") if isinstance(ppl[proto], dict) else None
                if not isinstance(rows, list) or not all(
                        isinstance(r, dict) and _number(r.get("length")) and
                        (_number(r.get("ppl")) or r.get("ppl") is None) for r in rows):
                    raise InputError(f"ppl.{proto}.rows: expected a list of {{\"length\", \"ppl\", ...}}")
        if res.get("passkey") is not None:
            _check_grid(res["passkey"], "passkey", "depths", "number")
        if res.get("kv") is not None:
            _check_grid(res["kv"], "kv", "bins", "string")
    except InputError as e:
        raise InputError(f"{path}: {e}")
    except (TypeError, AttributeError, KeyError) as e:
        raise InputError(f"{path}: unexpected structure ({e})")
    return res


def fmt_len(n):
    n = int(n)
    return f"{n // 1024}k" if n >= 1024 and n % 1024 == 0 else str(n)


def fmt_ppl(v):
    if not math.isfinite(v):
        return "non-finite"
    return f"{v:.2f}" if v < CLIP else f"{v:.3g}"


def opt(v):
    return "—" if v is None else str(v)


def fmt_acc(v):
    return "—" if v is None else f"{100 * v:.1f}%"


def ppl_section(res, proto):
    return (res.get("ppl") or {}).get(proto) or {}


def ppl_rows(res, proto):
    """(length, ppl) sorted by length. A null ppl is a skipped length when the row has no
    documents ("docs": 0) and left out; otherwise it is an overflow (nlohmann writes NaN and
    inf as null) and counts as non-finite."""
    rows = ppl_section(res, proto).get("rows", [])
    return sorted((int(r["length"]), float("inf") if r["ppl"] is None else float(r["ppl"]))
                  for r in rows if r["ppl"] is not None or r.get("docs") != 0)


def plot_ppl(results, protos, out):
    fig, axes = plt.subplots(1, len(protos), figsize=(6.5 * len(protos), 5.2), squeeze=False,
                             layout="constrained")
    pre_lens = sorted({r["pretrained_len"] for r in results if _number(r.get("pretrained_len"))})
    any_clipped = False
    for ax, proto in zip(axes[0], protos):
        lengths, panel_clipped = set(), False
        for res in results:
            rows = ppl_rows(res, proto)
            if not rows:
                continue
            colour = res["_colour"]
            xs = [L for L, _ in rows]
            ys = [min(v, CLIP) if math.isfinite(v) else CLIP for _, v in rows]
            lengths.update(xs)
            ax.plot(xs, ys, "o-", color=colour, label=res["label"])
            clipped = [(L, v) for L, v in rows if not (math.isfinite(v) and v <= CLIP)]
            if clipped:
                panel_clipped = any_clipped = True
                xs = [L for L, _ in clipped]
                ax.plot(xs, [CLIP] * len(xs), "^", color=colour, markersize=11, markeredgecolor="black")
                for L, v in clipped:
                    ax.annotate(fmt_ppl(v), (L, CLIP), textcoords="offset points", xytext=(-9, -2),
                                ha="right", va="top", fontsize=8, color=colour)
        for p in pre_lens:
            ax.axvline(p, color="grey", linestyle="--", linewidth=1.2,
                       label="pre-trained window" + (f" ({fmt_len(p)})" if len(pre_lens) > 1 else ""))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted(lengths | set(pre_lens))
        ax.set_xticks(ticks, [fmt_len(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.margins(x=0.08)
        ax.set_xlabel("evaluation length (tokens)")
        ax.set_ylabel("perplexity (log scale)")
        strides = union([[ppl_section(r, proto).get("stride")] for r in results])
        strides = [str(x) for x in strides if x]
        ax.set_title(f"{proto} windows" + (f" (stride {', '.join(strides)})" if strides else ""))
        ax.grid(True, which="major", alpha=0.3)
        bottom, top = ax.get_ylim()
        if top / bottom < 20:  # under ~one decade: log ticks would leave one or two labels
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6))
            ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        if panel_clipped:
            ax.axhline(CLIP, color="black", linestyle=":", linewidth=0.8)
            ax.plot([], [], "^", color="white", markeredgecolor="black", markersize=9,
                    label=f"> {CLIP:.0e} (clipped)")
    fig.suptitle("Perplexity vs context length" +
                 (f" — values above {CLIP:.0e} clipped to the top (▲)" if any_clipped else ""))
    figure_legend(fig, axes)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def figure_legend(fig, axes):
    """One legend under the panels, with each label once."""
    entries = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center",
               ncol=min(len(entries), 5), fontsize=9)


def plot_passkey(results, out):
    n = len(results)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols + 1.4, 4.6 * nrows), squeeze=False,
                             layout="constrained")
    image = None
    for k, (ax, res) in enumerate(zip(axes.flat, results)):
        pk = res["passkey"]
        grid = [[float("nan") if v is None else v for v in row] for row in pk["accuracy"]]
        cells = [list(col) for col in zip(*grid)]  # rows = depths, columns = lengths
        image = ax.imshow(cells, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto", origin="upper")
        nd, nl = len(pk["depths"]), len(pk["lengths"])
        size = max(6, min(11, 90 / max(nd, nl)))
        for d in range(nd):
            for l in range(nl):
                v = cells[d][l]
                ax.text(l, d, "—" if math.isnan(v) else f"{100 * v:.0f}%",
                        ha="center", va="center", fontsize=size)
        ax.set_xticks(range(nl), [fmt_len(L) for L in pk["lengths"]])
        ax.set_yticks(range(nd), [f"{100 * d:.0f}%" for d in pk["depths"]])
        ax.set_xlabel("context length (tokens)")
        if k % ncols == 0:
            ax.set_ylabel("passkey depth")
        ax.set_title(f"{res['label']}" + (f" ({pk['samples']} samples/cell)" if pk.get("samples") else ""))
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle("Passkey retrieval accuracy")
    fig.colorbar(image, ax=axes.ravel().tolist(), label="accuracy", shrink=0.9)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def has(res, section):
    """True when a passkey/kv section is present and has at least one length."""
    return bool(res.get(section) and res[section]["lengths"])


def union(seqs):
    seen = []
    for s in seqs:
        seen.extend(x for x in s if x not in seen)
    return seen


def plot_kv(results, out):
    lengths = sorted(union(r["kv"]["lengths"] for r in results))
    bins = union(r["kv"]["bins"] for r in results)
    fig, axes = plt.subplots(1, len(lengths), figsize=(max(4.5 * len(lengths), 6), 4.8),
                             squeeze=False, sharey=True, layout="constrained")
    width = 0.8 / len(results)
    for ax, L in zip(axes[0], lengths):
        for i, res in enumerate(results):
            kv = res["kv"]
            if L not in kv["lengths"]:
                continue
            acc = kv["accuracy"][kv["lengths"].index(L)]
            xs, ys = [], []
            for b, name in enumerate(bins):
                x = b - 0.4 + width * (i + 0.5)
                if name in kv["bins"] and acc[kv["bins"].index(name)] is not None:
                    xs.append(x)
                    ys.append(acc[kv["bins"].index(name)])
                else:  # no samples landed in this bin (accuracy null)
                    ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=8, rotation=90)
            bars = ax.bar(xs, ys, width, color=res["_colour"], label=res["label"])
            if len(results) * len(bins) <= 12:
                ax.bar_label(bars, [f"{100 * y:.0f}%" for y in ys], fontsize=8)
        ax.set_xticks(range(len(bins)), bins)
        ax.set_xlim(-0.5, len(bins) - 0.5)
        ax.set_ylim(0, 1.08)
        ax.set_title(f"length {fmt_len(L)}")
        ax.set_xlabel("target position")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    fig.suptitle("Key-value retrieval accuracy by target position")
    figure_legend(fig, axes)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def summary(results, protos):
    md = ["# ropex eval summary\n",
          "— = not measured (no document long enough, or no samples in the bin); "
          "non-finite = the perplexity overflowed.\n",
          table(["model", "rope", "pre-trained", "max positions", "path"],
                [[r["label"], str(r.get("rope", "")), opt(r.get("pretrained_len")),
                  opt(r.get("max_position_embeddings")), f"`{r.get('model', '')}`"] for r in results])]
    for proto in protos:
        by_model = [(r, dict(ppl_rows(r, proto))) for r in results if ppl_section(r, proto).get("rows")]
        lengths = sorted(union([int(row["length"]) for row in ppl_section(r, proto)["rows"]]
                               for r, _ in by_model))
        agg = ", ".join(union([str((r.get("ppl") or {}).get("aggregation"))] for r, _ in by_model))
        md.append(f"## Perplexity ({proto}, aggregation: {agg})\n")
        md.append(table(["model"] + [str(L) for L in lengths],
                        [[r["label"]] + [fmt_ppl(d[L]) if L in d else "—" for L in lengths]
                         for r, d in by_model]))
    pk = [r for r in results if has(r, "passkey")]
    if pk:
        lengths = sorted(union(r["passkey"]["lengths"] for r in pk))
        rows = []
        for r in pk:
            means = {}
            for L, accs in zip(r["passkey"]["lengths"], r["passkey"]["accuracy"]):
                vals = [a for a in accs if a is not None]
                means[L] = sum(vals) / len(vals) if vals else None
            rows.append([r["label"]] + [fmt_acc(means.get(L)) for L in lengths])
        md.append("## Passkey retrieval (mean accuracy over depths)\n")
        md.append(table(["model"] + [str(L) for L in lengths], rows))
    kv = [r for r in results if has(r, "kv")]
    if kv:
        cols = [(L, b) for L in sorted(union(r["kv"]["lengths"] for r in kv))
                for b in union(r["kv"]["bins"] for r in kv)]
        rows = []
        for r in kv:
            k = r["kv"]
            cell = {(L, b): acc[k["bins"].index(b)] if b in k["bins"] else None
                    for L, acc in zip(k["lengths"], k["accuracy"]) for b in k["bins"]}
            rows.append([r["label"]] + [fmt_acc(cell.get(c)) for c in cols])
        md.append("## Key-value retrieval (accuracy by length and target position)\n")
        md.append(table(["model"] + [f"{L} {b}" for L, b in cols], rows))
    return "\n".join(md)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", required=True, help="directory for the PNGs and summary.md")
    ap.add_argument("results", nargs="+", help="results.json files (or directories holding one)")
    args = ap.parse_args(argv)
    try:
        results = [load(p) for p in args.results]
    except InputError as e:
        print(f"plot_eval.py: error: {e}", file=sys.stderr)
        return 2
    seen = {}
    for r in results:  # keep legend entries distinct when two inputs share a label
        seen[r["label"]] = seen.get(r["label"], 0) + 1
        if seen[r["label"]] > 1:
            r["label"] = f"{r['label']} ({seen[r['label']]})"
    for i, r in enumerate(results):  # one colour per model across all figures
        r["_colour"] = f"C{i % 10}"
    protos = [p for p in PPL_PROTOCOLS if any(ppl_rows(r, p) for r in results)]
    passkey = [r for r in results if has(r, "passkey")]
    kv = [r for r in results if has(r, "kv")]
    out = lambda name: os.path.join(args.output, name)  # noqa: E731
    written = []
    try:
        os.makedirs(args.output, exist_ok=True)
        if protos:
            plot_ppl(results, protos, out("ppl_vs_length.png"))
            written.append(out("ppl_vs_length.png"))
        if passkey:
            plot_passkey(passkey, out("passkey_heatmap.png"))
            written.append(out("passkey_heatmap.png"))
        if kv:
            plot_kv(kv, out("kv_by_position.png"))
            written.append(out("kv_by_position.png"))
        with open(out("summary.md"), "w", encoding="utf-8") as f:
            f.write(summary(results, protos))
        written.append(out("summary.md"))
    except OSError as e:
        print(f"plot_eval.py: error: {args.output}: cannot write ({e})", file=sys.stderr)
        return 2
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
