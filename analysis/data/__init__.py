"""Datasets as float32 (N, C, H, W) images in [0, 1] with int64 labels.

==============  ==================================================================================
``digits``      sklearn's bundled 8x8 digits, resized to 28x28 (the embedded default: no download);
                a fixed stratified 80/20 train/test split
``mnist``       the four standard IDX files in ``data_dir`` (``.gz`` or raw)
``fashion-mnist`` the same format; without ``data_dir`` Debian's ``/usr/share/datasets/fashion-mnist``
``cifar10``     the standard python (or binary) batches in ``data_dir``
``fashion-mnist-rgb32`` a STAND-IN for CIFAR-10's shape, not CIFAR-10: Fashion-MNIST zero-padded to 32x32 and
                repeated over 3 channels (3x32x32), so that CIFAR-sized models (AlexNet-CIFAR) can be trained
                and analysed with realistic activations where CIFAR-10 is not available
==============  ==================================================================================

Without ``data_dir``, ``$RESILQ_DATA_DIR/<name>`` (e.g. ``$RESILQ_DATA_DIR/mnist``) is used when the
environment variable ``RESILQ_DATA_DIR`` names a folder holding one sub-folder per dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .cifar import CLASSES as CIFAR10_CLASSES
from .cifar import load_cifar10
from .idx import find_file, read_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
SPLITS = ("train", "test")
#: Environment variable naming a folder with one sub-folder per dataset (``mnist``, ``fashion-mnist``, ``cifar10``).
DATA_DIR_VARIABLE = "RESILQ_DATA_DIR"


def default_data_dir(name: str) -> Path | None:
    """``$RESILQ_DATA_DIR/<name>`` when the variable is set and that folder exists, else None."""
    root = os.environ.get(DATA_DIR_VARIABLE)
    if not root:
        return None
    folder = Path(root).expanduser() / name
    return folder if folder.is_dir() else None


@dataclass
class Dataset:
    name: str
    split: str
    images: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    labels: np.ndarray  # int64 (N,)
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def take(self, n: int | None = None, offset: int = 0) -> Dataset:
        """The first ``n`` examples after ``offset`` (all of them when ``n`` is None)."""
        stop = None if n is None else offset + n
        return Dataset(self.name, self.split, self.images[offset:stop], self.labels[offset:stop], self.classes,
                       self.source)

    def describe(self) -> str:
        return f"{self.name}/{self.split}: {len(self)} images of shape {self.shape} from {self.source}"


def _digits(split: str) -> Dataset:
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    images = raw.images.astype(np.float32) / 16.0  # 8x8, values 0..16
    big = np.stack([zoom(img, 3.5, order=1) for img in images]).astype(np.float32)  # 28x28
    big = np.clip(big, 0.0, 1.0)[:, None]
    idx_train, idx_test = train_test_split(np.arange(len(images)), test_size=0.2, random_state=0,
                                           stratify=raw.target)
    idx = idx_train if split == "train" else idx_test
    return Dataset("digits", split, np.ascontiguousarray(big[idx]), raw.target[idx].astype(np.int64), DIGIT_CLASSES,
                   "sklearn.datasets.load_digits (8x8 resized to 28x28)")


def _idx_dataset(name: str, directory: Path, split: str, classes: tuple[str, ...]) -> Dataset:
    prefix = "train" if split == "train" else "t10k"
    folders = _idx_folders(name, directory)
    img_path = find_file(folders, f"{prefix}-images-idx3-ubyte")
    lbl_path = find_file(folders, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype}{images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetError(f"{lbl_path}: holds {labels.shape[0] if labels.ndim == 1 else labels.shape} labels for "
                           f"{images.shape[0]} images in {img_path.name}")
    if labels.max(initial=0) >= len(classes):
        raise DatasetError(f"{lbl_path}: label {int(labels.max())} out of range 0..{len(classes) - 1}")
    return Dataset(name, split, (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64), classes,
                   str(directory))


def _resolve_dir(name: str, data_dir: str | Path | None) -> Path:
    if data_dir is None:
        data_dir = default_data_dir(name)
    if data_dir is None:
        if name == "fashion-mnist" and DEBIAN_FASHION_MNIST.is_dir():
            return DEBIAN_FASHION_MNIST
        hint = " (or install Debian's dataset-fashion-mnist package)" if name == "fashion-mnist" else ""
        raise DatasetError(f"dataset {name!r} needs a data directory (--data-dir DIR, or ${DATA_DIR_VARIABLE}/{name}) "
                           f"holding its standard files{hint}")
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        raise DatasetError(f"{directory}: data directory for {name!r} does not exist")
    return directory


def _idx_folders(name: str, directory: Path) -> list[Path]:
    """Where IDX files may sit: the directory itself or torchvision's ``<Name>/raw`` layout."""
    subs = [name, "MNIST" if name == "mnist" else "FashionMNIST"]
    return [directory, directory / "raw"] + [directory / s / r for s in subs for r in ("", "raw")]


DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "fashion-mnist-rgb32")


def rgb32(data: Dataset) -> Dataset:
    """28x28 grey images zero-padded to 32x32 and repeated over three channels (the ``-rgb32`` stand-in)."""
    n, c, h, w = data.images.shape
    if c != 1 or h > 32 or w > 32:
        raise DatasetError(f"{data.name}: rgb32 needs grey images of at most 32x32, got {c}x{h}x{w}")
    top, left = (32 - h) // 2, (32 - w) // 2
    out = np.zeros((n, 3, 32, 32), dtype=np.float32)
    out[:, :, top:top + h, left:left + w] = data.images
    return Dataset(f"{data.name}-rgb32", data.split, out, data.labels, data.classes,
                   f"{data.source} (padded to 32x32, 3 channels: a stand-in for CIFAR-sized inputs)")


def load_dataset(name: str, split: str = "test", data_dir: str | Path | None = None) -> Dataset:
    """Load ``split`` ("train" or "test") of dataset ``name``; see the module docstring for the sources."""
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    key = name.lower()
    if key == "digits":
        return _digits(split)
    if key == "fashion-mnist-rgb32":
        return rgb32(load_dataset("fashion-mnist", split, data_dir))
    if key in ("mnist", "fashion-mnist"):
        classes = DIGIT_CLASSES if key == "mnist" else FASHION_CLASSES
        return _idx_dataset(key, _resolve_dir(key, data_dir), split, classes)
    if key == "cifar10":
        images, labels, source = load_cifar10(_resolve_dir(key, data_dir), split)
        return Dataset("cifar10", split, images.astype(np.float32) / 255.0, labels, CIFAR10_CLASSES, source)
    raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


__all__ = ["DATASETS", "Dataset", "load_dataset", "rgb32"]
