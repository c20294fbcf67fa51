"""Seeded random protection of a fraction of every layer's neurons: the benchmarks' fixed, NVF-free selection."""

from __future__ import annotations

import numpy as np

from resilq.ir import Protection


def random_protection(model, scheme, fraction: float = 0.04, seed: int = 0):
    """``model`` with ``scheme`` on a seeded random ``fraction`` (at least one) of each neuron layer's outputs."""
    rng = np.random.default_rng(seed)
    prots = {}
    for i in model.neuron_layers:
        n = model.out_size(i)
        chosen = rng.choice(n, max(1, round(fraction * n)), replace=False)
        prots[i] = Protection(scheme, np.sort(chosen).astype(np.int32))
    return model.with_protection(prots)
