"""Which neurons an analysis visits: all of them, or a stratified sample for large networks.

The sampled mode follows the stratified idea of DeepVigor+ (Ahmadilivani et al., 2024): every output channel
of a conv layer is a stratum (a dense layer is one stratum), and a fraction ``f`` of the neurons of every
stratum is analysed (at least one each), chosen uniformly with a fixed seed. Unvisited neurons keep NaN in
the result; the Table I counts of a sampled result are estimated per stratum (visited critical fraction x
stratum size), see :func:`resilq.nvf.table.critical_count`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError
from ..ir.model import Model


def check_fraction(fraction: float | None) -> float | None:
    if fraction is None:
        return None
    if not isinstance(fraction, (int, float)) or not 0.0 < float(fraction) <= 1.0:
        raise ParameterError(f"sample fraction must lie in (0, 1], got {fraction!r}")
    return None if float(fraction) == 1.0 else float(fraction)


def strata(model: Model, layer: int) -> tuple[int, int]:
    """``(strata, neurons per stratum)`` of a neuron layer: output channels for conv, one for dense."""
    shape = model.out_shape(layer)
    if len(shape) == 3:
        return shape[0], shape[1] * shape[2]
    return 1, shape[0]


def select_neurons(model: Model, fraction: float | None, seed: int = 0) -> dict[int, np.ndarray]:
    """Sorted flat indices of the neurons to analyse, per neuron layer."""
    fraction = check_fraction(fraction)
    rng = np.random.default_rng(seed)
    chosen = {}
    for layer in model.neuron_layers:
        n_strata, per = strata(model, layer)
        if fraction is None:
            chosen[layer] = np.arange(n_strata * per, dtype=np.int64)
            continue
        k = max(1, math.ceil(fraction * per))
        picks = [s * per + np.sort(rng.choice(per, size=k, replace=False)) for s in range(n_strata)]
        chosen[layer] = np.concatenate(picks).astype(np.int64)
    return chosen
