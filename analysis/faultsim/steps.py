"""One propagation step per layer (or per conv + the tiling max-pool after it), exact and interval.

A step maps changed values at some positions of its input to changed values at its output, for a batch of
cases (rows), and retires the rows whose output came out unchanged. Each step has two forms:

* ``exact(golden, S, xi, V)``: the new values ``V`` (K x |S|) at positions ``S`` -> new output values;
* ``box(golden, S, xi, lo, hi)``: every value within ``[lo, hi]`` -> bounds on every output value.

A compute layer followed by a tiling max-pool is ONE step: its cone is padded to whole pool windows (the
padding elements have zero weight, so they reproduce their golden value), and pooling becomes a reshape and
a max, with no gather. Every quantity is an exact integer in a float type chosen per layer to hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.layers import Conv2d, Linear, MaxPool2d
from ..ir.model import Model
from .backend import NUMPY
from .geometry import compute_cone, pool_cone
from .golden import Golden, is_tiling_pool
from .outmap import ColumnMap, OutputMap
from .patch import conv_delta, conv_patch, pool_box

#: A conv step with more changed input positions than this convolves the change over its bounding box
#: (or, for a small map, takes rows of its unrolled matrix).
WIDE = 16
#: ... or, for a conv layer of fan-in C*k*k, more than this fraction of C*k*k (see ``ComputeStep._wide_from``).
WIDE_FRACTION = 0.25
#: A conv layer whose unrolled (input positions x outputs) weight matrix fits in this many bytes keeps it:
#: deep layers on small maps (AlexNet's conv4/conv5 on 3x3) then propagate a wide change as ONE product
#: ``Δin[:, S] @ M[S]``, |S| x outputs per case, instead of a full im2col convolution of the patch.
UNROLL_BYTES = 48 << 20


def runs(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of equal values in ``xi`` (cases are kept sorted by input)."""
    if not xi.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.concatenate(([True], xi[1:] != xi[:-1])))
    return first, np.diff(np.append(first, xi.size))


def _take(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``arr[rows][:, cols]``: few columns (at most a quarter): one ``take`` of flat indices; more: whole rows,
    then the columns (two ``take``s, about twice as fast as a 2-D fancy index); all columns: the rows only."""
    width = arr.shape[1]
    n = rows.size
    if n == arr.shape[0] and n and rows[0] == 0 and rows[-1] == n - 1 and (n == 1 or np.all(rows[1:] > rows[:-1])):
        return arr.take(cols, axis=1)  # every row in order (a campaign's fault on all inputs): columns only
    if cols.size * 4 <= width:
        return arr.reshape(-1).take(rows.astype(np.int64, copy=False)[:, None] * width + cols[None, :])
    block = arr.take(rows, axis=0)
    if cols.size == arr.shape[1] and cols.size and cols[0] == 0 and cols[-1] == cols.size - 1 \
            and np.array_equal(cols, np.arange(cols.size)):
        return block
    return block.take(cols, axis=1)


def gather(arr: np.ndarray, xi: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``arr[xi][:, cols]``; with repeated inputs, each distinct row is gathered once and then repeated."""
    first, counts = runs(xi)
    if first.size * 2 <= xi.size:
        return np.repeat(_take(arr, xi[first], cols), counts, axis=0)
    return _take(arr, xi, cols)


def changed(new: np.ndarray, old: np.ndarray, cols: np.ndarray):
    """Rows with any change, and for them the columns with any change: ``(cols', new', rows)``."""
    diff = new != old
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == new.shape[0]:
        keep = diff.any(axis=0)
        return (cols, new, rows) if keep.all() else (cols[keep], new[:, keep], rows)
    keep = diff[rows].any(axis=0)
    return cols[keep], new[rows][:, keep], rows


def moved(lo: np.ndarray, hi: np.ndarray, old: np.ndarray, cols: np.ndarray):
    """Rows whose box may differ from golden, and the columns where it may: ``(cols', lo', hi', rows)``."""
    diff = (lo != old) | (hi != old)
    rows = np.flatnonzero(diff.any(axis=1))
    keep = diff[rows].any(axis=0)
    return cols[keep], lo[rows][:, keep], hi[rows][:, keep], rows


@dataclass(frozen=True, eq=False)
class Cone:
    """Outputs ``cols`` (of the step's output layer) reached from the input positions, and how.

    ``elems``: the compute layer's outputs to evaluate (when a pool is fused: ``kk`` blocks, block ``i`` holding
    the i-th element of every window); ``m``: |S| x |elems| weights; ``cmap``: their output map.
    """

    cols: np.ndarray
    elems: np.ndarray
    m: np.ndarray
    cmap: ColumnMap
    kk: int  # elements per pooled output (1: no pool fused)


class ComputeStep:
    """A Conv2d/Linear neuron layer, optionally fused with the tiling max-pool that follows it."""

    def __init__(self, model: Model, index: int, omap: OutputMap, pool: int | None, backend=NUMPY):
        self.model, self.index, self.map, self.pool = model, index, omap, pool
        self.backend = backend  # the products of a change (:mod:`.backend`)
        self.layer = model.layers[index]
        self.out_index = pool if pool is not None else index
        self._cache: dict[bytes, Cone] = {}
        if isinstance(self.layer, Linear):  # a dense cone is every output: one output map for all
            self._all = np.arange(self.layer.out_channels, dtype=np.int64)
            self._all_map = omap.columns(self._all)
            self._wt = np.ascontiguousarray(self.layer.weight.T, dtype=omap.dtype)  # (in, out), converted once
        else:  # the (C*k*k, O) matrix of the wide path, and its positive / negative parts for bounds
            w = self.layer.weight.reshape(self.layer.out_channels, -1).T.astype(omap.dtype)
            self._wmat, self._wpos, self._wneg = np.ascontiguousarray(w), np.maximum(w, 0), np.minimum(w, 0)
        self._unrolled: Cone | None = None
        if isinstance(self.layer, Conv2d):
            n_in, n_out = int(np.prod(model.in_shape(index))), model.out_size(index)
            if n_in * n_out * np.dtype(omap.dtype).itemsize <= UNROLL_BYTES:
                self._unrolled = self._build_cone(np.arange(n_in, dtype=np.int64))

    def cone(self, positions: np.ndarray) -> Cone:
        key = positions.tobytes()
        cone = self._cache.get(key)
        if cone is not None:
            return cone
        if isinstance(self.layer, Linear) and self.pool is None:
            return Cone(self._all, self._all, self._wt[positions], self._all_map, 1)
        if self._unrolled is not None and positions.size > WIDE:  # rows of the unrolled matrix
            u = self._unrolled
            return Cone(u.cols, u.elems, u.m[positions], u.cmap, u.kk)
        cone = self._build_cone(positions)
        if positions.size <= 4:  # single-origin cones recur across chunks; wide ones rarely do
            self._cache[key] = cone
        return cone

    def _build_cone(self, positions: np.ndarray) -> Cone:
        j = self.index
        cols, m = compute_cone(self.layer, self.model.in_shape(j), self.model.out_shape(j), positions, self.map.dtype)
        kk = 1
        if self.pool is not None:
            pool = self.model.layers[self.pool]
            pooled, windows = pool_cone(pool, self.model.in_shape(self.pool), self.model.out_shape(self.pool), cols)
            elems = windows.T.ravel()  # slot-major: the max runs over a middle axis, contiguous inner loop
            ext = np.zeros((positions.size, elems.size), dtype=m.dtype)
            order = np.argsort(elems)
            where = np.searchsorted(elems[order], cols)
            inside = where < elems.size
            inside[inside] = elems[order[where[inside]]] == cols[inside]  # cone outputs no window covers: dead
            ext[:, order[where[inside]]] = m[:, inside]
            cols, m, kk = pooled, ext, windows.shape[1]
        else:
            elems = cols
        return Cone(cols, elems, m, self.map.columns(elems), kk)

    @staticmethod
    def _pooled(cone: Cone, values: np.ndarray) -> np.ndarray:
        if cone.kk > 1:  # slot-major blocks: kk - 1 elementwise maxima (faster than a max over the middle axis)
            blocks = values.reshape(values.shape[0], cone.kk, -1)
            out = blocks[:, 0].copy()
            for i in range(1, cone.kk):
                np.maximum(out, blocks[:, i], out=out)
            return out
        return values

    # ------------------------------------------------------------------------------ wide changes (conv)
    def _is_wide(self, positions) -> bool:
        return isinstance(self.layer, Conv2d) and self._unrolled is None and positions.size > self._wide_from

    @property
    def _wide_from(self) -> int:
        """Changed positions above which the patch convolution beats the cone product.

        Over an output box of B positions the patch costs ``B x fan_in x O`` multiply-adds per case, the cone
        ``|S| x B x O`` (its matrix is |S| x the box's outputs): the cone wins while ``|S| < fan_in``. Building
        a cone costs a few cases' worth of index work, hence the margin; never below ``WIDE``.
        """
        return max(WIDE, int(self.layer.weight[0].size * WIDE_FRACTION))

    def _patch(self, positions):
        kernel = self.model.layers[self.pool].kernel if self.pool is not None else None
        pool_out = self.model.out_shape(self.pool) if self.pool is not None else None
        return conv_patch(self.layer, self.model.in_shape(self.index), self.model.out_shape(self.index), positions,
                          kernel, pool_out)

    def _wide_finish(self, patch, acc):
        new = self.map.columns(patch.elems)(acc)
        return self._wide_pool(patch, new)

    def _wide_pool(self, patch, new):
        return new if self.pool is None else pool_box(new, patch, self.model.layers[self.pool].kernel)

    def _wide_exact(self, golden: Golden, positions, xi, values):
        patch = self._patch(positions)
        if patch is None:  # reaches nothing that is read: unchanged
            return positions[:0], values[:0, :0], np.zeros(0, dtype=np.int64)
        delta = (values - gather(golden.out[self.index - 1], xi, positions)).astype(self._wmat.dtype, copy=False)
        in_shape = self.model.in_shape(self.index)
        acc = gather(golden.acc[self.index], xi, patch.elems)
        acc += conv_delta(self.layer, patch, positions, in_shape, delta, self._wmat, self.backend)
        new = self._wide_finish(patch, acc)
        return changed(new, gather(golden.out[self.out_index], xi, patch.cols), patch.cols)

    def _wide_box(self, golden: Golden, positions, xi, lo, hi):
        patch = self._patch(positions)
        if patch is None:
            return positions[:0], lo[:0, :0], hi[:0, :0], np.zeros(0, dtype=np.int64)
        base = gather(golden.out[self.index - 1], xi, positions)
        dlo, dhi = (lo - base).astype(self._wmat.dtype), (hi - base).astype(self._wmat.dtype)
        in_shape = self.model.in_shape(self.index)

        def conv(d, w):
            return conv_delta(self.layer, patch, positions, in_shape, d, w, self.backend)

        acc = gather(golden.acc[self.index], xi, patch.elems)
        box_lo, box_hi = self.map.columns(patch.elems).box(acc + conv(dlo, self._wpos) + conv(dhi, self._wneg),
                                                           acc + conv(dhi, self._wpos) + conv(dlo, self._wneg))
        new_lo, new_hi = self._wide_pool(patch, box_lo), self._wide_pool(patch, box_hi)
        return moved(new_lo, new_hi, gather(golden.out[self.out_index], xi, patch.cols), patch.cols)

    # ------------------------------------------------------------------------------ cones
    def exact(self, golden: Golden, positions, xi, values):
        if self._is_wide(positions):
            return self._wide_exact(golden, positions, xi, values)
        cone = self.cone(positions)
        delta = (values - gather(golden.out[self.index - 1], xi, positions)).astype(cone.m.dtype, copy=False)
        acc = gather(golden.acc[self.index], xi, cone.elems)
        acc += delta * cone.m if positions.size == 1 else self.backend.matmul(delta, cone.m)
        new = self._pooled(cone, cone.cmap(acc))
        return changed(new, gather(golden.out[self.out_index], xi, cone.cols), cone.cols)

    def box(self, golden: Golden, positions, xi, lo, hi):
        if self._is_wide(positions):
            return self._wide_box(golden, positions, xi, lo, hi)
        cone = self.cone(positions)
        base = gather(golden.out[self.index - 1], xi, positions)
        dlo, dhi = (lo - base).astype(cone.m.dtype), (hi - base).astype(cone.m.dtype)
        acc = gather(golden.acc[self.index], xi, cone.elems)
        if positions.size == 1:
            a, b = dlo * cone.m, dhi * cone.m
            acc_lo, acc_hi = acc + np.minimum(a, b), acc + np.maximum(a, b)
        else:
            mp, mn = np.maximum(cone.m, 0), np.minimum(cone.m, 0)
            mul = self.backend.matmul
            acc_lo = acc + mul(dlo, mp) + mul(dhi, mn)
            acc_hi = acc + mul(dhi, mp) + mul(dlo, mn)
        box_lo, box_hi = cone.cmap.box(acc_lo, acc_hi)
        new_lo, new_hi = self._pooled(cone, box_lo), self._pooled(cone, box_hi)
        return moved(new_lo, new_hi, gather(golden.out[self.out_index], xi, cone.cols), cone.cols)


    # A dense step also takes ONE changed position per row (cases of many positions in one call).
    @property
    def takes_rows(self) -> bool:
        return isinstance(self.layer, Linear) and self.pool is None

    def _row_weights(self, golden: Golden, pos, xi):
        m = self._wt[pos]  # (K, O): the weight column of each row's position
        return m, golden.out[self.index - 1][xi, pos]

    def exact_rows(self, golden: Golden, pos, xi, values):
        m, base = self._row_weights(golden, pos, xi)
        acc = golden.acc[self.index][xi] + (values - base).astype(m.dtype)[:, None] * m
        return changed(self._all_map(acc), golden.out[self.index][xi], self._all)

    def box_rows(self, golden: Golden, pos, xi, lo, hi):
        m, base = self._row_weights(golden, pos, xi)
        a = (lo - base).astype(m.dtype)[:, None] * m
        b = (hi - base).astype(m.dtype)[:, None] * m
        acc = golden.acc[self.index][xi]
        box_lo, box_hi = self._all_map.box(acc + np.minimum(a, b), acc + np.maximum(a, b))
        return moved(box_lo, box_hi, golden.out[self.index][xi], self._all)


class PoolStep:
    """A max-pool that is not fused with a compute layer (e.g. overlapping windows)."""

    takes_rows = False

    def __init__(self, model: Model, index: int):
        self.model, self.index, self.out_index = model, index, index
        self.layer = model.layers[index]

    def _windows(self, golden: Golden, positions, xi):
        pooled, elements = pool_cone(self.layer, self.model.in_shape(self.index), self.model.out_shape(self.index),
                                     positions)
        loc = np.searchsorted(positions, elements)
        hit = (loc < positions.size) & (positions[np.minimum(loc, positions.size - 1)] == elements)
        first, counts = runs(xi)
        rest = golden.out[self.index - 1][xi[first][:, None], np.where(hit, 0, elements).ravel()[None, :]]
        rest = rest.reshape(first.size, *elements.shape).astype(np.float64)
        rest[:, hit] = -np.inf  # unchanged elements only: one golden maximum per window
        return pooled, loc, hit, np.repeat(rest.max(axis=2), counts, axis=0)

    @staticmethod
    def _fold(base, values, loc, hit):
        win, slot = np.nonzero(hit)
        for k in np.unique(slot):
            w = win[slot == k]
            base[:, w] = np.maximum(base[:, w], values[:, loc[w, k]])
        return base

    def exact(self, golden: Golden, positions, xi, values):
        pooled, loc, hit, base = self._windows(golden, positions, xi)
        new = self._fold(base, values, loc, hit)
        return changed(new, gather(golden.out[self.index], xi, pooled), pooled)

    def box(self, golden: Golden, positions, xi, lo, hi):
        pooled, loc, hit, base = self._windows(golden, positions, xi)
        new_lo = self._fold(base.copy(), lo, loc, hit)
        new_hi = self._fold(base, hi, loc, hit)
        return moved(new_lo, new_hi, gather(golden.out[self.index], xi, pooled), pooled)


class ClassifierStep:
    """The last layer: exact logits and top-1, or a proof that a box keeps the golden top-1.

    Changes come at shared positions (``exact``/``safe``) or at one position per row (``*_rows``).
    """

    takes_rows = True

    def __init__(self, model: Model, index: int, omap: OutputMap, backend=NUMPY):
        self.model, self.index, self.map, self.backend = model, index, omap, backend
        self.weight = model.layers[index].weight  # (classes, features) int8
        self._cmap = omap.columns(np.arange(self.weight.shape[0]))
        self._wt = np.ascontiguousarray(self.weight.T, dtype=omap.dtype)  # (features, classes)

    def _top1(self, golden: Golden, xi, delta_acc) -> np.ndarray:
        if self.map.identity:
            return np.argmax(golden.logits[xi] + delta_acc, axis=1)
        return np.argmax(self._cmap(golden.acc[self.index][xi] + delta_acc), axis=1)  # requantizing classifier

    def exact(self, golden: Golden, positions, xi, values) -> np.ndarray:
        m = self._wt[positions]
        delta = (values - gather(golden.out[self.index - 1], xi, positions)).astype(m.dtype, copy=False)
        return self._top1(golden, xi, self.backend.matmul(delta, m))

    def exact_rows(self, golden: Golden, pos, xi, values) -> np.ndarray:
        m = self._wt[pos]
        delta = (values - golden.out[self.index - 1][xi, pos]).astype(m.dtype)
        return self._top1(golden, xi, delta[:, None] * m)

    def safe(self, golden: Golden, positions, xi, lo, hi) -> np.ndarray:
        m = self.weight[:, positions].T.astype(np.float64)[None]  # (1, |S|, classes)
        base = gather(golden.out[self.index - 1], xi, positions).astype(np.float64)
        return self._safe(golden, xi, m, lo - base, hi - base)

    def safe_rows(self, golden: Golden, pos, xi, lo, hi) -> np.ndarray:
        m = self.weight.T[pos].astype(np.float64)[:, None, :]  # (K, 1, classes)
        base = golden.out[self.index - 1][xi, pos].astype(np.float64)
        return self._safe(golden, xi, m, (lo - base)[:, None], (hi - base)[:, None])

    def _safe(self, golden: Golden, xi, m: np.ndarray, dlo: np.ndarray, dhi: np.ndarray) -> np.ndarray:
        """``m``: (1 or K, |S|, classes) weights; ``dlo``/``dhi``: (K, |S|) bounds of the input changes."""
        top = golden.top1[xi]
        rows = np.arange(xi.size)
        k, n_s, n_c = xi.size, m.shape[1], m.shape[2]
        mk = np.broadcast_to(m, (k, n_s, n_c))
        if self.map.identity:
            # L_top - L_j changes by Σ_s Δ_s (W[top,s] - W[j,s]): bound it with center and radius (exact halves).
            logits = golden.logits[xi].astype(np.float64)
            diff = mk[rows, :, top][:, :, None] - mk
            center, radius = (dlo + dhi) / 2, (dhi - dlo) / 2
            low = (logits[rows, top][:, None] - logits) + np.einsum("ks,ksc->kc", center, diff) \
                - np.einsum("ks,ksc->kc", radius, np.abs(diff))
        else:  # a requantizing classifier: bound each logit (monotone map), then compare
            mp, mn = np.maximum(mk, 0), np.minimum(mk, 0)
            acc = golden.acc[self.index][xi].astype(np.float64)
            l_lo = self._cmap(acc + np.einsum("ks,ksc->kc", dlo, mp) + np.einsum("ks,ksc->kc", dhi, mn))
            l_hi = self._cmap(acc + np.einsum("ks,ksc->kc", dhi, mp) + np.einsum("ks,ksc->kc", dlo, mn))
            low = l_lo[rows, top][:, None] - l_hi
        cls = np.arange(n_c)[None, :]
        ok = np.where(cls < top[:, None], low > 0, low >= 0)  # ties go to the lowest index
        ok[rows, top] = True
        return ok.all(axis=1)


def build_steps(model: Model, maps: dict[int, OutputMap], backend=NUMPY) -> dict[int, object]:
    """The step that starts at each layer index (Flatten is transparent and has none); their products of a
    change go through ``backend`` (:mod:`.backend`).

    A compute layer followed by a tiling max-pool is fused with it (the chain then skips the pool's own
    step, which exists for changes that start right at the compute layer's output).
    """
    steps: dict[int, object] = {}
    last = len(model.layers) - 1
    for j, layer in enumerate(model.layers):
        if j == last:
            steps[j] = ClassifierStep(model, j, maps[j], backend)
        elif isinstance(layer, (Conv2d, Linear)):
            nxt = j + 1
            fuse = nxt < last and is_tiling_pool(model.layers[nxt])
            steps[j] = ComputeStep(model, j, maps[j], nxt if fuse else None, backend)
        elif isinstance(layer, MaxPool2d):
            steps[j] = PoolStep(model, j)
    return steps


def chain_after(model: Model, steps: dict[int, object], layer: int) -> list:
    """The steps a change at ``layer``'s output goes through, up to and including the classifier."""
    chain, j = [], layer + 1
    while j < len(model.layers):
        if j not in steps:  # Flatten
            j += 1
            continue
        step = steps[j]
        chain.append(step)
        j = getattr(step, "out_index", j) + 1
    return chain
