"""The paper's δ-range method (Algorithm 1 of the neuron-splitting paper), on the integer network.

For each neuron and each input whose gradient filter passes (:mod:`.gradient`):

* ``r_upper`` = the smallest δ > 0 and ``r_lower`` = the largest δ < 0 such that the neuron's int8 output
  ``v + δ`` changes the top-1 (lines 6-7). ``v + δ`` stays an int8 (δ ∈ [-128 - v, 127 - v]): a faulty output
  is a byte. A direction in which no δ changes the top-1 counts nothing.
* bits (lines 8-9), reading the paper's ``int(sqrt(r))`` as ``int(log2(r))`` (SPEC §3: a deviation r is bit
  log2 r): ``bit_upper = int(log2 r_upper) + 1`` and ``bit_lower = int(log2 |r_lower|)``, 1-based bit
  indices 1..8 as in line 15 (index 0, i.e. ``|r_lower| = 1``, falls outside line 15's sums).
* counters per bit (lines 10-11), averaged over the two directions (line 14), and
  ``NVF = Σ_{i=1..8} (1/8 Σ_{j=1..i} vul[j]) / |X|`` (line 15) = ``Σ_j vul[j] (9 - j) / 8 / |X|``: a counter at
  bit j stands for the 9 - j bits from j up to the sign bit.

δ is searched exactly, not sampled: the smallest changing δ per direction is found by a galloping search
that proves whole ranges of δ harmless with the sound interval bound of :mod:`resilq.faultsim` and
evaluates the remaining small ranges exactly, value by value.
"""

from __future__ import annotations

import os

import numpy as np

from ..faultsim import Golden, Propagator
from ..ir.model import Model
from .exact import check_analysable, chunk_inputs
from .gradient import output_gradients
from .partials import open_partials
from .result import NVFResult
from .runner import Context, Unit, plan, run_units
from .sampling import check_fraction, select_neurons
from .table import layers_metadata

#: Ranges at most this wide are evaluated value by value instead of bounded.
EXACT_WIDTH = 4
CASES_PER_UNIT = 1 << 16


def first_change(prop: Propagator, golden: Golden, layer: int, neuron: np.ndarray, xi: np.ndarray,
                 value: np.ndarray, direction: int) -> np.ndarray:
    """Smallest distance d >= 1 such that output ``value + direction * d`` changes the top-1 (0: none).

    Only int8 values are tried. The search keeps, per case, the first untested distance and a window
    width: a window proven harmless is skipped and the next one is twice as wide; an unproven window is
    halved until it is at most ``EXACT_WIDTH`` wide, then evaluated exactly.
    """
    value = value.astype(np.int64)
    d_max = 127 - value if direction > 0 else value + 128
    cur = np.ones(value.size, dtype=np.int64)
    width = np.maximum(d_max, 1)
    found = np.zeros(value.size, dtype=np.int64)
    active = np.flatnonzero(d_max >= 1)
    while active.size:
        w = np.minimum(width[active], d_max[active] - cur[active] + 1)
        small = w <= EXACT_WIDTH
        bound, wb = active[~small], w[~small]
        if bound.size:
            near, far = value[bound] + direction * cur[bound], value[bound] + direction * (cur[bound] + wb - 1)
            ok = prop.safe_values(golden, layer, neuron[bound], xi[bound], np.minimum(near, far), np.maximum(near, far))
            cur[bound[ok]] += wb[ok]
            width[bound[ok]] = 2 * wb[ok]
            width[bound[~ok]] = np.maximum(wb[~ok] // 2, 1)
        exact, we = active[small], w[small]
        if exact.size:
            rep = np.repeat(np.arange(exact.size), we)
            dist = cur[exact][rep] + np.arange(rep.size) - np.repeat(np.cumsum(we) - we, we)
            top = prop.top1(golden, layer, neuron[exact][rep], xi[exact][rep], value[exact][rep] + direction * dist)
            hit = top != golden.top1[xi[exact][rep]]
            first = np.full(exact.size, np.iinfo(np.int64).max)
            np.minimum.at(first, rep[hit], dist[hit])
            got = first < np.iinfo(np.int64).max
            found[exact[got]] = first[got]
            cur[exact] += we
            width[exact] = 2 * EXACT_WIDTH
        active = active[(found[active] == 0) & (cur[active] <= d_max[active])]
    return found


def line15(r_upper: np.ndarray, r_lower: np.ndarray) -> np.ndarray:
    """Per (input, neuron) contribution to line 15's numerator, from the two distances (0: none found)."""
    def weight(bit: np.ndarray, valid: np.ndarray) -> np.ndarray:
        ok = valid & (bit >= 1) & (bit <= 8)
        return np.where(ok, (9 - bit) / 8.0, 0.0)

    with np.errstate(divide="ignore"):
        bit_up = np.floor(np.log2(np.maximum(r_upper, 1))).astype(np.int64) + 1
        bit_low = np.floor(np.log2(np.maximum(r_lower, 1))).astype(np.int64)
    return (weight(bit_up, r_upper > 0) + weight(bit_low, r_lower > 0)) / 2.0


def deltarange_unit(ctx: Context, unit: Unit) -> np.ndarray:
    """Per neuron of the unit: (Σ over its inputs of the line-15 contribution, inputs passing the filter)."""
    golden = ctx.golden(unit.start, unit.stop)
    grads = ctx.cached(unit.start, unit.stop, "gradients", lambda: output_gradients(ctx.model, golden))
    active = grads[unit.layer][:, unit.neurons] != 0
    xi, col = np.nonzero(active)
    neuron = unit.neurons[col]
    value = golden.out[unit.layer][xi, neuron]
    r_up = first_change(ctx.propagator, golden, unit.layer, neuron, xi, value, +1)
    r_low = first_change(ctx.propagator, golden, unit.layer, neuron, xi, value, -1)
    sums = np.zeros(unit.neurons.size)
    np.add.at(sums, col, line15(r_up, r_low))
    return np.stack([sums, active.sum(axis=0)])


def deltarange_nvf(model: Model, x: np.ndarray, jobs: int = 1, sample: float | None = None, seed: int = 0,
                   metadata: dict | None = None, client=None, parts: str | os.PathLike | None = None,
                   device: str | None = None) -> NVFResult:
    """NVF of every neuron (or a stratified sample) by the paper's Algorithm 1 over the int8 inputs ``x``.

    ``client``, ``parts`` and ``device`` as for :func:`resilq.nvf.exact.exact_nvf` (a Dask cluster, a resumable store).
    """
    x = check_analysable(model, x)
    sample = check_fraction(sample)
    neurons = select_neurons(model, sample, seed)
    units = plan(model, x.shape[0], neurons, chunk_inputs(model), CASES_PER_UNIT, cases_per_neuron_input=1)
    store = open_partials(parts, model, x, "deltarange", units, sample=sample, seed=seed if sample else None)
    sums = run_units(model, x, units, deltarange_unit, jobs=jobs, rows=2, client=client, partials=store, device=device,
                     description=f"δ-range NVF of {sum(v.size for v in neurons.values()):,} neurons")
    values, active = {}, 0.0
    for layer in model.neuron_layers:
        v = np.full(model.out_size(layer), np.nan)
        v[neurons[layer]] = sums[layer][0, neurons[layer]] / x.shape[0]
        values[layer] = v
        active += sums[layer][1].sum()
    n_pairs = sum(v.size for v in neurons.values()) * x.shape[0]
    meta = {"model": model.name, "layers": layers_metadata(model), "sample": sample,
            "seed": seed if sample else None, "bit_mapping": "log2",
            "gradient_nonzero": active / max(n_pairs, 1), **(metadata or {})}
    return NVFResult(model.network_hash, values, "deltarange", int(x.shape[0]), meta)
