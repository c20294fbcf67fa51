"""Range restriction (Ranger-style): per-layer bounds profiled on the training set, applied as ``Clip``.

Ranger (Chen et al., DSN 2021) and the hardening paper's public code clip every ReLU output to the largest
value the layer produced on the training data: a fault that drives a value above anything seen fault-free is
cut back. In resilq the clip follows the corrector (``resilq.ir.Clip``): it restricts the value the next
layer reads, and the fault-free network is changed only where a test input exceeds the profiled bound.
"""

from __future__ import annotations

import numpy as np

from ..arith import CLIP_VARIANTS
from ..errors import ParameterError
from ..ir.executor import Executor
from ..ir.layers import Clip
from ..ir.model import Model
from .selection import resolve_layers


def profile_bounds(model: Model, x: np.ndarray, layers: tuple[str, ...] | None = None,
                   batch_size: int = 512) -> dict[int, int]:
    """Largest fault-free output of each neuron layer (all of them by default) over the int8 inputs ``x``."""
    if x.shape[0] == 0:
        raise ParameterError("profiling clip bounds needs at least one input")
    chosen = resolve_layers(model, layers, what="clipped")
    ex = Executor(model.without_clip())
    peak = {i: -128 for i in chosen}
    for s in range(0, x.shape[0], batch_size):
        acts = ex.run(x[s:s + batch_size], collect=True).activations
        for i in chosen:
            peak[i] = max(peak[i], int(acts[i].max()))
    return {i: max(0, p) for i, p in peak.items()}


def with_clip(model: Model, bounds: dict[int, int], variant: str = "bound") -> Model:
    """``model`` with a clip of ``variant`` at ``bounds[layer]`` on each layer (recorded in the metadata)."""
    if variant not in CLIP_VARIANTS:
        raise ParameterError(f"unknown clip variant {variant!r}; expected one of {', '.join(CLIP_VARIANTS)}")
    record = {"variant": variant, "bounds": {model.layers[i].name: int(b) for i, b in bounds.items()}}
    return model.with_clip({i: Clip(int(b), variant) for i, b in bounds.items()}, clip=record)


__all__ = ["profile_bounds", "with_clip"]
