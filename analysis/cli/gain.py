"""``resilq gain`` (exact protection gain of every neuron under every scheme) and ``resilq gain-table``."""

from __future__ import annotations

import argparse
import time

from ..arith import Scheme
from ..ir import load_model
from ..ui import say, table
from .options import add_analysis_input_args, analysis_inputs, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gain", help="exact protection gain of every neuron under split, tmr, dup-and, dup-min "
                                    "(misclassifying bit-flip events removed, per bit and direction)")
    p.add_argument("model", help="a .rq file (unprotected)")
    add_analysis_input_args(p)
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--out", required=True, help="output .gain file")
    p.set_defaults(func=run)

    t = sub.add_parser("gain-table", help="tables of a .gain file: per layer and scheme, per bit and direction")
    t.add_argument("gain", help="a .gain file from `resilq gain`")
    t.add_argument("--model", default=None, help="check that the .gain file belongs to this .rq model "
                                                 "(and name its layers)")
    t.add_argument("--top", type=positive_int, default=10, metavar="K", help="list the K best neurons (default 10)")
    t.set_defaults(func=run_table)


def run(args: argparse.Namespace) -> int:
    from ..gain import exact_gain, save_gain

    model = load_model(args.model)
    dataset, chosen = analysis_inputs(args, model)
    x = model.quantize_input(chosen.images)
    say(f"exact protection gain of {model.name} ({model.n_neurons:,} neurons x {len(Scheme)} schemes) over "
        f"{len(chosen):,} {dataset}/{args.split} inputs, {args.jobs} job(s)")
    start = time.perf_counter()
    result = exact_gain(model, x, jobs=args.jobs,
                        metadata={"dataset": dataset, "split": args.split, "offset": args.offset})
    result.metadata["seconds"] = round(time.perf_counter() - start, 3)
    path = save_gain(result, args.out)
    print_tables(result, {i: model.layers[i].name for i in model.neuron_layers})
    say(f"wrote {path} ({result.metadata['seconds']:.1f} s)")
    return 0


def print_tables(result, names: dict[int, str], top: int = 10) -> None:
    from ..gain.table import bit_rows, layer_rows, top_rows

    caption = (f"counts of (input, slot, bit) single-bit-flip events over {result.inputs:,} inputs; net gain = "
               "events removed against the unprotected network's fault-free top-1 (cost: split's own fault-free "
               "changes); — = split unsound (no ReLU)")
    table(f"protection gain: {result.metadata.get('model', 'model')}", *layer_rows(result, names), caption=caption)
    for s in (Scheme.SPLIT, Scheme.DUP_AND):
        table(f"critical events per bit and direction: unprotected vs {s.label}", *bit_rows(result, s))
    table(f"best {top} neurons (net gain per extra slot)", *top_rows(result, names, top))


def run_table(args: argparse.Namespace) -> int:
    from ..gain import load_gain

    model = load_model(args.model) if args.model else None
    result = load_gain(args.gain, model)
    names = {i: model.layers[i].name for i in model.neuron_layers} if model else {}
    print_tables(result, names, args.top)
    return 0
