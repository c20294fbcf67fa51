"""Exact NVF (SPEC §3): for every neuron, the fraction of (input, bit) pairs whose single bit flip in the
neuron's int8 output changes the network's top-1 from its fault-free top-1.

Every one of the ``inputs x neurons x 8`` flips is decided exactly by the fault-propagation core
(:mod:`resilq.faultsim`), which recomputes only what a flip can reach; nothing is estimated. The result
equals re-running the full executor for each flipped bit (the tests check that for every neuron). The
metadata also records, per layer and bit, the fraction of (input, neuron) flips that change the top-1
(``bit_critical``).
"""

from __future__ import annotations

import os

import numpy as np

from ..arith import flip_bit
from ..errors import ParameterError, UnsupportedModelError
from ..faultsim.simulator import golden_bytes_per_input
from ..ir.executor import check_input
from ..ir.model import Model
from .partials import open_partials
from .result import NVFResult
from .runner import Context, Unit, plan, run_units
from .sampling import check_fraction, select_neurons
from .table import layers_metadata

BITS = np.arange(8)
#: Inputs whose golden tensors a worker holds at once (at most), their memory budget, and the flips handed
#: to the core per work unit.
CHUNK_INPUTS = 1000
CHUNK_BYTES = 512 << 20
CASES_PER_UNIT = 1 << 22


def chunk_inputs(model: Model) -> int:
    """Inputs per chunk: up to ``CHUNK_INPUTS``, fewer for large networks (golden tensors within ``CHUNK_BYTES``)."""
    return max(1, min(CHUNK_INPUTS, CHUNK_BYTES // golden_bytes_per_input(model)))


def check_analysable(model: Model, x: np.ndarray) -> np.ndarray:
    """The int8 batch, after refusing what an NVF analysis cannot mean."""
    if model.is_protected:
        raise UnsupportedModelError(f"{model.name} is a protected model; NVF is defined on the unprotected network "
                                    "(analyse the original .rq, or model.unprotected())")
    if model.has_clip:
        raise UnsupportedModelError(f"{model.name} has range restriction (clip); NVF and gain are defined on the "
                                    "network without it (analyse model.without_clip())")
    if not isinstance(x, np.ndarray) or x.shape[0] == 0:
        raise ParameterError("the NVF analysis needs at least one input (the input set is empty)")
    return check_input(model, x)


def critical_flips(ctx: Context, unit: Unit) -> np.ndarray:
    """(8, neurons of the unit): how many inputs' top-1 the flip of each bit of each neuron changes."""
    golden = ctx.golden(unit.start, unit.stop)
    n, neurons = golden.n, unit.neurons
    values = flip_bit(golden.out[unit.layer][:, neurons].astype(np.int8)[:, :, None], BITS[None, None, :])
    xi = np.broadcast_to(np.arange(n)[:, None, None], values.shape)
    nn = np.broadcast_to(neurons[None, :, None], values.shape)
    top = ctx.propagator.top1(golden, unit.layer, nn.ravel(), xi.ravel(), values.ravel())
    flipped = top.reshape(values.shape) != golden.top1[:, None, None]
    return flipped.sum(axis=0).T.astype(np.float64)


def exact_nvf(model: Model, x: np.ndarray, jobs: int = 1, sample: float | None = None, seed: int = 0,
              use_bounds: bool = False, metadata: dict | None = None, client=None,
              parts: str | os.PathLike | None = None, device: str | None = None) -> NVFResult:
    """Exact NVF of every neuron (or of a stratified ``sample`` fraction of them) over the int8 inputs ``x``.

    ``client``: run the work units on that Dask cluster; ``parts``: keep finished units in that directory and
    continue from the ones it holds (:mod:`.partials`); ``device``: the fault simulator's products on torch
    tensors there ("cpu", "cuda"; :mod:`resilq.faultsim.backend`). None changes a single value of the result.
    """
    x = check_analysable(model, x)
    sample = check_fraction(sample)
    neurons = select_neurons(model, sample, seed)
    units = plan(model, x.shape[0], neurons, chunk_inputs(model), CASES_PER_UNIT)
    store = open_partials(parts, model, x, "exact", units, sample=sample, seed=seed if sample else None)
    counts = run_units(model, x, units, critical_flips, jobs=jobs, use_bounds=use_bounds, rows=8, client=client,
                       partials=store, device=device, description=f"exact NVF of {sum(v.size for v in neurons.values()):,} neurons")
    values, per_bit = {}, {}
    for layer in model.neuron_layers:
        seen = counts[layer][:, neurons[layer]]  # (8 bits, visited neurons)
        v = np.full(model.out_size(layer), np.nan)
        v[neurons[layer]] = seen.sum(axis=0) / (8 * x.shape[0])
        values[layer] = v
        per_bit[str(layer)] = (seen.sum(axis=1) / max(1, seen.shape[1] * x.shape[0])).tolist()
    meta = {"model": model.name, "layers": layers_metadata(model), "sample": sample,
            "seed": seed if sample else None, "bit_critical": per_bit, **(metadata or {})}
    return NVFResult(model.network_hash, values, "exact", int(x.shape[0]), meta)
