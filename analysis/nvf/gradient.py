"""The gradient filter of the paper's Algorithm 1 (lines 3-5), on the integer network.

``L = sigmoid(Σ_j (E_top - E_j))``; an input is analysed for a neuron only if ``∂L/∂out_neuron != 0``.
``sigmoid'`` is positive, so the test is the same for ``g = Σ_j (E_top - E_j) = C·E_top - Σ_j E_j``; we drop
the sigmoid to avoid a float artefact the paper's float32 PyTorch code has (``sigmoid'`` underflows to 0 for
large margins and would skip every neuron of confidently classified inputs).

The network is differentiated as quantization-aware training does (straight-through rounding): a
requantizer passes ``2**-shift`` where it neither clamps nor cuts (ReLU: ``acc > 0``; saturation: the rounded
value within [lo, hi]), and 0 elsewhere; a max-pool passes the gradient to the first maximum of its window
(PyTorch's rule); conv and dense layers pass it through their weights. Zeros are structural (ReLU, pool,
saturation), so the test is exact; the magnitudes are float64 and do not matter.
"""

from __future__ import annotations

import numpy as np

from ..faultsim import Golden
from ..ir.layers import Conv2d, Flatten, Linear, MaxPool2d
from ..ir.model import Model


def _requant_slope(layer, acc: np.ndarray) -> np.ndarray:
    lo, hi = layer.requant.bounds
    shift = layer.requant.shift.astype(np.int64)
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    q = np.rint(acc * np.ldexp(1.0, -shift).reshape(shape))
    ok = (q >= lo) & (q <= hi)
    if layer.requant.relu:
        ok &= acc > 0
    return np.where(ok, np.ldexp(1.0, -shift).reshape(shape), 0.0)


def _conv_backward(layer: Conv2d, grad_acc: np.ndarray, in_shape) -> np.ndarray:
    n = grad_acc.shape[0]
    c, h, w = in_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    _, _, ho, wo = grad_acc.shape
    out = np.zeros((n, c, h + 2 * p, w + 2 * p))
    weight = layer.weight.astype(np.float64)
    for ky in range(k):
        for kx in range(k):
            contrib = np.einsum("nohw,oc->nchw", grad_acc, weight[:, :, ky, kx])
            out[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s] += contrib
    return out[:, :, p:p + h, p:p + w]


def _pool_backward(layer: MaxPool2d, grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    k, s = layer.kernel, layer.stride
    _, _, ho, wo = grad_out.shape
    out = np.zeros((n, c, h, w))
    best = np.full((n, c, ho, wo), -np.inf)
    arg = np.zeros((n, c, ho, wo, 2), dtype=np.int64)
    for dy in range(k):  # scan order = row-major inside the window; strict > keeps the first maximum
        for dx in range(k):
            v = x[:, :, dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s]
            better = v > best
            best = np.where(better, v, best)
            arg[..., 0] = np.where(better, dy, arg[..., 0])
            arg[..., 1] = np.where(better, dx, arg[..., 1])
    ni, ci, yi, xi = np.indices((n, c, ho, wo))
    np.add.at(out, (ni, ci, yi * s + arg[..., 0], xi * s + arg[..., 1]), grad_out)
    return out


def output_gradients(model: Model, golden: Golden) -> dict[int, np.ndarray]:
    """``∂g/∂out`` of every neuron layer's output, (N, n_out) float64, for the batch of ``golden``."""
    n = golden.n
    last = len(model.layers) - 1
    classifier = model.layers[last]
    n_classes = model.n_classes
    w = classifier.weight.astype(np.float64)  # (classes, features)
    # g = C * E_top - Σ_j E_j  ->  ∂g/∂E = C * onehot(top) - 1
    d_logits = np.full((n, n_classes), -1.0)
    d_logits[np.arange(n), golden.top1] += n_classes
    if classifier.requant is not None:
        d_logits *= _requant_slope(classifier, golden.acc[last].astype(np.float64))
    grad = d_logits @ w  # gradient at the classifier's input
    grads: dict[int, np.ndarray] = {}
    for i in range(last - 1, -1, -1):
        layer = model.layers[i]
        shape = model.out_shape(i)
        grad = grad.reshape((n,) + tuple(shape))
        if i in model.neuron_layers:
            grads[i] = grad.reshape(n, -1).copy()
        if isinstance(layer, Flatten):
            continue
        prev_out = golden.out[i - 1].reshape((n,) + tuple(model.in_shape(i)))
        if isinstance(layer, MaxPool2d):
            grad = _pool_backward(layer, grad, prev_out)
        elif isinstance(layer, (Conv2d, Linear)):
            grad_acc = grad * _requant_slope(layer, golden.acc[i].reshape(grad.shape).astype(np.float64))
            if isinstance(layer, Conv2d):
                grad = _conv_backward(layer, grad_acc, model.in_shape(i))
            else:
                grad = grad_acc @ layer.weight.astype(np.float64)
    return grads
