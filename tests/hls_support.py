"""Shared helpers of the HLS tests: the csim marker with its skip reason, and model builders."""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest

from resilq.arith import Scheme, requantize
from resilq.ir import Conv2d, Flatten, InputQuant, Linear, MaxPool2d, Model, Protection, Requant
from resilq.ir.kernels import accumulate, maxpool

HAVE_CXX = shutil.which(os.environ.get("CXX", "g++")) is not None
#: Marks a module's tests as C-simulation tests: they run by default where g++ exists, skip otherwise.
CSIM = [pytest.mark.csim,
        pytest.mark.skipif(not HAVE_CXX, reason="C-simulation needs g++ on PATH (apt-get install g++)")]


def calibrated_model(rng: np.random.Generator, input_shape, specs, name: str = "model") -> Model:
    """A model from layer specs with random int8 weights and shifts calibrated on random inputs.

    ``specs``: ("conv", out, k, stride, pad) | ("pool", k, stride) | ("flatten",) | ("fc", out) | ("head", out).
    Shifts put each channel's 99th-percentile accumulator near 100, so activations use the int8 range.
    """
    inp = InputQuant(tuple(input_shape), 7)
    x = inp.quantize(rng.random((16, *input_shape), dtype=np.float32))
    layers = []
    for k, spec in enumerate(specs):
        kind = spec[0]
        if kind == "pool":
            layers.append(MaxPool2d(f"pool{k}", spec[1], spec[2]))
            x = maxpool(layers[-1], x)
            continue
        if kind == "flatten":
            layers.append(Flatten(f"flatten{k}"))
            x = x.reshape(x.shape[0], -1)
            continue
        out = spec[1]
        if kind == "conv":
            w = rng.integers(-40, 41, size=(out, x.shape[1], spec[2], spec[2])).astype(np.int8)
            layer = Conv2d(f"conv{k}", w, rng.integers(-500, 501, out).astype(np.int32), None, spec[3], spec[4])
        else:
            w = rng.integers(-40, 41, size=(out, x.shape[1])).astype(np.int8)
            layer = Linear(f"fc{k}", w, rng.integers(-500, 501, out).astype(np.int32), None)
        if kind == "head":
            layers.append(layer)
            break
        acc = accumulate(layer, x)
        peak = np.percentile(np.abs(np.moveaxis(acc, 1, 0).reshape(out, -1)), 99, axis=1) + 1
        shift = np.clip(np.ceil(np.log2(peak / 100.0)), 0, 30).astype(np.int32)
        layer = dataclasses.replace(layer, requant=Requant(shift, True))
        layers.append(layer)
        x = requantize(acc, shift.reshape((-1,) + (1,) * (acc.ndim - 2)), 0, 127)
    return Model(inp, tuple(layers), {"name": name})


def protect_fraction(model: Model, rng: np.random.Generator, scheme: Scheme, fraction: float) -> Model:
    """Protect a seeded random ``fraction`` of every neuron layer's neurons with ``scheme``."""
    prots = {}
    for i in model.neuron_layers:
        n = model.out_size(i)
        k = max(1, round(n * fraction))
        prots[i] = Protection(scheme, np.sort(rng.choice(n, size=k, replace=False)).astype(np.int32))
    return model.with_protection(prots)


def assert_layers(got, want, where: str) -> None:
    """Every layer's activations equal, else name the first layer that differs and by how many values."""
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"{where}: layer {i} differs in {np.count_nonzero(a != b)} values"
