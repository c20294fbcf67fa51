"""A deployment package: the folder ``resilq package`` writes and the board runs (reading side).

Layout::

    PKG/__main__.py        python3 PKG <command> ...: dependency check, then resilq.deploy.cli
    PKG/manifest.json      what is inside, for which board image and accelerator build (FORMAT below)
    PKG/model.rq           the network (resilq.ir format)
    PKG/overlay/           resilq.bit + resilq.hwh when the overlay was built; NOT_BUILT.txt otherwise
    PKG/data.npz           optional: an evaluation set (int8 inputs, labels), so the board needs no dataset
    PKG/lib/resilq/...     the numpy-only resilq modules the board needs (resilq.deploy.shipping)
    PKG/README.txt         how to run it

:func:`load_package` reads and cross-checks it: the model's hash against the manifest, the accelerator
configuration against its CONFIG_ID, the overlay files against their recorded SHA-256 and the overlay's
``.hwh`` against the register map. numpy only (the builder is :mod:`resilq.deploy.build`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resilq.archive import read_npz
from resilq.errors import FormatError, MismatchError, ParameterError
from resilq.hls.config import AccelConfig
from resilq.ir import Model, load_model

from .hwh import OverlayIP, accelerator_in_hwh
from .manifest import FORMAT, MANIFEST, package_file, read_manifest  # noqa: F401 (FORMAT, MANIFEST re-exported)
from .timer import DeviceClocks

MODEL_FILE = "model.rq"
OVERLAY_DIR = "overlay"
OVERLAY_NAME = "resilq"  # overlay/resilq.bit + overlay/resilq.hwh (pynq finds the .hwh beside the .bit)
NOT_BUILT = "NOT_BUILT.txt"
DATA_FILE = "data.npz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Package:
    """A loaded deployment package."""

    path: Path
    manifest: dict[str, Any]
    model: Model
    config: AccelConfig

    @property
    def batch(self) -> int:
        return int(self.manifest["batch"])

    @property
    def requirements(self) -> dict[str, str]:
        return dict(self.manifest["requirements"])

    @property
    def pl_mhz(self) -> float:
        return float(self.manifest["board"]["pl_mhz"])

    @property
    def clocks(self) -> DeviceClocks:
        """The board's CPU clock (the global timer counts at half of it) and PL clock (the accelerator's)."""
        return DeviceClocks(float(self.manifest["board"]["ps_mhz"]), self.pl_mhz)

    @property
    def bitfile(self) -> Path | None:
        overlay = self.manifest.get("overlay")
        return None if overlay is None else package_file(self.path, overlay["bit"], "overlay.bit")

    def overlay_ip(self) -> OverlayIP:
        """The overlay's accelerator, checked against the register map; a clear error if there is none."""
        if self.bitfile is None:
            note = self.path / OVERLAY_DIR / NOT_BUILT
            raise ParameterError(f"{self.path} has no overlay (see {note}): only --target emulator (or csim on a "
                                 "host with g++) can run it; build the overlay with make -C overlays and package again")
        return accelerator_in_hwh(self.bitfile.with_suffix(".hwh"))


def load_package(path: str | Path) -> Package:
    """Read a package folder, verifying everything it records about itself."""
    path = Path(path)
    manifest_path = path / MANIFEST
    manifest = read_manifest(manifest_path)
    model_path = package_file(path, manifest["model"]["file"], f"{manifest_path}: model.file")
    if not model_path.is_file():
        raise FormatError(f"{manifest_path}: the model file {manifest['model']['file']!r} is missing")
    model = load_model(model_path)
    if model.hash != manifest["model"]["hash"]:
        raise MismatchError(f"{path}: {manifest['model']['file']} is not the model the package was built with "
                            f"(hash {model.hash[:12]}, manifest {manifest['model']['hash'][:12]})")
    config = AccelConfig.from_dict(manifest["accelerator"], str(manifest_path))
    if config.config_id != manifest["config_id"]:
        raise MismatchError(f"{manifest_path}: accelerator configuration does not match its CONFIG_ID "
                            f"({config.config_id:#010x} != {manifest['config_id']:#010x})")
    overlay = manifest.get("overlay")
    if overlay is not None:
        for key in ("bit", "hwh"):
            file = package_file(path, overlay[key], f"{manifest_path}: overlay.{key}")
            if not file.is_file() or sha256(file) != overlay["sha256"][key]:
                raise MismatchError(f"{file} is missing or not the file the package was built with")
    return Package(path, manifest, model, config)


@dataclass(frozen=True)
class BundledData:
    """The evaluation set a package carries: quantized inputs and labels, and where they came from."""

    x: np.ndarray  # int8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)
    dataset: str
    split: str
    offset: int


def write_bundled_data(directory: Path, data: BundledData) -> dict[str, Any]:
    """Write ``data.npz`` into a package folder; returns its manifest entry."""
    path = directory / DATA_FILE
    with open(path, "wb") as f:
        np.savez(f, x=data.x, labels=data.labels)
    return {"file": DATA_FILE, "dataset": data.dataset, "split": data.split, "offset": int(data.offset),
            "images": int(data.labels.shape[0]), "sha256": sha256(path)}


def load_bundled_data(pkg: Package) -> BundledData | None:
    entry = pkg.manifest.get("data")
    if entry is None:
        return None
    path = package_file(pkg.path, entry["file"], f"{pkg.path / MANIFEST}: data.file")
    if not path.is_file() or sha256(path) != entry["sha256"]:
        raise MismatchError(f"{path} is missing or not the evaluation set the package was built with")
    arrays = read_npz(path, ("x", "labels"))  # declared sizes checked before decompressing; no pickles
    x, labels = arrays["x"], arrays["labels"]
    if x.dtype != np.int8 or x.shape[1:] != tuple(pkg.model.input.shape) or labels.shape != (x.shape[0],):
        raise FormatError(f"{path}: expected int8 inputs of shape (N, {pkg.model.input.shape}) and N labels")
    if labels.dtype.kind not in "iu":
        raise FormatError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= pkg.model.n_classes):
        bad = int(np.count_nonzero((labels < 0) | (labels >= pkg.model.n_classes)))
        raise FormatError(f"{path}: {bad} labels lie outside the model's classes 0..{pkg.model.n_classes - 1} "
                          f"(range {int(labels.min())}..{int(labels.max())})")
    if x.shape[0] != entry["images"]:
        raise FormatError(f"{path}: holds {x.shape[0]} images, the manifest says {entry['images']}")
    return BundledData(x, labels.astype(np.int64), entry["dataset"], entry["split"], int(entry["offset"]))
