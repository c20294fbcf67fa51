"""A change carried input by input: (input, position, value) triples, for flips that differ per input.

Per-inference bit flips hit each input at a few positions of its own; over a chunk their union covers much of
a layer, so a change map with shared columns (:class:`resilq.faultsim.multi._Change`) holds nearly whole rows.
:class:`Pairs` keeps only what each input changed. A compute layer whose input is golden is evaluated at the
(input, neuron) pairs a mask touches (:func:`masked_pairs`), a max-pool at the (input, window) pairs holding a
change (:func:`pool_pairs`); the next compute layer sums the change product by product (:mod:`.fanout`).

The values come from the executor's own step, :meth:`Executor._output` on columns: pairs are evaluated in
rounds, each round at most one pair per neuron (so its neurons are distinct columns of ONE row whose
accumulators and masks are those of each pair's input) -- the same arithmetic, value for value.
"""

from __future__ import annotations

import numpy as np

from ..ir.layers import MaxPool2d
from .geometry import pool_cone

#: Rounds (the most pairs at one neuron) above which :func:`masked_pairs` declines (the caller takes whole
#: columns): each round is one call of the executor's step.
MAX_ROUNDS = 16


class Pairs:
    """The inputs ``rows`` (sorted) whose values at a layer's output differ from golden, and for each change
    ``at`` (its input's index in ``rows``), ``positions`` (flat) and ``values``; sorted by input, then position."""

    def __init__(self, rows: np.ndarray, at: np.ndarray, positions: np.ndarray, values: np.ndarray):
        self.rows, self.at, self.positions, self.values = rows, at, positions, values

    @classmethod
    def of(cls, inputs: np.ndarray, positions: np.ndarray, values: np.ndarray, golden_values: np.ndarray):
        """The pairs whose ``values`` differ from ``golden_values`` (``inputs``: global indices); None if none."""
        keep = values != golden_values
        if not keep.any():
            return None
        inputs, positions, values = inputs[keep], positions[keep], values[keep]
        order = np.lexsort((positions, inputs))
        inputs, positions, values = inputs[order], positions[order], values[order]
        rows, at = np.unique(inputs, return_inverse=True)
        return cls(rows, at.ravel(), positions, values)

    def block(self, golden, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, values)``: the same change with shared columns (rows x the union of the positions)."""
        cols = np.unique(self.positions)
        values = golden.out[layer][np.ix_(self.rows, cols)].astype(np.int8)
        values[self.at, np.searchsorted(cols, self.positions)] = self.values
        return cols, values

    def delta(self, golden, layer: int) -> np.ndarray:
        """Each change's value minus its golden value (float64)."""
        return self.values.astype(np.float64) - golden.out[layer][self.rows[self.at], self.positions]


def _rounds(neurons: np.ndarray) -> np.ndarray:
    """For each pair, its rank among the pairs at the same neuron (0, 1, ...)."""
    order = np.argsort(neurons, kind="stable")
    sorted_ = neurons[order]
    first = np.flatnonzero(np.concatenate(([True], sorted_[1:] != sorted_[:-1])))
    rank = np.arange(neurons.size) - np.repeat(first, np.diff(np.append(first, neurons.size)))
    out = np.empty(neurons.size, dtype=np.int64)
    out[order] = rank
    return out


def _shadow_slots(prot, n_out: int, neurons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the protected ones among ``neurons``: (which of them, (k, copies-1) their shadow slots)."""
    if prot is None or not prot.n_protected:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.int64)
    rank = np.full(n_out, -1, dtype=np.int64)
    rank[prot.neurons] = np.arange(prot.n_protected)
    which = np.flatnonzero(rank[neurons] >= 0)
    slots = n_out + rank[neurons[which]][:, None] * (prot.copies - 1) + np.arange(prot.copies - 1)[None, :]
    return which, slots


def finish_pairs(ex, index: int, layer, n_out: int, at: np.ndarray, neurons: np.ndarray, acc: np.ndarray,
                 masks: np.ndarray) -> np.ndarray:
    """What the next layer reads at each (input ``at[k]``, neuron ``neurons[k]``) of compute layer ``index``, with
    accumulators ``acc[k]`` (int64) and the inputs' per-inference ``masks`` (rows x slots, uint8): the executor's
    step (:meth:`Executor._output`), round by round (``neurons`` distinct within each input)."""
    rank = _rounds(neurons)
    out = np.empty(neurons.size, dtype=np.int8)
    for r in range(int(rank.max(initial=-1)) + 1):
        sel = np.flatnonzero(rank == r)
        sel = sel[np.argsort(neurons[sel])]
        cols = neurons[sel]
        row = np.zeros((1, masks.shape[1]), dtype=masks.dtype)  # each column's masks from its own input
        row[0, cols] = masks[at[sel], cols]
        which, slots = _shadow_slots(layer.protection, n_out, cols)
        if which.size:
            row[0, slots] = masks[at[sel][which][:, None], slots]
        out[sel] = ex._output(index, layer, acc[sel][None, :], (), row, None, cols)[0]
    return out


def masked_pairs(ex, golden, base, index: int, every: np.ndarray, masks: np.ndarray) -> Pairs | None | bool:
    """Compute layer ``index`` of inputs ``every`` whose input is golden and whose only faults are their masks:
    the pairs that differ from golden, None if none, or False where more than :data:`MAX_ROUNDS` masks meet at one
    neuron (the caller then evaluates whole columns)."""
    layer, n_out = base.layers[index], base.out_size(index)
    r, slot = np.divmod(np.flatnonzero(masks != 0), masks.shape[1])  # (a bool array's nonzero is the fast one)
    neuron = slot
    prot = layer.protection
    if prot is not None and prot.n_protected:
        shadow = slot >= n_out
        neuron = slot.copy()
        neuron[shadow] = prot.neurons.astype(np.int64)[(slot[shadow] - n_out) // (prot.copies - 1)]
    key = np.unique(r.astype(np.int64) * n_out + neuron)
    at, neuron = np.divmod(key, n_out)
    if not key.size:
        return None
    if int(_rounds(neuron).max()) >= MAX_ROUNDS:
        return False
    acc = golden.acc[index][every[at], neuron].astype(np.int64)
    values = finish_pairs(ex, index, layer, n_out, at, neuron, acc, masks)
    return Pairs.of(every[at], neuron, values, golden.out[index][every[at], neuron])


def pool_pairs(golden, base, index: int, pairs: Pairs) -> Pairs | None:
    """Max-pool ``index``'s changes: the (input, window) pairs holding a change, pooled anew."""
    layer: MaxPool2d = base.layers[index]
    in_shape, out_shape = base.in_shape(index), base.out_shape(index)
    n_in = int(np.prod(in_shape))
    pooled, windows = pool_cone(layer, in_shape, out_shape, np.unique(pairs.positions))
    if not pooled.size:
        return None
    key = pairs.at * n_in + pairs.positions  # sorted: by input, then position
    by_pos = np.argsort(pairs.positions, kind="stable")
    pos_sorted = pairs.positions[by_pos]
    elems = windows.ravel()
    lo, hi = np.searchsorted(pos_sorted, elems, "left"), np.searchsorted(pos_sorted, elems, "right")
    count = hi - lo
    owner = np.repeat(np.arange(elems.size) // windows.shape[1], count)  # window of each (change, window)
    k = by_pos[np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)]
    cand = np.unique(pairs.at[k] * pooled.size + owner)
    at, win = np.divmod(cand, pooled.size)
    elem = windows[win]  # (C, kk)
    vals = golden.out[index - 1][pairs.rows[at][:, None], elem].astype(np.int8)
    look = at[:, None] * n_in + elem
    hit = np.minimum(np.searchsorted(key, look), key.size - 1)
    found = key[hit] == look
    vals[found] = pairs.values[hit[found]]
    new = vals.max(axis=1)
    inputs = pairs.rows[at]
    return Pairs.of(inputs, pooled[win], new, golden.out[index][inputs, pooled[win]])
