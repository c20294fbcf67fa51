"""Exact integer kernels: int8 x int8 -> int32 accumulators, and max-pooling.

Products of int8 values are summed with a BLAS matmul in floating point, which is exact because every
partial sum is an integer far below the mantissa limit: float32 is used when the layer's worst-case
|acc| (sum|w| * 128, bias excluded) is below 2**24, float64 otherwise (exact below 2**53, and int32
accumulators never exceed 2**31). The result is identical to an int32 loop and an order of magnitude
faster than numpy's integer matmul.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import ComputeLayer, Conv2d, MaxPool2d

FLOAT32_EXACT = 2**24


def exact_float_dtype(weight: np.ndarray, input_bound: int = 128) -> type:
    """The cheapest float dtype in which ``x @ weight`` is exact for int8 inputs with |x| <= input_bound."""
    w = np.abs(weight.reshape(weight.shape[0], -1).astype(np.int64)).sum(axis=1)
    return np.float32 if int(w.max(initial=0)) * input_bound < FLOAT32_EXACT else np.float64


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """(N, C, H, W) -> (N, Ho, Wo, C*k*k) patches, in the C-k-k order of a conv weight row."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(x, (kernel, kernel), axis=(2, 3))  # N, C, H', W', k, k
    win = win[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * kernel * kernel)


def accumulate(layer: ComputeLayer, x: np.ndarray, weight_matrix: np.ndarray | None = None) -> np.ndarray:
    """int64 accumulators (bias included) of a Conv2d or Linear layer for an int8 batch ``x``.

    ``weight_matrix`` (``(fan_in, O)`` in the exact float dtype) may be passed to avoid recomputing it.
    """
    if weight_matrix is None:
        weight_matrix = weight_matrix_of(layer)
    dtype = weight_matrix.dtype
    if isinstance(layer, Conv2d):
        cols = im2col(x, layer.kernel, layer.stride, layer.padding)
        n, ho, wo, f = cols.shape
        acc = cols.reshape(-1, f).astype(dtype) @ weight_matrix
        acc = np.ascontiguousarray(acc.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2), dtype=np.int64)
        acc += layer.bias.astype(np.int64)[None, :, None, None]
        return acc
    acc = x.reshape(x.shape[0], -1).astype(dtype) @ weight_matrix
    return acc.astype(np.int64) + layer.bias.astype(np.int64)[None, :]


def weight_matrix_of(layer: ComputeLayer) -> np.ndarray:
    """The layer's weights as a ``(fan_in, O)`` matrix in the cheapest exact float dtype."""
    w = layer.weight.reshape(layer.weight.shape[0], -1)
    return np.ascontiguousarray(w.T.astype(exact_float_dtype(layer.weight)))


def maxpool(layer: MaxPool2d, x: np.ndarray) -> np.ndarray:
    """Max-pooling of an int8 (N, C, H, W) batch (no padding, floor mode).

    A tiling pool (kernel == stride) takes pairwise maxima of strided slices, the window's columns first,
    then its rows: ``2 * (k - 1)`` elementwise passes (on LeNet-5's 24x24 maps ~25x faster than a reduction
    over a strided window view, which stays the way for overlapping windows). Both take the same maxima."""
    k, s = layer.kernel, layer.stride
    if k == s:
        _, _, h, w = x.shape
        ho, wo = (h - k) // s + 1, (w - k) // s + 1
        covered = x[:, :, :ho * k, :wo * k]
        cols = covered[:, :, :, 0::k]
        for r in range(1, k):
            cols = np.maximum(cols, covered[:, :, :, r::k])
        out = cols[:, :, 0::k]
        for r in range(1, k):
            out = np.maximum(out, cols[:, :, r::k])
        return np.ascontiguousarray(out)
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return win.max(axis=(4, 5))
