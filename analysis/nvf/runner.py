"""Run analysis work units in-process, in worker processes on one machine, or on a Dask cluster.

A work unit is ``(chunk of inputs, layer, neurons)``; a unit function computes, for its neurons, per-neuron
sums over its inputs (e.g. the number of critical (input, bit) pairs). Sums over chunks add up, so the
result does not depend on how the work was split or on the number of processes. Workers inherit the model
and inputs through ``fork`` (no copy, no pickling) and keep the golden tensors of their current chunk.
BLAS runs single-threaded in every worker: the matrices are small, and threads fighting over shared cores
cost more than they give (measured).

On a Dask cluster (``client``, from :func:`resilq.campaign.distributed.dask_client`: ``local``, ``tcp://...``
or ``slurm``) the model and inputs are scattered to every worker once, and each worker process keeps one
:class:`Context`, exactly as campaigns do (:func:`resilq.campaign.distributed.as_finished`). With a
:class:`~resilq.nvf.partials.Partials` store every finished unit is kept on disk and a re-run skips it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import MismatchError, ParameterError
from ..faultsim import Golden, Propagator
from ..faultsim.allocator import tune_for_arrays
from ..faultsim.backend import array_backend
from ..faultsim.golden import inputs_key
from ..ir.model import Model
from ..ui import progress
from .partials import Partials


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
    """What a worker holds: the propagator and the golden tensors of one chunk of inputs at a time.

    ``device``: the propagator's products on torch tensors there ("cpu", "cuda"; None: numpy).
    """

    def __init__(self, model: Model, x: np.ndarray, use_bounds: bool, device: str | None = None):
        self.model, self.x = model, x
        self.propagator = Propagator(model, use_bounds=use_bounds, backend=array_backend(device))
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


def _init(model: Model, x: np.ndarray, use_bounds: bool, function: Callable, device: str | None) -> None:
    global _CONTEXT, _FUNCTION
    tune_for_arrays()  # a pool worker of ours (see resilq.faultsim.allocator)
    _CONTEXT, _FUNCTION = Context(model, x, use_bounds, device), function


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


def _run_indexed(item: tuple[int, Unit]) -> tuple[int, np.ndarray]:
    index, unit = item
    return index, _run(unit)[1]


def dask_unit(model: Model, x: np.ndarray, key: tuple, use_bounds: bool, function: Callable, index: int,
              unit: Unit, device: str | None = None) -> tuple[int, np.ndarray]:
    """The Dask task: ``function`` on one unit, with the worker's kept :class:`Context` for ``key``."""
    from ..campaign.distributed import worker_state

    tune_for_arrays()  # Dask workers start with glibc's mmap threshold fixed at 128 KiB (see the module)
    ctx, lock = worker_state("analysis", key, lambda: Context(model, x, use_bounds, device))
    with lock, single_threaded_blas():
        return index, function(ctx, unit)


def _results(model: Model, x: np.ndarray, todo: list[tuple[int, Unit]], function: Callable, jobs: int,
             use_bounds: bool, client, device: str | None) -> Iterator[tuple[int, np.ndarray]]:
    """``(unit index, sums)`` of every unit of ``todo``, in any order."""
    if client is not None:
        from ..campaign.distributed import as_finished

        key = (model.hash, inputs_key(x), use_bounds, getattr(function, "__qualname__", repr(function)), device)
        yield from as_finished(client, dask_unit, [model, x],
                               ((key, use_bounds, function, i, u, device) for i, u in todo))
    elif jobs == 1 or len(todo) <= 1:
        ctx = Context(model, x, use_bounds, device)
        with single_threaded_blas():
            for i, unit in todo:
                yield i, function(ctx, unit)
    else:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo), os.cpu_count() or 1),
                                 mp_context=mp.get_context(method), initializer=_init,
                                 initargs=(model, x, use_bounds, function, device)) as pool:
            yield from pool.map(_run_indexed, todo)


def run_units(model: Model, x: np.ndarray, units: list[Unit], function: Callable, jobs: int = 1,
              use_bounds: bool = False, description: str = "analysis", rows: int = 1, client=None,
              partials: Partials | None = None, device: str | None = None) -> dict[int, np.ndarray]:
    """Sum ``function(context, unit)`` -- ``rows`` floats per neuron of the unit, shape (rows, n) -- per layer
    and neuron: returns ``{layer: (rows, n_out)}``.

    ``client``: a ``distributed.Client`` to run the units on (``jobs`` is then ignored). ``partials``: keep
    every finished unit there, and take the units it already holds from it instead of computing them.
    ``device``: the fault simulator's products on torch tensors there (:mod:`resilq.faultsim.backend`).
    """
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    sums = {layer: np.zeros((rows, model.out_size(layer)), dtype=np.float64) for layer in model.neuron_layers}

    def add(index: int, values: np.ndarray) -> None:
        unit = units[index]
        if values.shape != (rows, unit.neurons.size):
            raise MismatchError(f"work unit {index} gave sums of shape {values.shape}, expected "
                                f"{(rows, unit.neurons.size)}")
        sums[unit.layer][:, unit.neurons] += values

    done = partials.done() if partials is not None else {}
    done = {i: v for i, v in done.items() if i < len(units)}
    for index, values in done.items():
        add(index, values)
    todo = [(i, u) for i, u in enumerate(units) if i not in done]
    total = sum(u.neurons.size * (u.stop - u.start) for _, u in todo)
    with progress(total, description, "neuron-inputs") as advance:
        for index, values in _results(model, x, todo, function, jobs, use_bounds, client, device):
            if partials is not None:
                partials.save(index, values)
            add(index, values)
            unit = units[index]
            advance(unit.neurons.size * (unit.stop - unit.start))
    return sums
