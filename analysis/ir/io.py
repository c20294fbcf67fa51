"""``.rq`` files: the integer IR on disk (see docs/ir-format.md).

A ``.rq`` file is a resilq archive (:mod:`resilq.archive`) of kind ``model``: a JSON header that
describes the input quantization and every layer, and one ``.npy`` array per weight, bias, shift and
protected-neuron list. Loading validates the file completely and never executes code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..archive import read_archive, write_archive
from ..arith import Scheme
from ..errors import FormatError, UnsupportedModelError
from .layers import LAYER_KINDS, Clip, Conv2d, Flatten, Layer, Linear, MaxPool2d, Protection, Requant
from .model import InputQuant, Model

KIND = "model"
VERSION = 1
#: Version 2 adds per-layer range restriction (``clip``); a model without clip is still written as version 1,
#: so readers that know only version 1 keep reading every file they can understand.
CLIP_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


def _layer_spec(i: int, layer: Layer, include_protection: bool) -> tuple[dict, dict[str, np.ndarray]]:
    spec: dict[str, Any] = {"kind": layer.kind, "name": layer.name}
    arrays: dict[str, np.ndarray] = {}
    if isinstance(layer, MaxPool2d):
        spec.update(kernel=int(layer.kernel), stride=int(layer.stride))
    elif isinstance(layer, (Conv2d, Linear)):
        key = f"L{i}"
        arrays[f"{key}.weight"] = layer.weight
        arrays[f"{key}.bias"] = layer.bias
        if isinstance(layer, Conv2d):
            spec.update(stride=int(layer.stride), padding=int(layer.padding))
        if layer.requant is None:
            spec["requant"] = None
        else:
            spec["requant"] = {"relu": bool(layer.requant.relu)}
            arrays[f"{key}.shift"] = layer.requant.shift.astype(np.int32)
        if layer.clip is not None:  # part of the network's function (and of the network hash)
            spec["clip"] = {"bound": int(layer.clip.bound), "variant": layer.clip.variant}
        if include_protection and layer.protection is not None:
            spec["protection"] = {"scheme": layer.protection.scheme.label}
            if layer.protection.own_weights:  # only when set: the digests of shared-weight models stay as they were
                spec["protection"]["own_weights"] = True
            arrays[f"{key}.protected"] = layer.protection.neurons.astype(np.int32)
    return spec, arrays


def model_spec(model: Model, include_protection: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header and the arrays that describe ``model`` (metadata excluded)."""
    layers, arrays = [], {}
    for i, layer in enumerate(model.layers):
        spec, arrs = _layer_spec(i, layer, include_protection)
        layers.append(spec)
        arrays.update(arrs)
    header = {"input": {"shape": list(model.input.shape), "shift": int(model.input.shift)}, "layers": layers}
    return header, arrays


def model_digest(model: Model, include_protection: bool = True) -> str:
    """SHA-256 of what the model computes: layer names and metadata are excluded."""
    header, arrays = model_spec(model, include_protection)
    for spec in header["layers"]:
        spec.pop("name")
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{arr.dtype.name}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Write ``model`` to a ``.rq`` file."""
    header, arrays = model_spec(model, include_protection=True)
    header["metadata"] = dict(model.metadata)
    header["hash"] = model.hash
    return write_archive(path, KIND, CLIP_VERSION if model.has_clip else VERSION, header, arrays)


def load_model(path: str | os.PathLike) -> Model:
    """Read and validate a ``.rq`` file. Any problem raises :class:`FormatError` naming the file."""
    header, arrays, version = read_archive(path, KIND, SUPPORTED_VERSIONS)
    try:
        model = _build(header, arrays)
        if model.has_clip and version < CLIP_VERSION:
            raise FormatError(f"a version-{version} model file cannot carry clip (range restriction needs version "
                              f"{CLIP_VERSION})")
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None
    except UnsupportedModelError as exc:
        raise FormatError(f"{path}: the stored model is invalid: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: malformed model header ({type(exc).__name__}: {exc})") from None
    stored = header.get("hash")
    if not isinstance(stored, str) or len(stored) != 64:
        raise FormatError(f"{path}: the model header has no valid content hash (found {stored!r}); a .rq file "
                          "written by resilq always carries one, so this file was edited or damaged")
    if stored != model.hash:
        raise FormatError(f"{path}: content hash mismatch (stored {stored[:12]}…, computed {model.hash[:12]}…); "
                          "the file was modified or damaged")
    return model


def _array(arrays: dict[str, np.ndarray], name: str, dtype: type) -> np.ndarray:
    if name not in arrays:
        raise FormatError(f"array {name!r} is missing")
    arr = arrays[name]
    if arr.dtype != dtype:
        raise FormatError(f"array {name!r} has dtype {arr.dtype}, expected {np.dtype(dtype).name}")
    return arr


def _build(header: dict, arrays: dict[str, np.ndarray]) -> Model:
    inp = header["input"]
    input_q = InputQuant(shape=tuple(int(d) for d in inp["shape"]), shift=int(inp["shift"]))
    layers: list[Layer] = []
    for i, spec in enumerate(header["layers"]):
        kind = spec["kind"]
        if kind not in LAYER_KINDS:
            raise FormatError(f"layer {i} has unknown kind {kind!r} (known: {sorted(LAYER_KINDS)})")
        name = str(spec["name"])
        if kind == "maxpool2d":
            layers.append(MaxPool2d(name, kernel=int(spec["kernel"]), stride=int(spec["stride"])))
            continue
        if kind == "flatten":
            layers.append(Flatten(name))
            continue
        key = f"L{i}"
        weight = _array(arrays, f"{key}.weight", np.int8)
        bias = _array(arrays, f"{key}.bias", np.int32)
        rq = spec["requant"]
        requant = None if rq is None else Requant(_array(arrays, f"{key}.shift", np.int32), bool(rq["relu"]))
        prot = None
        if spec.get("protection") is not None:
            try:
                scheme = Scheme.parse(spec["protection"]["scheme"])
            except ValueError as exc:
                raise FormatError(str(exc)) from None
            own = spec["protection"].get("own_weights", False)
            if not isinstance(own, bool):
                raise FormatError(f"layer {i}: protection.own_weights must be true or false, got {own!r}")
            prot = Protection(scheme, _array(arrays, f"{key}.protected", np.int32), own)
        clip = None
        if spec.get("clip") is not None:
            c = spec["clip"]
            if not isinstance(c, dict) or not isinstance(c.get("bound"), int) or not isinstance(c.get("variant"), str):
                raise FormatError(f"layer {name!r}: clip must be {{'bound': int, 'variant': str}}, got {c!r}")
            clip = Clip(int(c["bound"]), c["variant"])
        if kind == "conv2d":
            layers.append(Conv2d(name, weight, bias, requant, stride=int(spec["stride"]),
                                 padding=int(spec["padding"]), protection=prot, clip=clip))
        else:
            layers.append(Linear(name, weight, bias, requant, protection=prot, clip=clip))
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise FormatError("metadata must be a JSON object")
    return Model(input_q, tuple(layers), metadata)
