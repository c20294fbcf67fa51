"""Accuracy of an integer model on a dataset (numpy only)."""

from __future__ import annotations

import numpy as np

from .data import Dataset
from .errors import DatasetError
from .ir.executor import Executor
from .ir.model import Model
from .ui import progress


def predictions(model: Model, images: np.ndarray, batch_size: int = 1024, show_progress: bool = False) -> np.ndarray:
    """Top-1 predictions of the integer model for float ``images``."""
    executor = Executor(model)
    out = []
    with progress(len(images) if show_progress else 0, f"inference {model.name}", "images") as advance:
        for s in range(0, len(images), batch_size):
            x = model.quantize_input(images[s:s + batch_size])
            out.append(executor.run(x).predictions)
            advance(len(x))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(model: Model, data: Dataset, batch_size: int = 1024, show_progress: bool = False) -> float:
    if len(data) == 0:
        raise DatasetError(f"{data.name}/{data.split} holds no images: an accuracy over nothing is not a number")
    pred = predictions(model, data.images, batch_size, show_progress)
    return float((pred == data.labels).mean())
