"""``exact_gain``: the protection gain of every neuron under every scheme over an input set (SPEC §8)."""

from __future__ import annotations

import numpy as np

from ..arith import Scheme
from ..ir.model import Model
from ..nvf.exact import CASES_PER_UNIT, check_analysable, chunk_inputs
from ..nvf.runner import plan, run_units
from ..nvf.sampling import select_neurons
from .events import gain_counts
from .layout import BITS, ROWS
from .result import GainResult

#: Events evaluated per (neuron, input): 8 unprotected + per scheme 1 fault-free + copies x 8.
EVENTS_PER_CASE = BITS + sum(1 + s.copies * BITS for s in Scheme)


def exact_gain(model: Model, x: np.ndarray, jobs: int = 1, metadata: dict | None = None) -> GainResult:
    """Exact gain counters of every neuron of the unprotected ``model`` over the int8 inputs ``x``."""
    x = check_analysable(model, x)
    neurons = select_neurons(model, None)
    units = plan(model, x.shape[0], neurons, chunk_inputs(model), CASES_PER_UNIT,
                 cases_per_neuron_input=EVENTS_PER_CASE)
    sums = run_units(model, x, units, gain_counts, jobs=jobs, rows=ROWS,
                     description=f"exact protection gain of {model.n_neurons:,} neurons x {len(Scheme)} schemes")
    counts = {i: np.rint(sums[i]).astype(np.int64) for i in model.neuron_layers}
    relu = {i: bool(model.layers[i].requant.relu) for i in model.neuron_layers}
    meta = {"model": model.name, **(metadata or {})}
    return GainResult(model.network_hash, counts, int(x.shape[0]), relu, meta)


__all__ = ["EVENTS_PER_CASE", "exact_gain"]
