"""The value-level core: exact top-1 of inputs in which ONE neuron's int8 output holds another value.

A case is ``(input x, layer, neuron n, value v)``. Nothing before the layer changes, so the propagation starts
from the golden tensors and recomputes only what ``v`` can reach, retiring a case the moment it provably
changes nothing:

1. ``v`` equal to the golden value: nothing to do.
2. Tiling max-pools (and flattens) right after the layer are applied to all cases at once with one
   comparison against the max of the window's other elements: a change the pool masks ends here; the
   others become a change of ONE pooled value. Cases that now coincide (same input, position and value,
   e.g. two bits of neighbouring neurons giving the same pooled maximum) are evaluated once.
3. Cases are grouped by changed position. Per input and sign of the change, one interval bound covers all
   of that group's values (:meth:`Propagator.safe`): when it proves that none can change the top-1, they
   are retired together. The bound is sound (a proof); "not proven" only sends the cases to step 4.
4. The rest is pushed layer by layer through its receptive cone (:mod:`.steps`): a conv layer recomputes
   only the cone's accumulators (``Δacc = Δin @ M``), fused with the max-pool after it; a dense layer adds
   one column per changed input. After each step the unchanged cases are retired and unchanged columns
   dropped. The classifier's logits are ``golden + Δ @ W`` and the top-1 is ``np.argmax`` of the exact
   logits (ties to the lowest index), as in the executor.

Every number is an exact integer in a float type chosen per layer to hold it, so the result is bit-identical
to :class:`resilq.ir.Executor` (the tests compare them fault by fault).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..ir.layers import Conv2d, Flatten, Linear
from ..ir.model import Model
from .golden import Golden, is_tiling_pool
from .outmap import OutputMap
from .steps import build_steps, chain_after

#: Cases evaluated per block inside a group: keeps the working arrays in cache.
BLOCK = 4096


@dataclass
class Stats:
    """Where cases were decided: counts per stage (for benchmarks and tuning)."""

    counts: Counter = field(default_factory=Counter)

    def add(self, key: str, n: int) -> None:
        self.counts[key] += int(n)


class Propagator:
    """Exact, incremental forward propagation of single-neuron value changes through ``model``.

    ``use_bounds`` turns the interval pre-filter (step 3) on; the results are identical either way. It is off
    by default: on LeNet-5 a bound costs about as much as the ~7 exact evaluations it can retire (measured in
    ``benchmarks/nvf.py``); it pays where single cases are expensive or where whole value ranges are asked
    about (the δ-range search).
    """

    def __init__(self, model: Model, use_bounds: bool = False):
        self.model = model
        self.n_layers = len(model.layers)
        self.maps = {i: OutputMap.of(model, i) for i, layer in enumerate(model.layers)
                     if isinstance(layer, (Conv2d, Linear))}
        self.steps = build_steps(model, self.maps)
        self._chains: dict[int, list] = {}
        self.use_bounds = use_bounds
        self.stats = Stats()

    def golden(self, x: np.ndarray, executor=None) -> Golden:
        return Golden(self.model, x, self.maps, executor)

    def chain(self, layer: int) -> list:
        if layer not in self._chains:
            self._chains[layer] = chain_after(self.model, self.steps, layer)
        return self._chains[layer]

    # ------------------------------------------------------------------------------------------ public
    def top1(self, golden: Golden, layer: int, neuron: np.ndarray, xi: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Top-1 of input ``xi[k]`` when output ``neuron[k]`` of ``layer`` holds ``value[k]`` (vectorised).

        ``layer`` is a layer whose output is int8 (a neuron layer, or a pool/flatten after one); ``xi``
        indexes the inputs of ``golden``.
        """
        neuron = np.asarray(neuron, dtype=np.int64).ravel()
        xi = np.asarray(xi, dtype=np.int64).ravel()
        value = np.asarray(value).astype(np.float32).ravel()
        result = golden.top1[xi].copy()
        self.stats.add("cases", xi.size)
        live = np.flatnonzero(value != golden.out[layer][xi, neuron])
        self.stats.add("same value", xi.size - live.size)
        layer, pos, xl, val, kept = self._collapse(golden, layer, neuron[live], xi[live], value[live])
        live = live[kept]
        if not live.size:
            return result
        # One evaluation per distinct (position, input, value); sorted by position, then input, then value.
        key = (pos * golden.n + xl) * 256 + (val.astype(np.int64) + 128)
        ukey, inverse = np.unique(key, return_inverse=True)
        self.stats.add("distinct", ukey.size)
        upos, rest = np.divmod(ukey, golden.n * 256)
        ux, uval = np.divmod(rest, 256)
        uval = (uval - 128).astype(np.float32)
        out = np.empty(ukey.size, dtype=np.int64)
        edges = np.flatnonzero(np.r_[True, upos[1:] != upos[:-1], True])
        for a, b in zip(edges[:-1], edges[1:]):
            out[a:b] = self._group(golden, layer, int(upos[a]), ux[a:b], uval[a:b])
        result[live] = out[inverse]
        return result

    def exact(self, golden: Golden, layer: int, positions: np.ndarray, xi: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Top-1 of each case when outputs ``positions`` (sorted) of ``layer`` hold ``values`` (K x |positions|)."""
        result = golden.top1[xi].copy()
        idx = np.arange(xi.size)
        *inner, last = self.chain(layer)
        for step in inner:
            positions, values, rows = step.exact(golden, positions, xi, values)
            self.stats.add(f"unchanged after {step.layer.name}", idx.size - rows.size)
            idx, xi = idx[rows], xi[rows]
            if not idx.size:
                return result
        result[idx] = last.exact(golden, positions, xi, values)
        return result

    def safe(self, golden: Golden, layer: int, positions: np.ndarray, xi: np.ndarray, lo: np.ndarray,
             hi: np.ndarray) -> np.ndarray:
        """(K,) bool: True where ANY values within ``[lo, hi]`` (K x |positions|) at ``positions`` of ``layer``
        provably leave the top-1 of input ``xi`` unchanged (a sound interval bound; False = not proven)."""
        result = np.ones(xi.size, dtype=bool)
        idx = np.arange(xi.size)
        lo, hi = np.asarray(lo, dtype=np.float32), np.asarray(hi, dtype=np.float32)
        *inner, last = self.chain(layer)
        for step in inner:
            positions, lo, hi, rows = step.box(golden, positions, xi, lo, hi)
            idx, xi = idx[rows], xi[rows]
            if not idx.size:
                return result
        result[idx] = last.safe(golden, positions, xi, lo, hi)
        return result

    # ------------------------------------------------------------------------------------------ stages
    def _collapse(self, golden: Golden, layer: int, pos, xi, val):
        """Apply the tiling max-pools and flattens after ``layer`` to all cases; drop what a pool masks."""
        kept = np.arange(xi.size)
        while layer + 1 < self.n_layers - 1:
            nxt = self.model.layers[layer + 1]
            if isinstance(nxt, Flatten):
                layer += 1
                continue
            if not is_tiling_pool(nxt, self.model.in_shape(layer + 1)):
                break
            c, h, w = self.model.in_shape(layer + 1)
            _, ho, wo = self.model.out_shape(layer + 1)
            k = nxt.kernel
            others = golden.others_max(layer + 1)[xi, pos]
            ch, y, x = np.unravel_index(pos, (c, h, w))
            ppos = (ch * ho + np.minimum(y // k, ho - 1)) * wo + np.minimum(x // k, wo - 1)
            pooled = np.maximum(val, others)
            keep = np.isfinite(others) & (pooled != golden.out[layer + 1][xi, ppos])
            self.stats.add(f"masked by {nxt.name}", xi.size - np.count_nonzero(keep))
            layer += 1
            pos, xi, val, kept = ppos[keep], xi[keep], pooled[keep], kept[keep]
        return layer, pos, xi, val, kept

    def _group(self, golden: Golden, layer: int, pos: int, xi: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Top-1 of cases that change the single position ``pos`` (sorted by input, then value)."""
        positions = np.array([pos], dtype=np.int64)
        out = golden.top1[xi].copy()
        todo = np.arange(xi.size)
        if self.use_bounds and xi.size >= 4:
            # Segments: runs of one input and one sign of change; one interval bound covers each.
            up = val > golden.out[layer][xi, pos]
            start = np.flatnonzero(np.r_[True, (xi[1:] != xi[:-1]) | (up[1:] != up[:-1])])
            if start.size < xi.size:
                lo, hi = np.minimum.reduceat(val, start), np.maximum.reduceat(val, start)
                ok = np.empty(start.size, dtype=bool)
                for a in range(0, start.size, BLOCK):
                    s = slice(a, a + BLOCK)
                    ok[s] = self.safe(golden, layer, positions, xi[start[s]], lo[s, None], hi[s, None])
                proven = np.repeat(ok, np.diff(np.r_[start, xi.size]))
                self.stats.add("proven by bounds", np.count_nonzero(proven))
                todo = np.flatnonzero(~proven)
        for a in range(0, todo.size, BLOCK):
            sel = todo[a:a + BLOCK]
            out[sel] = self.exact(golden, layer, positions, xi[sel], val[sel, None])
        return out
