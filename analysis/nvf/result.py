"""Neuron Vulnerability Factors of a model, on disk as ``.nvf`` files (SPEC §3).

An :class:`NVFResult` holds one float64 array per neuron layer (flat C-H-W order, like fault slots) and
the hash of the network it belongs to, so it can never be applied to another model. ``NaN`` marks a
neuron that a sampled analysis did not visit. Thresholds select the critical neurons (NVF >= tau) and
give the paper's Table I.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..archive import read_archive, write_archive
from ..errors import FormatError, MismatchError, ParameterError
from ..ir.model import Model

KIND = "nvf"
VERSION = 1
#: The paper's Table I thresholds: 0 %, 5 %, ..., 50 %.
TABLE_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(11))
#: NVF values are ratios of integers; compare against a threshold with this slack so that an NVF of
#: exactly 0.2 is counted as >= 0.2 whatever the float rounding of either side.
_EPS = 1e-12


def check_threshold(threshold: float) -> float:
    if not isinstance(threshold, (int, float, np.floating)) or not 0.0 <= float(threshold) <= 1.0:
        raise ParameterError(f"NVF threshold must lie in [0, 1] (a fraction, e.g. 0.2 for 20 %), got {threshold!r}")
    return float(threshold)


@dataclass(frozen=True, eq=False)
class NVFResult:
    network_hash: str
    values: dict[int, np.ndarray]  # layer index -> float64 [n_out]
    method: str
    inputs: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def check_model(self, model: Model) -> None:
        """Raise :class:`MismatchError` unless this NVF was computed for ``model``'s network."""
        if model.network_hash != self.network_hash:
            raise MismatchError(f"this NVF file belongs to another network (NVF for {self.network_hash[:12]}…, "
                                f"model {model.name} is {model.network_hash[:12]}…); re-run `resilq analyze` on it")
        for i, arr in self.values.items():
            if i not in model.neuron_layers or arr.shape != (model.out_size(i),):
                raise MismatchError(f"NVF layer {i} does not match the model's neuron layers")

    @property
    def digest(self) -> str:
        """SHA-256 of the content (network hash, method, inputs and every value), independent of the file it
        was read from: the same analysis saved twice has the same digest."""
        h = hashlib.sha256(json.dumps({"network_hash": self.network_hash, "method": self.method,
                                       "inputs": int(self.inputs), "layers": self.layers}, sort_keys=True).encode())
        for i in self.layers:
            arr = np.ascontiguousarray(self.values[i], dtype=np.float64)
            h.update(f"L{i}:{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    @property
    def layers(self) -> list[int]:
        return sorted(self.values)

    @property
    def n_neurons(self) -> int:
        return sum(a.size for a in self.values.values())

    def all_values(self) -> np.ndarray:
        """Every neuron's NVF, layers in order (NaN: not analysed)."""
        return np.concatenate([self.values[i] for i in self.layers]) if self.values else np.zeros(0)

    def critical(self, threshold: float) -> dict[int, np.ndarray]:
        """Sorted flat indices of the neurons with NVF >= ``threshold``, per layer."""
        t = check_threshold(threshold)
        return {i: np.flatnonzero(self.values[i] >= t - _EPS).astype(np.int32) for i in self.layers}

    def n_critical(self, threshold: float) -> int:
        return sum(v.size for v in self.critical(threshold).values())

    def table(self, thresholds=TABLE_THRESHOLDS) -> list[tuple[float, int, float]]:
        """Table I: ``(threshold, critical neurons, portion of all neurons)`` per threshold."""
        n = self.n_neurons
        return [(float(t), self.n_critical(t), self.n_critical(t) / n if n else 0.0) for t in thresholds]


def save_nvf(result: NVFResult, path: str | os.PathLike) -> Path:
    arrays = {f"L{i}": np.asarray(v, dtype=np.float64) for i, v in result.values.items()}
    header = {"network_hash": result.network_hash, "method": result.method, "inputs": int(result.inputs),
              "layers": result.layers, "metadata": result.metadata}
    return write_archive(path, KIND, VERSION, header, arrays)


def _check_range(path, layer: int, v: np.ndarray, metadata: dict) -> None:
    """NVFs are fractions in [0, 1]; NaN (not analysed) only where the analysis may have been sampled."""
    nan = np.isnan(v)
    bad = np.flatnonzero(~nan & ~((v >= 0) & (v <= 1)))  # inf and -inf fail both comparisons' conjunction
    if bad.size:
        raise FormatError(f"{path}: NVF of layer {layer} has {bad.size} value(s) outside [0, 1] (neuron {bad[0]}: "
                          f"{float(v[bad[0]])!r}); the file is damaged or was not written by resilq")
    if nan.any() and "sample" in metadata and not metadata["sample"]:
        raise FormatError(f"{path}: NVF of layer {layer} has {int(nan.sum())} NaN value(s) (neuron "
                          f"{int(np.flatnonzero(nan)[0])}), but the analysis was not sampled: every neuron has an NVF")


def load_nvf(path: str | os.PathLike, model: Model | None = None) -> NVFResult:
    """Read an ``.nvf`` file; with ``model``, also check that it belongs to that model."""
    header, arrays, _ = read_archive(path, KIND, (VERSION,))
    try:
        values = {int(i): arrays[f"L{int(i)}"] for i in header["layers"]}
        result = NVFResult(str(header["network_hash"]), values, str(header["method"]), int(header["inputs"]),
                           dict(header.get("metadata", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: malformed NVF header ({type(exc).__name__}: {exc})") from None
    for i, v in values.items():
        if v.dtype != np.float64 or v.ndim != 1:
            raise FormatError(f"{path}: NVF of layer {i} must be a 1-D float64 array")
        _check_range(path, i, v, result.metadata)
    if model is not None:
        result.check_model(model)
    return result
