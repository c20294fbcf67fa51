"""The value-level core: exact top-1 of inputs in which ONE neuron's int8 output holds another value.

A case is ``(input x, layer, neuron n, value v)``. Nothing before the layer changes, so the propagation starts
from the golden tensors and recomputes only what ``v`` can reach, retiring a case the moment it provably
changes nothing:

1. ``v`` equal to the golden value: nothing to do.
2. Tiling max-pools (and flattens) right after the layer are applied to all cases at once with one
   comparison against the max of the window's other elements: a change the pool masks ends here; the
   others become a change of ONE pooled value. Cases that now coincide (same input, position and value,
   e.g. two bits of neighbouring neurons giving the same pooled maximum) are evaluated once.
3. Cases are grouped by changed position (or, when the next step is dense, processed all at once).
   Optionally (``use_bounds``), per input and sign of the change one interval bound covers all of that
   group's values (:meth:`Propagator.safe`): when it proves that none can change the top-1 they are
   retired together. The bound is sound (a proof); "not proven" only sends the cases to step 4.
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
from .backend import NUMPY
from .golden import Golden, is_tiling_pool
from .outmap import OutputMap
from .steps import build_steps, chain_after

#: Cases evaluated per block inside a group: keeps the working arrays in cache (1024 measured ~6 % faster
#: than 4096 for LeNet-5 campaigns, the same for its exact NVF).
BLOCK = 1024


@dataclass
class Stats:
    """Where cases were decided: counts per stage (for benchmarks and tuning)."""

    counts: Counter = field(default_factory=Counter)

    def add(self, key: str, n: int) -> None:
        self.counts[key] += int(n)


def _edges(sorted_keys: np.ndarray) -> np.ndarray:
    """Boundaries of the runs of equal keys, first 0 and last ``len``."""
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return np.concatenate(([0], change, [sorted_keys.size]))


class Propagator:
    """Exact, incremental forward propagation of single-neuron value changes through ``model``.

    ``use_bounds`` turns the interval pre-filter (step 3) on; the results are identical either way. It is off
    by default: on LeNet-5 a bound costs about as much as the ~7 exact evaluations it can retire (measured in
    ``benchmarks/nvf.py``); it pays where single cases are expensive or where whole value ranges are asked
    about (the δ-range search). ``backend`` (:mod:`.backend`) does the products of a change: numpy, or torch
    tensors on a device (:func:`~resilq.faultsim.backend.array_backend`); the results are identical.
    """

    def __init__(self, model: Model, use_bounds: bool = False, backend=NUMPY):
        self.model = model
        self.backend = backend
        self.n_layers = len(model.layers)
        self.maps = {i: OutputMap.of(model, i) for i, layer in enumerate(model.layers)
                     if isinstance(layer, (Conv2d, Linear))}
        self.steps = build_steps(model, self.maps, backend)
        self._chains: dict[int, list] = {}
        self.use_bounds = use_bounds
        self.bound_radius = 255  # |Δ| up to which changes are bounded (all: 255)
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
        if self.chain(layer)[0].takes_rows:  # a dense step next: all positions in one pass
            for a in range(0, ukey.size, BLOCK):
                s = slice(a, a + BLOCK)
                out[s] = self._exact_rows(golden, layer, upos[s], ux[s], uval[s])
        else:
            edges = _edges(upos)
            for a, b in zip(edges[:-1], edges[1:]):
                out[a:b] = self._group(golden, layer, int(upos[a]), ux[a:b], uval[a:b])
        result[live] = out[inverse]
        return result

    def exact(self, golden: Golden, layer: int, positions: np.ndarray, xi: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Top-1 of each case when outputs ``positions`` (sorted) of ``layer`` hold ``values`` (K x |positions|)."""
        return self._finish(golden, self.chain(layer), positions, xi, values, golden.top1[xi].copy(), np.arange(xi.size))

    def _exact_rows(self, golden: Golden, layer: int, pos: np.ndarray, xi: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Top-1 when output ``pos[k]`` of ``layer`` holds ``val[k]``, the next step being dense."""
        first, *rest = self.chain(layer)
        if not rest:
            return first.exact_rows(golden, pos, xi, val)
        result = golden.top1[xi].copy()
        positions, values, rows = first.exact_rows(golden, pos, xi, val)
        self.stats.add(f"unchanged after {first.layer.name}", xi.size - rows.size)
        if not rows.size:
            return result
        return self._finish(golden, rest, positions, xi[rows], values, result, rows)

    def _finish(self, golden: Golden, steps: list, positions, xi, values, result, idx) -> np.ndarray:
        *inner, last = steps
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
        lo, hi = np.asarray(lo, dtype=np.float32), np.asarray(hi, dtype=np.float32)
        return self._safe_chain(golden, self.chain(layer), positions, xi, lo, hi, np.ones(xi.size, dtype=bool),
                                np.arange(xi.size))

    def _safe_rows(self, golden: Golden, layer: int, pos, xi, lo, hi) -> np.ndarray:
        first, *rest = self.chain(layer)
        if not rest:
            return first.safe_rows(golden, pos, xi, lo, hi)
        result = np.ones(xi.size, dtype=bool)
        positions, blo, bhi, rows = first.box_rows(golden, pos, xi, lo, hi)
        if not rows.size:
            return result
        return self._safe_chain(golden, rest, positions, xi[rows], blo, bhi, result, rows)

    def _safe_chain(self, golden: Golden, steps: list, positions, xi, lo, hi, result, idx) -> np.ndarray:
        *inner, last = steps
        for step in inner:
            positions, lo, hi, rows = step.box(golden, positions, xi, lo, hi)
            idx, xi = idx[rows], xi[rows]
            if not idx.size:
                return result
        result[idx] = last.safe(golden, positions, xi, lo, hi)
        return result

    def safe_values(self, golden: Golden, layer: int, neuron: np.ndarray, xi: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray) -> np.ndarray:
        """(K,) bool: True where EVERY value in ``[lo[k], hi[k]]`` at neuron ``neuron[k]`` of ``layer`` provably
        leaves input ``xi[k]``'s top-1 unchanged (sound; False means "not proven")."""
        neuron = np.asarray(neuron, dtype=np.int64).ravel()
        xi = np.asarray(xi, dtype=np.int64).ravel()
        lo = np.asarray(lo, dtype=np.float32).ravel()
        hi = np.asarray(hi, dtype=np.float32).ravel()
        # A box through a tiling pool is [max(lo, others), max(hi, others)] at the pooled position.
        g = golden.out[layer][xi, neuron]
        result = (lo == g) & (hi == g)
        live = np.flatnonzero(~result)
        pos, xl, bl, bh = neuron[live], xi[live], lo[live], hi[live]
        pools, layer = self._pools_after(layer)
        for pool in pools:
            ppos = self._pooled(pool, pos)
            others = golden.others_max(pool)[xl, pos]
            bl, bh = np.maximum(bl, others), np.maximum(bh, others)
            gp = golden.out[pool][xl, ppos]
            still = ~((others == np.inf) | ((bl == gp) & (bh == gp)))  # +inf: a border no window covers
            result[live[~still]] = True
            live, pos, xl, bl, bh = live[still], ppos[still], xl[still], bl[still], bh[still]
        if self.chain(layer)[0].takes_rows:  # a dense step next: all positions in one pass
            for a in range(0, live.size, BLOCK):
                s = slice(a, a + BLOCK)
                result[live[s]] = self._safe_rows(golden, layer, pos[s], xl[s], bl[s], bh[s])
            return result
        order = np.lexsort((xl, pos))
        live, pos, xl, bl, bh = live[order], pos[order], xl[order], bl[order], bh[order]
        edges = _edges(pos)
        for a, b in zip(edges[:-1], edges[1:]):
            for c in range(a, b, BLOCK):
                s = slice(c, min(b, c + BLOCK))
                result[live[s]] = self.safe(golden, layer, pos[a:a + 1], xl[s], bl[s, None], bh[s, None])
        return result

    def _pools_after(self, layer: int) -> tuple[list[int], int]:
        """The tiling max-pools that directly follow ``layer`` (flattens skipped), and the layer after them
        where propagation continues: a fault's value goes through these by a max with the window's others."""
        pools = []
        while layer + 1 < self.n_layers - 1:
            nxt = self.model.layers[layer + 1]
            if not isinstance(nxt, Flatten):
                if not is_tiling_pool(nxt):
                    break
                pools.append(layer + 1)
            layer += 1
        return pools, layer

    def _pooled(self, pool_index: int, pos: np.ndarray) -> np.ndarray:
        """Position in a tiling pool's output of input positions ``pos`` (clamped; borders are masked)."""
        c, h, w = self.model.in_shape(pool_index)
        _, ho, wo = self.model.out_shape(pool_index)
        k = self.model.layers[pool_index].kernel
        ch, y, x = np.unravel_index(pos, (c, h, w))
        return (ch * ho + np.minimum(y // k, ho - 1)) * wo + np.minimum(x // k, wo - 1)

    # ------------------------------------------------------------------------------------------ stages
    def _collapse(self, golden: Golden, layer: int, pos, xi, val):
        """Apply the tiling max-pools and flattens after ``layer`` to all cases; drop what a pool masks."""
        kept = np.arange(xi.size)
        pools, layer = self._pools_after(layer)
        for pool in pools:
            others = golden.others_max(pool)[xi, pos]
            ppos = self._pooled(pool, pos)
            pooled = np.maximum(val, others)
            keep = (others != np.inf) & (pooled != golden.out[pool][xi, ppos])  # +inf: uncovered border
            self.stats.add(f"masked by {self.model.layers[pool].name}", xi.size - np.count_nonzero(keep))
            pos, xi, val, kept = ppos[keep], xi[keep], pooled[keep], kept[keep]
        return layer, pos, xi, val, kept

    def _group(self, golden: Golden, layer: int, pos: int, xi: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Top-1 of cases that change the single position ``pos`` (sorted by input, then value)."""
        positions = np.array([pos], dtype=np.int64)
        out = golden.top1[xi].copy()
        todo = np.arange(xi.size)
        if self.use_bounds and xi.size >= 4:
            # Segments: runs of one input and one sign of a SMALL change (|Δ| <= bound_radius; larger ones are
            # rarely provable and go straight to exact evaluation); one interval bound covers each segment.
            delta = val - golden.out[layer][xi, pos]
            cls = np.where(np.abs(delta) <= self.bound_radius, np.sign(delta), 2)
            start = np.flatnonzero(np.concatenate(([True], (xi[1:] != xi[:-1]) | (cls[1:] != cls[:-1]))))
            length = np.diff(np.append(start, xi.size))
            lo, hi = np.minimum.reduceat(val, start), np.maximum.reduceat(val, start)
            seg = np.flatnonzero((cls[start] != 2) & (length > 1))
            ok = np.zeros(start.size, dtype=bool)
            for a in range(0, seg.size, BLOCK):
                s = seg[a:a + BLOCK]
                ok[s] = self.safe(golden, layer, positions, xi[start[s]], lo[s, None], hi[s, None])
            proven = np.repeat(ok, length)
            self.stats.add("proven by bounds", np.count_nonzero(proven))
            todo = np.flatnonzero(~proven)
        for a in range(0, todo.size, BLOCK):
            sel = todo[a:a + BLOCK]
            out[sel] = self.exact(golden, layer, positions, xi[sel], val[sel, None])
        return out
