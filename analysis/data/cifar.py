"""Reader for CIFAR-10 in its two standard distributions: the Python batches and the binary batches.

The Python batches are pickles; they are read with an unpickler that only admits the few numpy and
builtin types a CIFAR batch contains, so a tampered file cannot execute code; numpy dtypes that hold
Python objects are refused while unpickling, so a batch cannot smuggle an object array in either. Every
batch file is size-checked (:data:`MAX_BATCH_BYTES`) before it is read.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import DatasetError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = ["test_batch"]
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}
#: One batch file (a genuine one is 31 MB: 10,000 images of 3,073 bytes).
MAX_BATCH_BYTES = 256 << 20


def _plain_dtype(*args, **kwargs) -> np.dtype:
    """``numpy.dtype`` as the unpickler may call it: only dtypes without Python objects."""
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing an array of dtype {dtype}: a CIFAR batch holds only numbers")
    return dtype


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR batch")


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_BATCH_BYTES:
        raise DatasetError(f"{path}: {size:,} bytes, more than the {MAX_BATCH_BYTES:,} a CIFAR-10 batch may have")


def _read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    _check_size(path)
    try:
        with open(path, "rb") as fh:
            batch = _BatchUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, RecursionError, MemoryError) as exc:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{path}: a CIFAR-10 python batch is a dict with b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DatasetError(f"{path}: b'data' of a CIFAR-10 python batch is a uint8 array, found "
                           f"{getattr(data, 'dtype', type(data).__name__)}")
    if not (isinstance(labels, list) and all(type(v) is int for v in labels)) and not (
            isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"):
        raise DatasetError(f"{path}: b'labels' of a CIFAR-10 python batch is a list of integers")
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    _check_size(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise DatasetError(f"{path}: a CIFAR-10 binary batch holds records of 3073 bytes; this file has {raw.size} bytes")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def load_cifar10(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 images (N, 3, 32, 32), labels, and the folder they came from."""
    names = _TRAIN if split == "train" else _TEST
    candidates = [directory, directory / "cifar-10-batches-py", directory / "cifar-10-batches-bin"]
    for folder in candidates:
        if all((folder / n).is_file() for n in names):
            parts = [_read_python_batch(folder / n) for n in names]
            break
        if all((folder / f"{n}.bin").is_file() for n in names):
            parts = [_read_binary_batch(folder / f"{n}.bin") for n in names]
            break
    else:
        raise DatasetError(f"{directory}: missing CIFAR-10 {split} batches ({', '.join(names)}); expected the "
                           "python batches (cifar-10-batches-py/) or the binary batches (cifar-10-batches-bin/) here")
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"{folder}: CIFAR-10 labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return images, labels, str(folder)
