"""Run analysis work units in parallel worker processes on one machine (or in-process for one job).

A work unit is ``(chunk of inputs, layer, neurons)``; a unit function computes, for its neurons, per-neuron
sums over its inputs (e.g. the number of critical (input, bit) pairs). Sums over chunks add up, so the
result does not depend on how the work was split or on the number of processes. Workers inherit the model
and inputs through ``fork`` (no copy, no pickling) and keep the golden tensors of their current chunk.
BLAS runs single-threaded in every worker: the matrices are small, and threads fighting over shared cores
cost more than they give (measured).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..faultsim import Golden, Propagator
from ..ir.model import Model
from ..ui import progress


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread (via threadpoolctl when installed; otherwise a no-op)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class Unit:
    start: int
    stop: int
    layer: int
    neurons: np.ndarray


class Context:
    """What a worker holds: the propagator and the golden tensors of one chunk of inputs at a time."""

    def __init__(self, model: Model, x: np.ndarray, use_bounds: bool):
        self.model, self.x = model, x
        self.propagator = Propagator(model, use_bounds=use_bounds)
        self._chunk: tuple[int, int] | None = None
        self._cache: dict[str, object] = {}

    def golden(self, start: int, stop: int) -> Golden:
        return self.cached(start, stop, "golden", lambda: self.propagator.golden(self.x[start:stop]))

    def cached(self, start: int, stop: int, name: str, make: Callable[[], object]):
        """A per-chunk value (golden tensors, gradients, ...), recomputed when the chunk changes."""
        if self._chunk != (start, stop):
            self._chunk, self._cache = (start, stop), {}
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]


_CONTEXT: Context | None = None
_FUNCTION: Callable | None = None


def _init(model: Model, x: np.ndarray, use_bounds: bool, function: Callable) -> None:
    global _CONTEXT, _FUNCTION
    _CONTEXT, _FUNCTION = Context(model, x, use_bounds), function


def _run(unit: Unit) -> tuple[Unit, np.ndarray]:
    with single_threaded_blas():
        return unit, _FUNCTION(_CONTEXT, unit)


def plan(model: Model, n_inputs: int, neurons: dict[int, np.ndarray], chunk: int, cases_per_unit: int,
         cases_per_neuron_input: int = 8) -> list[Unit]:
    """Split (inputs x neurons) into units of about ``cases_per_unit`` cases, chunk by chunk."""
    units = []
    for start in range(0, n_inputs, chunk):
        stop = min(n_inputs, start + chunk)
        per_neuron = (stop - start) * cases_per_neuron_input
        step = max(1, cases_per_unit // per_neuron)
        for layer in model.neuron_layers:
            idx = neurons.get(layer, np.zeros(0, dtype=np.int64))
            for a in range(0, idx.size, step):
                units.append(Unit(start, stop, layer, idx[a:a + step]))
    return units


def run_units(model: Model, x: np.ndarray, units: list[Unit], function: Callable, jobs: int = 1,
              use_bounds: bool = False, description: str = "analysis", rows: int = 1) -> dict[int, np.ndarray]:
    """Sum ``function(context, unit)`` -- ``rows`` floats per neuron of the unit, shape (rows, n) -- per layer
    and neuron: returns ``{layer: (rows, n_out)}``."""
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    sums = {layer: np.zeros((rows, model.out_size(layer)), dtype=np.float64) for layer in model.neuron_layers}
    total = sum(u.neurons.size * (u.stop - u.start) for u in units)
    with progress(total, description, "neuron-inputs") as advance:
        if jobs == 1 or len(units) <= 1:
            ctx = Context(model, x, use_bounds)
            with single_threaded_blas():
                for unit in units:
                    sums[unit.layer][:, unit.neurons] += function(ctx, unit)
                    advance(unit.neurons.size * (unit.stop - unit.start))
        else:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with ProcessPoolExecutor(max_workers=min(jobs, len(units), os.cpu_count() or 1),
                                     mp_context=mp.get_context(method), initializer=_init,
                                     initargs=(model, x, use_bounds, function)) as pool:
                for unit, values in pool.map(_run, units):
                    sums[unit.layer][:, unit.neurons] += values
                    advance(unit.neurons.size * (unit.stop - unit.start))
    return sums
