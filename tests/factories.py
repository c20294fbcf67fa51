"""Small integer models and an independent loop-based reference executor, for tests.

``random_model`` builds a LeNet-like integer network with random int8 weights and shifts calibrated on
real inputs so activations use the whole int8 range (a model whose activations are all 0 or all 127
would make every test trivially true). ``reference_run`` recomputes a model element by element with
plain loops, independently of the vectorised executor, including protection and faults.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from resilq.arith import Scheme, apply_fault, correct, requantize, split_half
from resilq.ir import Conv2d, Flatten, InputQuant, Linear, MaxPool2d, Model, Protection, Requant
from resilq.ir.kernels import accumulate, maxpool


def _calibrate(layer, x: np.ndarray, relu: bool) -> Requant:
    acc = accumulate(layer, x)
    per_ch = np.moveaxis(acc, 1, 0).reshape(acc.shape[1], -1)
    peak = np.percentile(np.abs(per_ch), 99, axis=1) + 1
    shift = np.clip(np.ceil(np.log2(peak / 100.0)), 0, 30).astype(np.int32)
    return Requant(shift, relu)


def random_model(rng: np.random.Generator, images: np.ndarray | None = None, shape=(1, 12, 12), channels=(3, 4),
                 hidden=10, classes=5, padding=1, relu_last_hidden=True) -> Model:
    """conv3x3 -> relu -> pool2 -> conv3x3 -> relu -> flatten -> fc(hidden) -> fc(classes)."""
    c, h, w = shape
    if images is None:
        images = rng.random((64, *shape), dtype=np.float32)
    inp = InputQuant(tuple(shape), 7)
    x = inp.quantize(images)
    layers = []

    def add(layer, relu=True):
        nonlocal x
        if isinstance(layer, (Conv2d, Linear)):
            rq = _calibrate(layer, x, relu)
            layer = dataclasses.replace(layer, requant=rq)
            acc = accumulate(layer, x)
            x = requantize(acc, rq.shift.reshape((-1,) + (1,) * (acc.ndim - 2)), *rq.bounds)
        elif isinstance(layer, MaxPool2d):
            x = maxpool(layer, x)
        else:
            x = x.reshape(x.shape[0], -1)
        layers.append(layer)

    def wb(o, shape_w):
        return (rng.integers(-60, 61, size=shape_w).astype(np.int8), rng.integers(-400, 401, size=o).astype(np.int32))

    w1, b1 = wb(channels[0], (channels[0], c, 3, 3))
    add(Conv2d("conv1", w1, b1, None, stride=1, padding=padding))
    add(MaxPool2d("pool1", 2, 2))
    w2, b2 = wb(channels[1], (channels[1], channels[0], 3, 3))
    add(Conv2d("conv2", w2, b2, None, stride=1, padding=padding))
    add(Flatten("flatten"))
    fan = x.shape[1]
    w3, b3 = wb(hidden, (hidden, fan))
    add(Linear("fc1", w3, b3, None), relu=relu_last_hidden)
    w4 = rng.integers(-60, 61, size=(classes, hidden)).astype(np.int8)
    b4 = rng.integers(-400, 401, size=classes).astype(np.int32)
    layers.append(Linear("fc2", w4, b4, None))
    return Model(inp, tuple(layers), {"name": "random"})


def protect(model: Model, rng: np.random.Generator, scheme: Scheme, fraction: float = 0.3) -> Model:
    """Protect a random ``fraction`` of the neurons of every neuron layer with ``scheme``."""
    prots = {}
    for i in model.neuron_layers:
        layer = model.layers[i]
        if scheme is Scheme.SPLIT and not layer.requant.relu:
            continue
        n = model.out_size(i)
        k = max(1, int(n * fraction))
        prots[i] = Protection(scheme, np.sort(rng.choice(n, size=k, replace=False)).astype(np.int32))
    return model.with_protection(prots)


# ------------------------------------------------------------------------------------------ reference
def _conv_ref(layer: Conv2d, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    p, s, k = layer.padding, layer.stride, layer.kernel
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=np.int64)
    xp[:, :, p:p + h, p:p + w] = x
    o = layer.out_channels
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    acc = np.zeros((n, o, ho, wo), dtype=np.int64)
    wt = layer.weight.astype(np.int64)
    for oc in range(o):
        for yy in range(ho):
            for xx in range(wo):
                patch = xp[:, :, yy * s:yy * s + k, xx * s:xx * s + k]
                acc[:, oc, yy, xx] = (patch * wt[oc]).sum(axis=(1, 2, 3)) + int(layer.bias[oc])
    return acc


def _linear_ref(layer: Linear, x: np.ndarray) -> np.ndarray:
    wt = layer.weight.astype(np.int64)
    acc = np.zeros((x.shape[0], wt.shape[0]), dtype=np.int64)
    for o in range(wt.shape[0]):
        acc[:, o] = (x.astype(np.int64) * wt[o]).sum(axis=1) + int(layer.bias[o])
    return acc


def _pool_ref(layer: MaxPool2d, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    k, s = layer.kernel, layer.stride
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, ho, wo), dtype=np.int8)
    for yy in range(ho):
        for xx in range(wo):
            out[:, :, yy, xx] = x[:, :, yy * s:yy * s + k, xx * s:xx * s + k].max(axis=(2, 3))
    return out


def reference_run(model: Model, x: np.ndarray, faults=(), copies=None) -> list[np.ndarray]:
    """Every layer's output, computed neuron by neuron with explicit slots (independent of the executor).

    ``copies``: ``{layer: {copy: layer}}``, the stored words shadow copy ``copy`` computes from (own-weight
    protection); the other copies use the layer's own."""
    outs = []
    copies = copies or {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, MaxPool2d):
            x = _pool_ref(layer, x)
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        else:
            def acc_of(lay, x=x):
                return _conv_ref(lay, x) if isinstance(lay, Conv2d) else _linear_ref(lay, x)

            acc = acc_of(layer)
            if layer.requant is None:
                x = acc
            else:
                copy_acc = {j: acc_of(lay) for j, lay in copies.get(i, {}).items()}
                x = _finish_ref(model, i, layer, acc, [f for f in faults if f.layer == i], copy_acc)
        outs.append(x)
    return outs


def _finish_ref(model, i, layer, acc, faults, copy_acc=None):
    n = acc.shape[0]
    flat_acc = acc.reshape(n, -1)
    copy_flat = {j: a.reshape(n, -1) for j, a in (copy_acc or {}).items()}
    n_out = flat_acc.shape[1]
    per_ch = n_out // layer.out_channels
    prot = layer.protection
    protected = {} if prot is None else {int(v): p for p, v in enumerate(prot.neurons)}
    lo, hi = layer.requant.bounds
    out = np.zeros((n, n_out), dtype=np.int8)
    for j in range(n_out):
        shift = int(layer.requant.shift[j // per_ch])
        if j in protected:
            p = protected[j]
            copies = prot.copies
            def value_of(column, shift=shift):
                return split_half(column, shift) if prot.scheme is Scheme.SPLIT else requantize(column, shift, lo, hi)

            slots = [value_of(copy_flat[k][:, j] if k in copy_flat else flat_acc[:, j]) for k in range(copies)]
            slot_ids = [j] + [n_out + p * (copies - 1) + c for c in range(copies - 1)]
            for f in faults:
                if f.slot in slot_ids:
                    k = slot_ids.index(f.slot)
                    slots[k] = apply_fault(slots[k], f.mask, f.mode)
            out[:, j] = correct(prot.scheme, slots)
        else:
            value = requantize(flat_acc[:, j], shift, lo, hi)
            for f in faults:
                if f.slot == j:
                    value = apply_fault(value, f.mask, f.mode)
            out[:, j] = value
    return out.reshape(acc.shape)
