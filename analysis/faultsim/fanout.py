"""Fan-out tables: which neurons of a compute layer each input position feeds, and through which weight.

A compute layer is linear in its input, so the change of its accumulators is ``Δacc = Δin @ U``, ``U`` the
layer's (inputs x outputs) transfer matrix. Where each input changed at a few positions of its own (per-inference
bit flips: a few per input, different for each), ``Δin`` is very sparse and the union of the changed positions
is wide: a dense product (or a convolution) would multiply mostly zeros. :meth:`FanoutTable.scatter` instead
expands each changed (input, position) into the neurons its position feeds (``U``'s non-zeros, stored once per
layer, row by row) and sums them per (input, neuron). Every term is an integer (|Δin| <= 255, |w| <= 128) and so
is every sum, far below 2**53 for any fan-in, so float64 sums them exactly in any order; the table's weights
(and :meth:`FanoutTable.rows`) are in the layer's accumulator dtype (:func:`.outmap.accumulator_dtype`: float32
only where every accumulator and every change of one is below 2**24), in which a product with a change is exact.
"""

from __future__ import annotations

import numpy as np

from ..ir.layers import Conv2d, Linear
from .geometry import compute_cone
from .outmap import accumulator_dtype

#: A layer whose table would hold more entries than this gets none (the caller takes its other paths).
MAX_ENTRIES = 1 << 24
#: Input positions per cone while a table is built (bounds the dense cone matrix of one step).
_BUILD_BLOCK = 256


class FanoutTable:
    """``U``'s non-zeros of compute layer ``index`` of ``model`` by input position (CSR: ``indptr``, ``neuron``,
    ``weight``)."""

    def __init__(self, model, index: int):
        layer = model.layers[index]
        in_shape, out_shape = model.in_shape(index), model.out_shape(index)
        n_in = int(np.prod(in_shape))
        self.n_out = model.out_size(index)
        self.dtype = accumulator_dtype(layer)
        counts, neurons, weights = [], [], []
        for start in range(0, n_in, _BUILD_BLOCK):
            positions = np.arange(start, min(start + _BUILD_BLOCK, n_in), dtype=np.int64)
            cols, m = compute_cone(layer, in_shape, out_shape, positions, np.float64)
            row, col = np.nonzero(m)
            counts.append(np.bincount(row, minlength=positions.size))
            neurons.append(cols[col])
            weights.append(m[row, col])
        self.indptr = np.concatenate(([0], np.cumsum(np.concatenate(counts)))).astype(np.int64)
        self.neuron = np.concatenate(neurons).astype(np.int64)
        self.weight = np.concatenate(weights).astype(self.dtype)

    def terms(self, positions: np.ndarray, changed: np.ndarray | None = None) -> int:
        """How many products :meth:`scatter` forms for one change at each of ``positions``, or, given ``changed``
        (rows x positions, bool), for a change wherever it is True."""
        fanout = self.indptr[positions + 1] - self.indptr[positions]
        return int(fanout.sum() if changed is None else (changed @ fanout).sum())

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """``U[positions]``: the (|positions|, n_out) rows of the transfer matrix (a dense cone matrix)."""
        owner, k = self._expand(positions)
        out = np.zeros((positions.size, self.n_out), dtype=self.dtype)
        out[owner, self.neuron[k]] = self.weight[k]
        return out

    def _expand(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every (change, neuron its position feeds): the change's index and the table entry."""
        start = self.indptr[positions]
        count = self.indptr[positions + 1] - start
        owner = np.repeat(np.arange(positions.size), count)
        first = np.cumsum(count) - count
        return owner, np.arange(owner.size) - np.repeat(first - start, count)

    def scatter(self, rows: np.ndarray, positions: np.ndarray, delta: np.ndarray, n_rows: int) -> np.ndarray:
        """``Δacc`` (n_rows, n_out) float64 of the input changes ``delta[k]`` of row ``rows[k]`` at input position
        ``positions[k]`` (exact integers)."""
        owner, k = self._expand(positions)
        key = rows[owner] * self.n_out + self.neuron[k]
        out = np.bincount(key, weights=delta[owner] * self.weight[k].astype(np.float64), minlength=n_rows * self.n_out)
        return out.reshape(n_rows, self.n_out)


class FanoutTables:
    """One :class:`FanoutTable` per compute layer of ``model``, built on first use (None above :data:`MAX_ENTRIES`)."""

    def __init__(self, model):
        self.model = model
        self._tables: dict[int, FanoutTable | None] = {}

    def __getitem__(self, index: int) -> FanoutTable | None:
        if index not in self._tables:
            layer = self.model.layers[index]
            if not isinstance(layer, (Conv2d, Linear)):
                raise TypeError(f"layer {index} ({type(layer).__name__}) has no weights to fan out through")
            n_in = int(np.prod(self.model.in_shape(index)))
            reach = layer.out_channels * (layer.kernel ** 2 if isinstance(layer, Conv2d) else 1)
            self._tables[index] = FanoutTable(self.model, index) if n_in * reach <= MAX_ENTRIES else None
        return self._tables[index]
