"""``resilq info`` and ``resilq eval``: look at an integer model and measure its accuracy."""

from __future__ import annotations

import argparse
import sys

from ..data import load_dataset
from ..errors import DatasetError, MismatchError
from ..evaluate import accuracy
from ..ir import load_model
from ..ir.summary import summary_table
from ..ui import say, table
from .options import add_dataset_args, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="layers, shapes, neuron counts, MACs and protection of a .rq model")
    p.add_argument("model", help="a .rq file")
    p.set_defaults(func=run_info)

    p = sub.add_parser("eval", help="accuracy of the integer model (bit-true executor)")
    p.add_argument("model", help="a .rq file")
    add_dataset_args(p, default=None)
    p.add_argument("--split", default="test", choices=("train", "test"), help="dataset split (default: test)")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N images")
    p.add_argument("--batch-size", type=positive_int, default=1024,
                   help="images per executor call (memory, not results; default: 1024)")
    p.add_argument("--any-dataset", action="store_true",
                   help="evaluate on a --dataset other than the one the model records (refused otherwise)")
    p.set_defaults(func=run_eval)


def run_info(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    cols, rows = summary_table(model)
    meta = model.metadata
    caption = f"hash {model.hash[:16]}"
    if "test_accuracy" in meta:
        caption += f" · test accuracy {meta['test_accuracy']:.2%} on {meta.get('dataset', '?')}"
    table(f"{model.name}: {model.n_neurons:,} neurons, {model.n_slots:,} slots, {model.macs():,} MACs", cols, rows,
          caption=caption)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    own = model.metadata.get("dataset")
    dataset = args.dataset or own or "digits"
    if own and dataset != own:
        if not args.any_dataset:
            raise MismatchError(f"{args.model} was trained on {own}, not {dataset}: its accuracy on {dataset} means "
                                "nothing (pass --any-dataset to evaluate it there anyway)")
        print(f"resilq eval: WARNING: {model.name} was trained on {own}; evaluating it on {dataset} as asked (--any-dataset)", file=sys.stderr)
    data = load_dataset(dataset, args.split, args.data_dir).take(args.limit)
    if len(data) == 0:
        raise DatasetError(f"{data.describe()} holds no images: nothing to evaluate")
    acc = accuracy(model, data, batch_size=args.batch_size, show_progress=True)
    say(f"{model.name} (integer, bit-true): top-1 accuracy {acc:.2%} on {data.describe()}")
    return 0
