"""The naive way, kept as the reference: one full executor run per flipped bit (batched over the inputs).

This is what a PyTorchFI-style tool does, and what :func:`resilq.nvf.exact.exact_nvf` must equal for every
neuron. It costs ``8 x neurons`` full forward passes, so it is only for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..faults import Fault
from ..ir.executor import Executor
from ..ir.model import Model
from .result import NVFResult


def brute_force_flips(model: Model, x: np.ndarray, layer: int, neurons: Iterable[int],
                      executor: Executor | None = None, golden: np.ndarray | None = None) -> np.ndarray:
    """Per neuron: the number of (input, bit) flips that change the top-1, by full re-execution."""
    executor = executor or Executor(model)
    golden = executor.run(x).predictions if golden is None else golden
    counts = []
    for n in neurons:
        c = 0
        for bit in range(8):
            c += int(np.count_nonzero(executor.run(x, faults=[Fault.bit_flip(layer, int(n), bit)]).predictions != golden))
        counts.append(c)
    return np.asarray(counts, dtype=np.int64)


def brute_force_nvf(model: Model, x: np.ndarray) -> NVFResult:
    executor = Executor(model)
    golden = executor.run(x).predictions
    values = {layer: brute_force_flips(model, x, layer, range(model.out_size(layer)), executor, golden) / (8 * len(x))
              for layer in model.neuron_layers}
    return NVFResult(model.network_hash, values, "brute-force", int(len(x)))
