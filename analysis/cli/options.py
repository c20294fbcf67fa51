"""Argument groups shared by several sub-commands (one definition each)."""

from __future__ import annotations

import argparse

from ..data import DATASETS
from ..validation import batch_size, non_negative_int, positive_int, timeout_seconds  # noqa: F401 (shared types)


def add_dataset_args(p: argparse.ArgumentParser, default: str | None = "digits") -> None:
    what = default if default is not None else "the dataset recorded in the model"
    p.add_argument("--dataset", default=default, choices=DATASETS,
                   help=f"dataset (default: {what}; digits is bundled, the others read standard files)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="directory holding the dataset's standard files (IDX for MNIST/Fashion-MNIST, "
                        "python batches for CIFAR-10; default: $RESILQ_DATA_DIR/<dataset> when that is set)")
