"""Wide changes through a conv layer: convolve the change itself over its bounding box.

When many input positions of a conv layer changed (deep in a network a fault's cone covers whole feature
maps), a per-position weight matrix is wasteful. Convolution is linear, so the change of the accumulators is
the convolution of the change of the input: scatter ``Δin`` into a zero patch that covers the bounding box
of the changed positions (plus the kernel's reach), and run ONE convolution over it (im2col + matmul, or
torch's own kernel: :mod:`.backend`). The output box is
aligned to whole windows of a fused tiling max-pool and clipped to what the pool covers (floor mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.layers import Conv2d
from .backend import NUMPY


@dataclass(frozen=True, eq=False)
class Patch:
    """Input patch ``[y0, y0+ph) x [x0, x0+pw)`` (may reach into the zero padding) and the output box."""

    y0: int
    x0: int
    ph: int
    pw: int
    oh: int  # output box rows / columns
    ow: int
    elems: np.ndarray  # flat conv outputs of the box, (channel, row, column) order
    cols: np.ndarray  # flat outputs of the step (pooled when a pool is fused), sorted
    rows: np.ndarray  # per changed position: its row, column inside the patch
    cols_in: np.ndarray


def _span(lo: int, hi: int, kernel: int, stride: int, padding: int, n_out: int) -> tuple[int, int]:
    """Output indices whose receptive field meets input indices [lo, hi]."""
    first = max(0, -(-(lo + padding - kernel + 1) // stride))
    last = min(n_out - 1, (hi + padding) // stride)
    return first, last


def conv_patch(layer: Conv2d, in_shape, out_shape, positions: np.ndarray, pool: int | None = None,
               pool_out=None) -> Patch | None:
    """The patch geometry of ``positions`` (None when they reach no output that anything reads)."""
    c_in, h, w = in_shape
    o, ho, wo = out_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    _, y, x = np.unravel_index(positions, (c_in, h, w))
    r0, r1 = _span(int(y.min()), int(y.max()), k, s, p, ho)
    c0, c1 = _span(int(x.min()), int(x.max()), k, s, p, wo)
    if pool is not None:  # whole pool windows, and only rows/columns a window covers
        _, hp, wp = pool_out
        r0, r1 = (r0 // pool) * pool, min((r1 // pool + 1) * pool, hp * pool) - 1
        c0, c1 = (c0 // pool) * pool, min((c1 // pool + 1) * pool, wp * pool) - 1
    if r0 > r1 or c0 > c1:
        return None
    oh, ow = r1 - r0 + 1, c1 - c0 + 1
    y0, x0 = r0 * s - p, c0 * s - p
    ph, pw = (oh - 1) * s + k, (ow - 1) * s + k
    ch = np.arange(o)[:, None, None]
    elems = ((ch * ho + np.arange(r0, r1 + 1)[None, :, None]) * wo + np.arange(c0, c1 + 1)[None, None, :]).ravel()
    if pool is not None:
        _, hp, wp = pool_out
        pr, pc = np.arange(r0 // pool, r1 // pool + 1), np.arange(c0 // pool, c1 // pool + 1)
        cols = ((ch * hp + pr[None, :, None]) * wp + pc[None, None, :]).ravel()
    else:
        cols = elems
    inside = (y >= y0) & (y < y0 + ph) & (x >= x0) & (x < x0 + pw)
    if not inside.any():
        return None
    return Patch(y0, x0, ph, pw, oh, ow, elems, cols, np.where(inside, y - y0, -1), x - x0)


def conv_delta(layer: Conv2d, patch: Patch, positions: np.ndarray, in_shape, delta: np.ndarray,
               weights: np.ndarray, backend=NUMPY) -> np.ndarray:
    """``Δacc`` (K, len(patch.elems)) of the box for input changes ``delta`` (K, |positions|).

    ``weights``: the layer's (C*k*k, O) weight matrix in an exact float type (or its positive/negative part);
    ``backend`` (:mod:`.backend`) convolves the scattered change.
    """
    c_in, h, w = in_shape
    k = delta.shape[0]
    ch, _, _ = np.unravel_index(positions, (c_in, h, w))
    ok = patch.rows >= 0
    grid = np.zeros((k, c_in, patch.ph, patch.pw), dtype=weights.dtype)
    grid[:, ch[ok], patch.rows[ok], patch.cols_in[ok]] = delta[:, ok]
    return backend.conv(grid, layer, weights)


def pool_box(values: np.ndarray, patch: Patch, kernel: int) -> np.ndarray:
    """Max-pool the output box (K, O*oh*ow) in place of a fused tiling pool: (K, O*(oh/k)*(ow/k))."""
    k = values.shape[0]
    v = values.reshape(k, -1, patch.oh // kernel, kernel, patch.ow // kernel, kernel)
    # kernel**2 elementwise maxima of strided views: several times faster than a max over the two
    # non-contiguous axes (measured on AlexNet's conv3 + pool3 step), and the same exact values.
    out = v[:, :, :, 0, :, 0].copy()
    for dy in range(kernel):
        for dx in range(kernel):
            if dy or dx:
                np.maximum(out, v[:, :, :, dy, :, dx], out=out)
    return out.reshape(k, -1)
