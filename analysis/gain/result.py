"""Exact protection gains of a model, on disk as ``.gain`` files (SPEC §8).

A :class:`GainResult` holds, per neuron layer, the counters of :mod:`resilq.gain.layout` for every neuron
(int64, shape ``(ROWS, n_out)``) and the hash of the network, so it can never be applied to another model.
From them, per neuron and scheme ``s`` (all counts of (input, slot, bit) single-bit-flip events):

* ``gain(s)`` = unprotected events that change the top-1 - protected events (shadows included, the
  corrector applied) that change the protected network's fault-free top-1: SPEC §8's gain, what a
  campaign's critical-fault count loses by protecting the neuron;
* ``cost(s)`` = protected events counted against the *unprotected* fault-free top-1 minus the same events
  counted against the protected one: the price of the inputs whose fault-free top-1 the protection itself
  changes (split's ``2·half`` vs ``v``; 0 for TMR and duplication, which compute the full value);
* ``net(s)`` = ``gain(s) - cost(s)`` = unprotected events - protected events, both against the unprotected
  network's fault-free top-1: what selection maximises (so a fault-free change is charged every event of
  the neuron's slots it turns into a misclassification w.r.t. the network the user trained).
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
from ..arith import Scheme
from ..errors import FormatError, MismatchError
from ..ir.model import Model
from .layout import BLOCKS, ROWS

KIND = "gain"
VERSION = 1


def layout_header() -> dict:
    return {name: [b.offset, list(b.shape)] for name, b in BLOCKS.items()}


@dataclass(frozen=True, eq=False)
class GainResult:
    network_hash: str
    counts: dict[int, np.ndarray]  # layer index -> int64 [ROWS, n_out]
    inputs: int
    #: layer index -> whether split is sound there (the layer has a ReLU)
    relu: dict[int, bool]
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ checks
    def check_model(self, model: Model) -> None:
        """Raise :class:`MismatchError` unless this gain file was computed for ``model``'s network."""
        if model.network_hash != self.network_hash:
            raise MismatchError(f"this gain file belongs to another network (gain for {self.network_hash[:12]}…, "
                                f"model {model.name} is {model.network_hash[:12]}…); re-run `resilq gain` on it")
        for i, arr in self.counts.items():
            if i not in model.neuron_layers or arr.shape != (ROWS, model.out_size(i)):
                raise MismatchError(f"gain layer {i} does not match the model's neuron layers")

    @property
    def layers(self) -> list[int]:
        return sorted(self.counts)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(json.dumps({"network_hash": self.network_hash, "inputs": int(self.inputs),
                                       "layers": self.layers}, sort_keys=True).encode())
        for i in self.layers:
            h.update(f"L{i}".encode())
            h.update(np.ascontiguousarray(self.counts[i], dtype=np.int64).tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------------------------------ blocks
    def block(self, layer: int, name: str) -> np.ndarray:
        """Counter block ``name`` of every neuron of ``layer``: shape ``(n_out, *block shape)``."""
        if name not in BLOCKS:
            raise KeyError(f"no gain counter {name!r}; known: {', '.join(BLOCKS)}")
        b = BLOCKS[name]
        rows = self.counts[layer][b.offset:b.offset + b.size]
        return rows.T.reshape((rows.shape[1],) + b.shape)

    def _total(self, layer: int, name: str) -> np.ndarray:
        arr = self.block(layer, name)
        return arr.reshape(arr.shape[0], -1).sum(axis=1)

    def unprotected(self, layer: int) -> np.ndarray:
        """Events of each neuron's slot that change the top-1 (= 8 · inputs · exact NVF)."""
        return self._total(layer, "unprotected")

    def protected(self, scheme: Scheme, layer: int, against: str = "own") -> np.ndarray:
        """Events of the protected neuron's slots that change the top-1 (``own`` or ``ref`` fault-free top-1)."""
        return self._total(layer, f"{Scheme(scheme).label}.{against}")

    def gain(self, scheme: Scheme, layer: int) -> np.ndarray:
        return self.unprotected(layer) - self.protected(scheme, layer, "own")

    def cost(self, scheme: Scheme, layer: int) -> np.ndarray:
        return self.protected(scheme, layer, "ref") - self.protected(scheme, layer, "own")

    def net(self, scheme: Scheme, layer: int) -> np.ndarray:
        return self.unprotected(layer) - self.protected(scheme, layer, "ref")

    def changed(self, scheme: Scheme, layer: int) -> np.ndarray:
        """Inputs whose fault-free top-1 protecting each neuron with ``scheme`` changes."""
        return self.block(layer, f"{Scheme(scheme).label}.changed")

    def sound(self, scheme: Scheme, layer: int) -> bool:
        """Whether ``scheme`` may protect neurons of ``layer`` (split needs a ReLU, SPEC §4)."""
        return Scheme(scheme) is not Scheme.SPLIT or bool(self.relu[layer])

    def nvf(self, layer: int) -> np.ndarray:
        return self.unprotected(layer) / (8.0 * self.inputs)


def save_gain(result: GainResult, path: str | os.PathLike) -> Path:
    arrays = {f"L{i}": np.asarray(v, dtype=np.int64) for i, v in result.counts.items()}
    header = {"network_hash": result.network_hash, "inputs": int(result.inputs), "layers": result.layers,
              "relu": {str(i): bool(r) for i, r in result.relu.items()}, "layout": layout_header(),
              "metadata": result.metadata}
    return write_archive(path, KIND, VERSION, header, arrays)


def load_gain(path: str | os.PathLike, model: Model | None = None) -> GainResult:
    """Read a ``.gain`` file, check its counters; with ``model``, also check that it belongs to that model."""
    header, arrays, _ = read_archive(path, KIND, (VERSION,))
    try:
        if header["layout"] != layout_header():
            raise FormatError(f"{path}: the gain counters are laid out differently from this resilq version's; "
                              "re-run `resilq gain`")
        counts = {int(i): arrays[f"L{int(i)}"] for i in header["layers"]}
        relu = {int(k): bool(v) for k, v in header["relu"].items()}
        result = GainResult(str(header["network_hash"]), counts, int(header["inputs"]), relu,
                            dict(header.get("metadata", {})))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FormatError(f"{path}: malformed gain header ({type(exc).__name__}: {exc})") from None
    for i, v in counts.items():
        if v.dtype != np.int64 or v.ndim != 2 or v.shape[0] != ROWS:
            raise FormatError(f"{path}: gain counters of layer {i} must be int64[{ROWS}, n_out]")
        if i not in relu:
            raise FormatError(f"{path}: no ReLU flag for layer {i}")
        if v.size and v.min() < 0:
            raise FormatError(f"{path}: gain counters of layer {i} are negative")
    for i in counts:
        pop = result.block(i, "population").sum(axis=(1, 2))
        if np.any(pop != 8 * result.inputs) or np.any(result.unprotected(i) > pop):
            raise FormatError(f"{path}: gain counters of layer {i} are inconsistent with {result.inputs} inputs")
    if model is not None:
        result.check_model(model)
    return result


__all__ = ["GainResult", "load_gain", "save_gain"]
