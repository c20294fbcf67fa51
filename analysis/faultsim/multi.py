"""Faults that change many values of one layer at once: ``lane``, ``weight`` and ``ber`` (SPEC §7).

A lane fault corrupts every slot one PE lane writes in a layer; a weight fault changes one stored word and
with it every output of its channel that reads it; a BER draw flips bits anywhere. When all of a fault's
changes fall in ONE compute layer ``L``, nothing before ``L`` changes: this module recomputes ``L``'s output
for every input from the golden tensors (the golden accumulators for an output-site fault; the layer's
accumulators with the flipped word for a weight fault), with the executor's own requantize / inject /
correct step and clip (:meth:`resilq.ir.Executor._output`), and hands the resulting *change map* -- the positions
of ``L``'s output that differ from golden, and their new values, per input -- to
:meth:`Propagator.exact`, which pushes it through the rest of the network exactly (a wide change is
convolved over its bounding box). A fault whose changes span several layers (a lane fault in every layer,
a BER draw over all sites) is run by the bit-true executor on the chunk: exact, without the speed-up.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..fault_kinds import Resolved, resolve
from ..ir.executor import Executor, top1
from ..ir.kernels import accumulate
from .golden import Golden


def single_layer(resolved: Resolved, base_model) -> int | None:
    """The one compute layer all of a resolved fault's changes lie in, or None when they span several."""
    weight_layers = {i for i, (a, b) in enumerate(zip(base_model.layers, resolved.model.layers)) if a is not b}
    layers = weight_layers | resolved.layers
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


def fault_predictions(sim, golden: Golden, chunk: slice, fault) -> np.ndarray:
    """(n,) top-1 of the chunk's inputs with the many-value ``fault`` present (bit-identical to the executor)."""
    model = sim.model
    resolved = resolve(model, [fault])
    layer = single_layer(resolved, model)
    if layer is None:  # changes in several layers: the executor (exact, no incremental propagation)
        runner = sim._executor if resolved.model is model else Executor(resolved.model)
        run = runner._run(sim.x[chunk], resolved.faults, False, max(1, golden.n), None, chunk.start,
                          resolved.row_masks if resolved.per_inference else None)
        return run.predictions
    lay = resolved.model.layers[layer]
    acc = golden.acc[layer].reshape((golden.n,) + tuple(model.out_shape(layer))).astype(np.int64)
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
    new = sim._executor._output(layer, lay, acc, faults, masks).reshape(golden.n, -1)
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
