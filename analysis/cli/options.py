"""Argument groups shared by several sub-commands (one definition each)."""

from __future__ import annotations

import argparse

from ..data import DATASETS, Dataset, load_dataset
from ..errors import ParameterError
from ..validation import batch_size, non_negative_int, positive_int, timeout_seconds  # noqa: F401 (shared types)


def add_dataset_args(p: argparse.ArgumentParser, default: str | None = "digits") -> None:
    what = default if default is not None else "the dataset recorded in the model"
    p.add_argument("--dataset", default=default, choices=DATASETS,
                   help=f"dataset (default: {what}; digits is bundled, the others read standard files)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="directory holding the dataset's standard files (IDX for MNIST/Fashion-MNIST, "
                        "python batches for CIFAR-10; default: $RESILQ_DATA_DIR/<dataset> when that is set)")


def add_analysis_input_args(p: argparse.ArgumentParser) -> None:
    """The input set of a per-neuron analysis (``resilq analyze``, ``resilq gain``): dataset, split, count, offset."""
    add_dataset_args(p, default=None)
    p.add_argument("--split", default="train", choices=("train", "test"),
                   help="input set (default: train, as the paper analyses over the training set)")
    p.add_argument("--inputs", type=positive_int, default=1000, metavar="N", help="number of inputs (default 1000)")
    p.add_argument("--offset", type=non_negative_int, default=0, metavar="K", help="skip the first K inputs of the split")


def analysis_inputs(args: argparse.Namespace, model) -> tuple[str, Dataset]:
    """``(dataset name, inputs)`` of :func:`add_analysis_input_args` for ``model`` (the dataset it records by
    default); an empty selection is refused, naming the set and the offset."""
    dataset = args.dataset or model.metadata.get("dataset", "digits")
    if args.offset < 0:
        raise ParameterError(f"--offset must be non-negative, got {args.offset}")
    data = load_dataset(dataset, args.split, args.data_dir)
    chosen = data.take(args.inputs, args.offset)
    if len(chosen) == 0:
        raise ParameterError(f"the input set is empty: {data.describe()} has no inputs after offset {args.offset}")
    return dataset, chosen
