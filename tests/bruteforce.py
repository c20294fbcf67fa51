"""Exact NVF by brute force, for tests of the consumers of NVF results (hardening, pruning).

SPEC §3 literally: for every neuron and bit, re-run the whole bit-true executor with that bit flipped and
count the inputs whose top-1 changes. Only for tiny models and input sets; the real analysis is
``resilq.nvf`` (issue #3), which is tested against the same definition.
"""

from __future__ import annotations

import numpy as np

from resilq.faults import Fault
from resilq.ir import Executor, Model
from resilq.nvf import NVFResult


def exact_nvf(model: Model, x: np.ndarray) -> NVFResult:
    executor = Executor(model)
    golden = executor.run(x).predictions
    values = {}
    for i in model.neuron_layers:
        n = model.neurons_in(i)
        hits = np.zeros(n, dtype=np.int64)
        for slot in range(n):
            for bit in range(8):
                pred = executor.run(x, faults=[Fault.bit_flip(i, slot, bit)]).predictions
                hits[slot] += int((pred != golden).sum())
        values[i] = hits / (8.0 * len(x))
    return NVFResult(model.network_hash, values, "bruteforce", len(x))


def synthetic_nvf(model: Model, rng: np.random.Generator, high: float = 0.5) -> NVFResult:
    """Seeded random NVF values, uniform in [0, high), shaped like the model's neuron layers."""
    values = {i: rng.random(model.neurons_in(i)) * high for i in model.neuron_layers}
    return NVFResult(model.network_hash, values, "synthetic", 0)


def long_tailed_nvf(model: Model, rng: np.random.Generator, b: float = 15.0) -> NVFResult:
    """Seeded NVF values ~ Beta(1, b): most neurons barely matter, a few do, as in the paper's Table I
    (b = 15 puts (0.8)**15 = 3.5 % of the neurons at NVF >= 20 %; the paper's LeNet-5 has 3.99 %)."""
    values = {i: rng.beta(1.0, b, size=model.neurons_in(i)) for i in model.neuron_layers}
    return NVFResult(model.network_hash, values, "synthetic", 0)
