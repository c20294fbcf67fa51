"""``resilq table``: the paper's Table I (critical neurons per NVF threshold) for an .nvf file, CSV and plots."""

from __future__ import annotations

import argparse

from ..ir import load_model
from ..nvf import load_nvf
from ..nvf.paper import PAPER_TABLE_I
from ..nvf.result import TABLE_THRESHOLDS, NVFResult
from ..nvf.table import is_sampled, paper_column, parse_thresholds, per_bit_rows, per_layer_rows, table_i, write_csv
from ..ui import say, table
from .nvf_metadata import check_nvf_metadata


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="Table I of an .nvf file: critical neurons per NVF threshold (+ CSV, plots)")
    p.add_argument("nvf", help="an .nvf file from `resilq analyze`")
    p.add_argument("--model", default=None, help="check that the .nvf belongs to this .rq model")
    p.add_argument("--thresholds", default=None, metavar="T,T,...",
                   help="NVF thresholds as fractions (default: 0,0.05,...,0.5 as in the paper)")
    p.add_argument("--paper", default=None, choices=sorted(PAPER_TABLE_I),
                   help="print the paper's Table I row for this network side by side")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots (distribution, heat-maps, Table I)")
    p.set_defaults(func=run)


def _percent(value: float, digits: int) -> str:
    """An NVF (a fraction) in the one unit every table uses: percent."""
    return "n/a" if value != value else f"{100 * value:.{digits}f} %"


def print_table(result: NVFResult, thresholds=TABLE_THRESHOLDS, paper: str | None = None) -> None:
    ref = paper_column(paper)
    sampled = is_sampled(result)
    cols = ["NVF >=", "critical neurons" + (" (est.)" if sampled else ""), "portion"]
    if ref is not None:
        cols += [f"paper {paper}", "paper portion"]
    rows = []
    for t, count, portion in table_i(result, thresholds):
        row = [f"{100 * t:g} %", round(count, 1) if sampled else int(count), _percent(portion, 2)]
        if ref is not None:
            p = ref[TABLE_THRESHOLDS.index(t)] if t in TABLE_THRESHOLDS else ""
            row += [p, _percent(p / ref[0], 2) if p != "" else ""]
        rows.append(row)
    name = result.metadata.get("model", "model")
    caption = f"{result.n_neurons:,} neurons, {result.method} NVF over {result.inputs:,} inputs"
    if result.metadata.get("dataset"):
        caption += f" ({result.metadata['dataset']}/{result.metadata.get('split', '?')})"
    table(f"Table I: {name}", cols, rows, caption=caption)
    layers = [[name, f"{n:,}", f"{seen:,}", _percent(mean, 3), _percent(peak, 2), *counts]
              for name, n, seen, mean, peak, *counts in per_layer_rows(result)]
    table("per layer", ["layer", "neurons", "analysed", "mean NVF", "max NVF", "NVF >= 10 %", "NVF >= 20 %"], layers)
    bits = per_bit_rows(result)
    if bits:
        table("critical flips per bit (% of input x neuron flips)", ["layer", *[f"bit {k}" for k in range(8)]], bits)


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model) if args.model else None
    result = check_nvf_metadata(load_nvf(args.nvf, model), args.nvf)
    thresholds = parse_thresholds(args.thresholds)
    print_table(result, thresholds, args.paper)
    if args.csv:
        say(f"wrote {write_csv(args.csv, result, thresholds, args.paper)}")
    if args.plots:
        from ..nvf.plots import save_plots

        for path in save_plots(result, args.plots, paper_column(args.paper)):
            say(f"wrote {path}")
    return 0
