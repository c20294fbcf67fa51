"""Receptive cones: which outputs of a layer a set of changed inputs can reach, and through which weights.

Positions are flat C-H-W indices (the slot order of :mod:`resilq.faults`). For a compute layer the cone is
``(T, M)``: the reachable outputs ``T`` (sorted) and the local weight matrix ``M`` (``|S| x |T|``) such that
``Δacc[:, T] = Δin[:, S] @ M`` exactly. For a max-pool it is the windows touching ``S`` and their elements.
"""

from __future__ import annotations

import numpy as np

from ..ir.layers import Conv2d, Linear, MaxPool2d


def _taps(pos: np.ndarray, kernel: int, stride: int, padding: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For 1-D input positions ``pos``: every (position index, kernel tap, output position) that connects them."""
    taps = np.arange(kernel)
    num = pos[:, None] + padding - taps[None, :]
    ok = (num >= 0) & (num % stride == 0) & (num // stride < n_out)
    which, tap = np.nonzero(ok)
    return which, tap, num[which, tap] // stride


def _pairs(sy: np.ndarray, sx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian product, per position, of its vertical taps ``sy`` and horizontal taps ``sx`` (both sorted)."""
    cy, cx = np.bincount(sy, minlength=n), np.bincount(sx, minlength=n)
    start_y, start_x = np.cumsum(cy) - cy, np.cumsum(cx) - cx
    count = cy * cx
    owner = np.repeat(np.arange(n), count)
    r = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    return start_y[owner] + r // cx[owner], start_x[owner] + r % cx[owner]


def _unique_in_range(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for integers in ``[0, n)``, by marking instead of sorting."""
    seen = np.zeros(n, dtype=bool)
    seen[values] = True
    cols = np.flatnonzero(seen)
    where = np.empty(n, dtype=np.int64)
    where[cols] = np.arange(cols.size)
    return cols, where[values]


def conv_cone(layer: Conv2d, in_shape, out_shape, positions: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    c_in, h, w = in_shape
    o, ho, wo = out_shape
    c, y, x = np.unravel_index(positions, (c_in, h, w))
    sy, ky, oy = _taps(y, layer.kernel, layer.stride, layer.padding, ho)
    sx, kx, ox = _taps(x, layer.kernel, layer.stride, layer.padding, wo)
    pair_y, pair_x = _pairs(sy, sx, positions.size)
    s = sy[pair_y]
    ky, oy, kx, ox = ky[pair_y], oy[pair_y], kx[pair_x], ox[pair_x]
    oc = np.arange(o)
    t = (oc[None, :] * ho + oy[:, None]) * wo + ox[:, None]  # (pairs, O)
    weights = layer.weight[oc[None, :], c[s][:, None], ky[:, None], kx[:, None]]
    cols, inverse = _unique_in_range(t.ravel(), o * ho * wo)
    m = np.zeros((positions.size, cols.size), dtype=dtype)
    m[np.repeat(s, o), inverse] = weights.ravel()
    return cols.astype(np.int64), m


def linear_cone(layer: Linear, positions: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(layer.out_channels, dtype=np.int64), np.ascontiguousarray(layer.weight[:, positions].T, dtype=dtype)


def compute_cone(layer, in_shape, out_shape, positions: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(layer, Conv2d):
        return conv_cone(layer, in_shape, out_shape, positions, dtype)
    return linear_cone(layer, positions, dtype)


def pool_cone(layer: MaxPool2d, in_shape, out_shape, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, E)``: pooled outputs whose window holds a changed position, and each window's k*k elements."""
    c_in, h, w = in_shape
    _, ho, wo = out_shape
    c, y, x = np.unravel_index(positions, (c_in, h, w))
    sy, _, py = _taps(y, layer.kernel, layer.stride, 0, ho)
    sx, _, px = _taps(x, layer.kernel, layer.stride, 0, wo)
    pair_y, pair_x = _pairs(sy, sx, positions.size)
    p = np.unique((c[sy[pair_y]] * ho + py[pair_y]) * wo + px[pair_x])
    if not p.size:  # only floor-mode borders changed: no window sees them
        return p.astype(np.int64), np.zeros((0, layer.kernel * layer.kernel), dtype=np.int64)
    pc, pyy, pxx = np.unravel_index(p, (c_in, ho, wo))
    d = np.arange(layer.kernel)
    ey = pyy[:, None, None] * layer.stride + d[None, :, None]
    ex = pxx[:, None, None] * layer.stride + d[None, None, :]
    e = (pc[:, None, None] * h + ey) * w + ex
    return p.astype(np.int64), e.reshape(p.size, -1).astype(np.int64)


__all__ = ["compute_cone", "conv_cone", "linear_cone", "pool_cone", "Conv2d", "Linear", "MaxPool2d"]
