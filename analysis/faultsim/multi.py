"""Faults that change many values at once: ``lane``, ``weight`` and ``ber`` (SPEC §7).

A lane fault corrupts every slot one PE lane writes in a layer; a weight fault changes one stored word and
with it every output of its channel that reads it; a BER draw flips bits anywhere. When all of a fault's
changes fall in ONE compute layer ``L``, nothing before ``L`` changes: this module recomputes ``L``'s output
for every input from the golden tensors (the golden accumulators for an output-site fault; the layer's
accumulators with the flipped word for a weight fault), with the executor's own requantize / inject /
correct step and clip (:meth:`resilq.ir.Executor._output`), and hands the resulting *change map* -- the positions
of ``L``'s output that differ from golden, and their new values, per input -- to
:meth:`Propagator.exact`, which pushes it through the rest of the network exactly (a wide change is
convolved over its bounding box).

A fault whose changes span several layers (a lane fault in every layer, a BER draw over all sites) runs
layer by layer over the inputs it has reached (:func:`several_layers`): an input joins at the first layer that
is faulty for it, from that layer's golden accumulators (no convolution: only the stored words a fault
flipped are convolved, with their difference); from then on only the inputs whose values differ from golden
are recomputed (an input whose layer output came back golden leaves until a later fault reaches it again); after
the last faulty layer the change map goes to :meth:`Propagator.exact`. Between layers the change is a change
map (:class:`_Change`: the inputs off golden, the positions where they differ, the values there) while it is
narrow: a compute layer is then evaluated only at the neurons it can reach (the cone of the changed
positions) and those a fault or mask touches, from the golden accumulators plus the product of the change
(:func:`_plain_compute`, :func:`_change_product`), a max-pool only at the windows holding a change
(:func:`_sparse_pool`); a wide change (above :data:`SPARSE_SHARE` of a layer) is carried whole. Where each
input changed at a few positions of its own, the product is summed term by term from the layer's fan-out table
(:mod:`.fanout`), and per-inference masks on golden inputs are carried as (input, position, value) pairs
(:mod:`.pairs`) through the layer and the max-pool after it. Every step is the executor's arithmetic
(``Executor._output`` on the reached columns, ``maxpool``) on a subset of its rows, so the result is the
executor's, input by input.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..fault_kinds import Resolved, resolve
from ..ir.executor import top1
from ..ir.kernels import accumulate, maxpool, weight_matrix_of
from ..ir.layers import Conv2d, Flatten, Linear, MaxPool2d
from .geometry import compute_cone, pool_cone
from .golden import Golden
from .pairs import Pairs, masked_pairs, pool_pairs

#: Above this share of a layer's input values changed (union over the inputs in play), the layer is convolved
#: afresh instead of updated by the cone of the change: the cone's products grow with the changed values, the
#: convolution's with all of them.
SPARSE_SHARE = 0.25
#: A change at a compute layer's input is summed product by product from the layer's fan-out table
#: (:mod:`.fanout`) while its products are at most this many times the changed rows' outputs: then the sum
#: touches fewer numbers than one requantization of those rows, where a cone product or a convolution
#: multiplies mostly zeros (per-inference flips: a few positions per input, their union wide).
SCATTER_TERMS = 1.0


def single_layer(resolved: Resolved, base_model) -> int | None:
    """The one compute layer all of a resolved fault's changes lie in, or None when they span several."""
    weight_layers = {i for i, (a, b) in enumerate(zip(base_model.layers, resolved.model.layers)) if a is not b}
    layers = weight_layers | set(resolved.shadow_layers) | resolved.layers
    return next(iter(layers)) if len(layers) == 1 else None


def layer_input(golden: Golden, model, layer: int) -> np.ndarray:
    """The int8 input tensor of compute layer ``layer`` (batch first), from the golden outputs."""
    return golden.out[layer - 1].reshape((golden.n,) + tuple(model.in_shape(layer))).astype(np.int8)


def add_word_change(acc: np.ndarray, clean, faulty, x: np.ndarray) -> None:
    """Add to the golden accumulators ``acc`` (in place) what the flipped stored words of ``faulty`` change:
    only the channels whose weights or bias differ are convolved, with the weight *difference* (exact in
    float64: |Δw| <= 255, far below 2**53 for any fan-in the int32 contract allows)."""
    dw = faulty.weight.astype(np.int64) - clean.weight.astype(np.int64)
    db = faulty.bias.astype(np.int64) - clean.bias.astype(np.int64)
    channels = np.flatnonzero(dw.reshape(dw.shape[0], -1).any(axis=1) | (db != 0))
    sub = dataclasses.replace(clean, weight=dw[channels], bias=db[channels])
    matrix = np.ascontiguousarray(dw[channels].reshape(channels.size, -1).T.astype(np.float64))
    acc[:, channels] += accumulate(sub, x, matrix)


def golden_accumulators(golden: Golden, model, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Compute layer ``layer``'s golden accumulators (int64, batch first), of every input or of ``rows``."""
    acc = golden.acc[layer] if rows is None else _rows(golden.acc[layer], rows, golden.n)
    return acc.reshape((acc.shape[0],) + tuple(model.out_shape(layer))).astype(np.int64)


def shadow_accumulators(resolved: Resolved, base_model, layer: int, golden: Golden, rows: np.ndarray | None = None,
                        x: np.ndarray | None = None) -> dict[int, np.ndarray] | None:
    """``{copy: accumulators}`` of the shadow copies of ``layer`` that read their own stored words
    (``Resolved.shadow_layers``), or None: from the golden accumulators plus the flipped words' change, for every
    input or for ``rows``; or, given the layer's (changed) input ``x``, convolved afresh."""
    copies = resolved.shadow_layers.get(layer)
    if not copies:
        return None
    clean = base_model.layers[layer]
    out = {}
    for j, lay in copies.items():
        if x is not None:
            out[j] = accumulate(lay, x, weight_matrix_of(lay))
            continue
        acc = golden_accumulators(golden, base_model, layer, rows)
        if lay is not clean:
            inputs = layer_input(golden, base_model, layer)
            add_word_change(acc, clean, lay, inputs if rows is None else inputs[rows])
        out[j] = acc
    return out


def changed_input_accumulators(ex, golden: Golden, base_model, layer: int, lay, rows: np.ndarray,
                               x: np.ndarray) -> np.ndarray:
    """Layer ``layer``'s accumulators (int64, batch first) for the inputs ``rows`` whose input ``x`` differs from
    golden, computed as the executor would with the layer's (possibly flipped) words ``lay``.

    Where few input values changed, from the golden accumulators: a convolution is linear, so
    ``acc = golden acc + W * Δx`` (the cone of the changed positions, :func:`.geometry.compute_cone`) plus what
    the flipped words change, ``ΔW * x`` (:func:`add_word_change`) -- exact in float64 (|Δx| <= 255, |w| <= 128,
    far below 2**53 for any fan-in). Otherwise the executor's convolution."""
    clean = base_model.layers[layer]
    in_shape, out_shape = base_model.in_shape(layer), base_model.out_shape(layer)
    delta = x.reshape(rows.size, -1).astype(np.int64) - layer_input(golden, base_model, layer)[rows].reshape(
        rows.size, -1)
    positions = np.flatnonzero(delta.any(axis=0))
    if positions.size > SPARSE_SHARE * delta.shape[1]:
        weights = weight_matrix_of(lay) if lay is not clean else ex._weights[layer]
        return accumulate(lay, x, weights)
    acc = golden_accumulators(golden, base_model, layer, rows)
    if positions.size:
        cols, m = compute_cone(clean, in_shape, out_shape, positions, np.float64)
        flat = acc.reshape(rows.size, -1)
        flat[:, cols] += (delta[:, positions].astype(np.float64) @ m).astype(np.int64)
    if lay is not clean:
        add_word_change(acc, clean, lay, x)
    return acc


def fault_predictions(sim, golden: Golden, chunk: slice, fault) -> np.ndarray:
    """(n,) top-1 of the chunk's inputs with the many-value ``fault`` present (bit-identical to the executor)."""
    model = sim.model
    resolved = resolve(model, [fault])
    layer = single_layer(resolved, model)
    if layer is None:  # changes in several layers: layer by layer over the inputs they reach
        return several_layers(sim, golden, chunk, resolved)
    lay = resolved.model.layers[layer]
    acc = golden_accumulators(golden, model, layer)
    if lay is not model.layers[layer]:
        add_word_change(acc, model.layers[layer], lay, layer_input(golden, model, layer))
    if layer == model.classifier_index:  # a weight of the classifier: the logits directly
        if lay.requant is not None:
            acc = sim._executor._finish(layer, lay, acc, ())
        return top1(acc.reshape(golden.n, -1))
    masks = None
    if resolved.per_inference:
        rows = np.arange(chunk.start, chunk.start + golden.n)
        masks = resolved.row_masks(rows).get(layer)
    faults = [f for f in resolved.faults if f.layer == layer]
    shadow_acc = shadow_accumulators(resolved, model, layer, golden)
    new = sim._executor._output(layer, lay, acc, faults, masks, shadow_acc).reshape(golden.n, -1)
    old = golden.out[layer]
    diff = new != old
    rows = np.flatnonzero(diff.any(axis=1))
    out = golden.top1.copy()
    if not rows.size:
        return out
    positions = np.flatnonzero(diff[rows].any(axis=0))
    values = new[rows][:, positions].astype(old.dtype)
    out[rows] = sim.propagator.exact(golden, layer, positions, rows, values)
    return out


def _faulty_rows(resolved: Resolved, base_model, n: int, masks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Per compute layer, the (n,) bool of the chunk's inputs that layer is faulty for: every input where a stored
    word changed or an output fault is present for the run, the inputs whose per-inference mask is non-zero."""
    rows: dict[int, np.ndarray] = {}
    for i, (a, b) in enumerate(zip(base_model.layers, resolved.model.layers)):
        if a is not b or i in resolved.shadow_layers:
            rows[i] = np.ones(n, dtype=bool)
    for layer in {f.layer for f in resolved.faults}:
        rows[layer] = np.ones(n, dtype=bool)
    for i, m in masks.items():
        hit = m.any(axis=1)
        rows[i] = rows[i] | hit if i in rows else hit
    return {i: r for i, r in rows.items() if r.any()}


def _rows(arr: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``arr[rows]`` for sorted distinct ``rows``; ``arr`` itself (no copy) when they are all ``n`` rows."""
    return arr if rows.size == n else arr[rows]


def _block(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``arr[np.ix_(rows, cols)]`` for sorted distinct ``rows``; a take of columns when they are all the rows."""
    return arr.take(cols, axis=1) if rows.size == arr.shape[0] else arr[np.ix_(rows, cols)]


def _touched_neurons(faults, row_masks: np.ndarray | None, n_out: int, prot) -> np.ndarray:
    """The neurons whose outputs the layer's output faults or non-zero masks touch, through their original slot
    or a shadow (sorted, unique)."""
    slots = [np.asarray([f.slot for f in faults], dtype=np.int64)]
    if row_masks is not None:
        slots.append(np.flatnonzero(row_masks.any(axis=0)))
    slots = np.concatenate(slots)
    neurons = slots[slots < n_out]
    shadow = slots[slots >= n_out] - n_out
    if shadow.size:
        neurons = np.concatenate([neurons, prot.neurons.astype(np.int64)[shadow // (prot.copies - 1)]])
    return np.unique(neurons)


class _Change:
    """The inputs whose values at one layer's output differ from golden (``rows``), as a change map (sorted flat
    ``positions`` and the ``values`` there, rows x positions) or, where the change is wide, as the whole output
    (``dense``, rows x the layer's flat size)."""

    def __init__(self, rows, positions=None, values=None, dense=None):
        self.rows, self.positions, self.values, self.dense = rows, positions, values, dense

    @classmethod
    def of(cls, every: np.ndarray, new: np.ndarray, old: np.ndarray) -> _Change:
        """From a layer's new values of inputs ``every`` (rows x size) against golden ``old``: the rows that
        differ, kept as a change map when at most :data:`SPARSE_SHARE` of the positions differ."""
        differs = new != old
        keep = differs.any(axis=1)
        if not keep.all():
            new, differs = new[keep], differs[keep]
        where = np.flatnonzero(differs.any(axis=0))
        if where.size <= SPARSE_SHARE * new.shape[1]:
            return cls(every[keep], where, new[:, where])
        return cls(every[keep], dense=new)

    @classmethod
    def at(cls, every: np.ndarray, cols: np.ndarray, new: np.ndarray, old: np.ndarray) -> _Change | None:
        """From new values of inputs ``every`` at positions ``cols`` only (the rest golden) against golden
        ``old`` there: the change map of what differs, or None when nothing does."""
        differs = new != old
        keep = differs.any(axis=1)
        if not keep.any():
            return None
        where = differs[keep].any(axis=0)
        return cls(every[keep], cols[where], new[keep][:, where])

    def full(self, golden: Golden, layer: int) -> np.ndarray:
        """The rows' whole output of ``layer`` (int8, rows x size)."""
        if self.dense is not None:
            return self.dense
        flat = golden.out[layer][self.rows].astype(np.int8)
        flat[:, self.positions] = self.values
        return flat

    def sparse(self, golden: Golden, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, values)`` of the change (from the whole output when it is held dense)."""
        if self.dense is None:
            return self.positions, self.values
        old = golden.out[layer][self.rows]
        where = np.flatnonzero((self.dense != old).any(axis=0))
        return where, self.dense[:, where]


def _as_change(change, golden: Golden, layer: int):
    """``change`` (at ``layer``'s output) as a :class:`_Change` (a :class:`.pairs.Pairs` with shared columns)."""
    if isinstance(change, Pairs):
        return _Change(change.rows, *change.block(golden, layer))
    return change


def _change_product(sim, golden: Golden, base, i: int, change: _Change) -> tuple[np.ndarray, np.ndarray]:
    """``(cols, Δacc)``: the accumulator change of compute layer ``i`` for the change at its input, at the neurons
    ``cols`` (sorted) it reaches, one row per changed input (float64, exact integers). Where the products of
    every changed (input, position) with the neurons its position feeds are fewer than the rows' outputs, they
    are summed one by one (:mod:`.fanout`); else the cone of the changed positions is multiplied by the change
    while it is narrow, or the rows' inputs are convolved afresh."""
    layer = base.layers[i]
    table = sim.fanout[i]
    if isinstance(change, Pairs):
        if table is not None and table.terms(change.positions) <= SCATTER_TERMS * change.rows.size * table.n_out:
            dacc = table.scatter(change.at, change.positions, change.delta(golden, i - 1), change.rows.size)
            cols = np.flatnonzero(dacc.any(axis=0))
            return cols, dacc[:, cols]
        change = _as_change(change, golden, i - 1)
    positions, values = change.sparse(golden, i - 1)
    if not positions.size:
        return positions, np.zeros((change.rows.size, 0))
    delta = values.astype(np.float64) - _block(golden.out[i - 1], change.rows, positions)
    if table is not None and table.terms(positions, delta != 0) <= SCATTER_TERMS * change.rows.size * table.n_out:
        r, s = np.nonzero(delta)
        dacc = table.scatter(r, positions[s], delta[r, s], change.rows.size)
        cols = np.flatnonzero(dacc.any(axis=0))
        return cols, dacc[:, cols]
    if positions.size <= SPARSE_SHARE * golden.out[i - 1].shape[1] or not isinstance(layer, Conv2d):
        if table is None:
            cols, m = compute_cone(layer, base.in_shape(i), base.out_shape(i), positions, np.float64)
            return cols, delta @ m
        dacc = delta.astype(table.dtype) @ table.rows(positions)
        cols = np.flatnonzero(dacc.any(axis=0))
        return cols, dacc if cols.size == dacc.shape[1] else dacc[:, cols]
    x = change.full(golden, i - 1).reshape((change.rows.size,) + tuple(base.in_shape(i)))
    acc = accumulate(layer, x, sim._executor._weights[i]).reshape(change.rows.size, -1)
    return np.arange(acc.shape[1]), acc - golden.acc[i][change.rows]


def _plain_compute(sim, golden: Golden, base, i: int, change: _Change | Pairs | None, every: np.ndarray, faults,
                   row_masks) -> _Change | Pairs | None:
    """Layer ``i``'s change (None: none) for the inputs ``every`` (the changed ones and those joining here), when
    its stored words are the clean ones: the golden accumulators plus the change's product
    (:func:`_change_product`), then the executor's requantize / inject / correct -- only at the neurons the
    change reaches and those a fault or mask touches while they are at most :data:`SPARSE_SHARE` of the layer,
    else over whole rows."""
    ex, layer, n_out = sim._executor, base.layers[i], base.out_size(i)
    if change is None and not faults and row_masks is not None:  # golden inputs, each with masks of its own
        pairs = masked_pairs(ex, golden, base, i, every, row_masks)
        if pairs is not False:
            return pairs
    touched = _touched_neurons(faults, row_masks, n_out, layer.protection)
    cone, dacc = np.zeros(0, dtype=np.int64), None
    if change is not None and change.rows.size:
        cone, dacc = _change_product(sim, golden, base, i, change)
        at = np.searchsorted(every, change.rows)
    cols = np.union1d(cone, touched) if touched.size else cone
    if cols.size <= SPARSE_SHARE * n_out:
        acc = _block(golden.acc[i], every, cols).astype(np.int64)
        if cone.size:
            acc[np.ix_(at, np.searchsorted(cols, cone))] += dacc.astype(np.int64)
        new = ex._output(i, layer, acc, faults, row_masks, None, cols)
        return _Change.at(every, cols, new, _block(golden.out[i], every, cols))
    if cone.size == n_out and at.size == every.size:  # every input changed, at every neuron: one sum (exact, see
        acc = (_rows(golden.acc[i], every, golden.n) + dacc).astype(np.int64)  # outmap.accumulator_dtype)
    else:
        acc = _rows(golden.acc[i], every, golden.n).astype(np.int64)
    if cone.size == n_out and at.size < every.size:
        acc[at] += dacc.astype(np.int64)
    elif 0 < cone.size < n_out:
        acc[np.ix_(at, cone)] += dacc.astype(np.int64)
    new = ex._output(i, layer, acc.reshape((every.size,) + tuple(base.out_shape(i))), faults, row_masks)
    changed = _Change.of(every, new.reshape(every.size, -1), _rows(golden.out[i], every, golden.n))
    return changed if changed.rows.size else None


def _sparse_pool(golden: Golden, base, i: int, change: _Change) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool ``i``'s new outputs of the changed rows at the windows holding a changed position:
    ``(pooled positions, values)``."""
    positions, values = change.sparse(golden, i - 1)
    pooled, windows = pool_cone(base.layers[i], base.in_shape(i), base.out_shape(i), positions)
    if not pooled.size:
        return pooled, np.zeros((change.rows.size, 0), dtype=np.int8)
    elems = windows.ravel()
    vals = _block(golden.out[i - 1], change.rows, elems).astype(np.int8)
    k = np.minimum(np.searchsorted(positions, elems), positions.size - 1)
    hit = positions[k] == elems
    vals[:, hit] = values[:, k[hit]]
    return pooled, vals.reshape(change.rows.size, pooled.size, -1).max(axis=2)


def several_layers(sim, golden: Golden, chunk: slice, resolved: Resolved) -> np.ndarray:
    """(n,) top-1 of the chunk's inputs under a fault whose changes lie in several layers (bit-identical to the
    executor; see the module docstring)."""
    base, model, ex = sim.model, resolved.model, sim._executor
    n = golden.n
    masks = resolved.row_masks(np.arange(chunk.start, chunk.start + n)) if resolved.per_inference else {}
    faulty = _faulty_rows(resolved, base, n, masks)
    out = golden.top1.copy()
    if not faulty:
        return out
    by_layer: dict[int, list] = {}
    for f in resolved.faults:
        by_layer.setdefault(f.layer, []).append(f)
    last = max(faulty)
    change = None  # the inputs whose values at the previous layer's output differ from golden
    for i in range(min(faulty), last + 1):
        lay = model.layers[i]
        rows = change.rows if change is not None else np.zeros(0, dtype=np.int64)
        if isinstance(lay, (Conv2d, Linear)):
            join = np.flatnonzero(faulty[i]) if i in faulty else np.zeros(0, dtype=np.int64)
            join = join[~np.isin(join, rows, assume_unique=True)]  # faulty here, golden so far
            if not rows.size and not join.size:
                continue
            every = np.union1d(rows, join)
            row_masks = _rows(masks[i], every, n) if i in masks else None
            plain = lay is base.layers[i] and i not in resolved.shadow_layers and i != base.classifier_index
            if plain:
                change = _plain_compute(sim, golden, base, i, change, every, by_layer.get(i, ()), row_masks)
                continue
            change = _as_change(change, golden, i - 1)
            x = None if not rows.size else change.full(golden, i - 1).reshape((rows.size,) + tuple(base.in_shape(i)))
            changed_words = lay is not base.layers[i]
            parts, order, shadow_parts = [], [], []
            if rows.size:
                parts.append(changed_input_accumulators(ex, golden, base, i, lay, rows, x))
                order.append(rows)
                shadow_parts.append(shadow_accumulators(resolved, base, i, golden, x=x))
            if join.size:
                acc = golden_accumulators(golden, base, i, join)
                if changed_words:
                    add_word_change(acc, base.layers[i], lay, layer_input(golden, base, i)[join])
                parts.append(acc)
                order.append(join)
                shadow_parts.append(shadow_accumulators(resolved, base, i, golden, rows=join))
            every = np.concatenate(order)
            sort = np.argsort(every, kind="stable")
            every, acc = every[sort], np.concatenate(parts)[sort]
            shadow_acc = None
            if shadow_parts[0] is not None:
                shadow_acc = {j: np.concatenate([p[j] for p in shadow_parts])[sort] for j in shadow_parts[0]}
            row_masks = masks[i][every] if i in masks else None
            if i == base.classifier_index:  # the last layer: its logits, as the executor computes them
                logits = acc if lay.requant is None else ex._output(i, lay, acc, by_layer.get(i, ()), row_masks)
                out[every] = top1(logits.reshape(every.size, -1))
                return out
            new = ex._output(i, lay, acc, by_layer.get(i, ()), row_masks, shadow_acc)
        elif not rows.size:
            continue
        elif isinstance(lay, MaxPool2d):
            if isinstance(change, Pairs):
                change = pool_pairs(golden, base, i, change)
                continue
            if change.dense is None:
                pooled, values = _sparse_pool(golden, base, i, change)
                change = _Change.at(rows, pooled, values, _block(golden.out[i], rows, pooled))
                continue
            every = rows
            new = maxpool(lay, change.dense.reshape((rows.size,) + tuple(base.in_shape(i))))
        elif isinstance(lay, Flatten):
            continue  # the same values in the same flat order
        else:  # an IR layer this engine does not know: refuse rather than guess
            raise TypeError(f"several_layers: layer {i} ({type(lay).__name__}) is not a compute, pool or flatten layer")
        change = _Change.of(every, new.reshape(every.size, -1), _rows(golden.out[i], every, n))
        if not change.rows.size:
            change = None
    if change is not None:  # past the last faulty layer: the change map, exactly, through the rest of the network
        change = _as_change(change, golden, last)
        positions, values = change.sparse(golden, last)
        out[change.rows] = sim.propagator.exact(golden, last, positions, change.rows,
                                                values.astype(golden.out[last].dtype))
    return out
