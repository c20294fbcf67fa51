"""``resilq clip``: add Ranger-style range restriction (per-layer bounds profiled on the training set)."""

from __future__ import annotations

import argparse

from ..arith import CLIP_VARIANTS
from ..data import load_dataset
from ..errors import ParameterError
from ..ir import load_model, save_model
from ..ui import say
from .harden import layer_names
from .options import add_dataset_args, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clip", help="range restriction: clip every neuron layer's outputs at the largest value it "
                                    "produced on the training set (Ranger); combinable with split/TMR")
    p.add_argument("model", help="a .rq file (unprotected or protected)")
    add_dataset_args(p, default=None)
    p.add_argument("--inputs", type=positive_int, default=5000, metavar="N",
                   help="training inputs the bounds are profiled on (default 5000)")
    p.add_argument("--variant", choices=CLIP_VARIANTS, default="bound",
                   help="bound: values above the bound become the bound (Ranger); zero: they become 0")
    p.add_argument("--layers", type=layer_names, default=None, metavar="A,B",
                   help="clip only these layers (default: every neuron layer)")
    p.add_argument("--out", required=True, help="output .rq file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..harden.clip import profile_bounds, with_clip

    model = load_model(args.model)
    dataset = args.dataset or model.metadata.get("dataset", "digits")
    chosen = load_dataset(dataset, "train", args.data_dir).take(args.inputs, 0)
    if len(chosen) == 0:
        raise ParameterError(f"the input set is empty: no {dataset}/train inputs")
    bounds = profile_bounds(model, model.quantize_input(chosen.images), args.layers)
    clipped = with_clip(model, bounds, args.variant)
    path = save_model(clipped, args.out)
    for i, b in bounds.items():
        say(f"  {model.layers[i].name}: clip above {b} ({args.variant})")
    say(f"wrote {path} (bounds profiled on {len(chosen):,} {dataset}/train inputs)")
    return 0
