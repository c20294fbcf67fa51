"""``resilq nvf-compare``: how far one NVF result is from a reference (e.g. δ-range or sampled vs exact)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ..ir import load_model
from ..nvf import load_nvf
from ..nvf.compare import Comparison, compare
from ..ui import say, table
from .nvf_metadata import check_nvf_metadata


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nvf-compare", help="compare two .nvf files of the same model (reference first)")
    p.add_argument("reference", help="the reference .nvf (normally the exact NVF)")
    p.add_argument("other", help="the .nvf to assess (δ-range, sampled, fewer inputs, ...)")
    p.add_argument("--model", default=None, help="check that both files belong to this .rq model")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the summary metrics as CSV")
    p.set_defaults(func=run)


def _label(r) -> str:
    sample = f", sample {r.metadata['sample']:.0%}" if r.metadata.get("sample") else ""
    return f"{r.method} ({r.inputs:,} inputs{sample})"


def print_comparison(c: Comparison) -> None:
    ref, other = _label(c.reference), _label(c.other)
    table(f"{other} vs {ref}", ["metric", "value"], [
        ["neurons compared", c.neurons],
        ["mean absolute error", f"{c.mae:.5f}"],
        ["max absolute error", f"{c.max_error:.5f}"],
        ["mean signed error (other - reference)", f"{c.bias:+.5f}"],
        ["Spearman rank correlation", f"{c.spearman:.4f}"],
    ])
    table("critical sets", ["set", "reference", "other", "both", "Jaccard", "recall", "precision"],
          [[o.label, o.reference, o.other, o.both, f"{o.jaccard:.3f}", f"{o.recall:.3f}", f"{o.precision:.3f}"]
           for o in c.overlaps], caption="recall: share of the reference's set the other finds; precision: share of "
                                         "the other's set that the reference confirms")
    table("per layer", ["layer", "compared", "mean NVF (ref)", "mean NVF (other)", "MAE", "Spearman"],
          [[n, k, f"{a:.4f}", f"{b:.4f}", f"{e:.4f}", f"{s:.3f}"] for n, k, a, b, e, s in c.per_layer],
          caption="means over every neuron each side analysed; MAE and Spearman over the neurons compared")
    table("Table I", ["NVF >=", "reference", "other"],
          [[f"{t:.0%}", round(r, 1), round(o, 1)] for t, r, o in c.table])


def write_csv(path: str, c: Comparison) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["metric", "value"])
        for k, v in (("neurons", c.neurons), ("mae", c.mae), ("max_error", c.max_error), ("bias", c.bias),
                     ("spearman", c.spearman)):
            w.writerow([k, v])
        for o in c.overlaps:
            key = o.label.replace(" ", "_").replace(">=", "ge").replace("%", "pct")
            w.writerow([f"{key}_jaccard", o.jaccard])
            w.writerow([f"{key}_recall", o.recall])
            w.writerow([f"{key}_precision", o.precision])
    return path


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model) if args.model else None
    c = compare(*(check_nvf_metadata(load_nvf(f, model), f) for f in (args.reference, args.other)))
    print_comparison(c)
    if args.csv:
        say(f"wrote {write_csv(args.csv, c)}")
    return 0
