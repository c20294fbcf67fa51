"""The fault-free output of every neuron of a layer as one vectorised float expression.

The executor turns an accumulator into the value a neuron writes with ``resilq.arith`` (requantize, and for a
protected neuron its slots merged by the corrector). For fault-free slots every scheme collapses to

    out = scale * clip(rint(acc * 2**-shift), lo, hi)

* unprotected, ``tmr``, ``dup-and``, ``dup-min``: ``scale = 1``, the layer's shift and bounds (a corrector
  of identical copies returns the copy);
* ``split``: both halves are ``split_half(acc) = clip(round(acc / 2**(shift+1)), 0, 63)``, whose bit 6 is 0,
  so the LCU returns ``((h & h) & 0xBF) << 1 = 2h``: ``scale = 2``, ``shift + 1``, bounds ``[0, 63]``.

``rint`` rounds half to even, and ``acc * 2**-shift`` is exact in binary floating point whenever ``acc`` is an
integer the float type holds exactly, so this is bit-for-bit :func:`resilq.arith.requantize` (tested against
it on every tie and saturation edge, and checked against the executor's golden tensors at run time). It is
the propagation's hot path: three float passes instead of a dozen int64 ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith import SPLIT_HALF_MAX, Scheme
from ..ir.layers import ComputeLayer, worst_case_accumulator
from ..ir.model import Model

#: Integers below this magnitude are exact in float32 (24-bit significand).
FLOAT32_EXACT = 2**24


def accumulator_dtype(layer: ComputeLayer) -> type:
    """Float dtype that holds every accumulator and every accumulator *change* of ``layer`` exactly.

    A change caused by new int8 inputs is bounded by ``255 * sum|w|``; a new accumulator by the worst case.
    """
    w = np.abs(layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)).sum(axis=1)
    worst = max(int((w * 255).max(initial=0)), worst_case_accumulator(layer))
    return np.float32 if worst < FLOAT32_EXACT else np.float64


@dataclass(frozen=True, eq=False)
class OutputMap:
    """Per-neuron parameters of ``out = scale * clip(rint(acc * factor), lo, hi)`` for one compute layer.

    ``factor = 2**-shift``; all arrays are flat over the layer's output (C-H-W order). ``identity`` marks a
    classifier without requantization (its output is the accumulator itself).
    """

    factor: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    scale: np.ndarray
    dtype: type
    identity: bool = False
    #: The layer's range restriction after the corrector: values above ``clip_bound`` become the bound
    #: (``clip_zero`` False) or 0 (True); None: no clip.
    clip_bound: float | None = None
    clip_zero: bool = False

    @classmethod
    def of(cls, model: Model, index: int) -> OutputMap:
        layer = model.layers[index]
        dtype = accumulator_dtype(layer)
        n = model.out_size(index)
        if layer.requant is None:
            one = np.ones(n, dtype)
            return cls(one, one, one, one, dtype, identity=True)
        per_channel = n // layer.out_channels
        shift = np.repeat(layer.requant.shift.astype(np.int64), per_channel)
        lo_v, hi_v = layer.requant.bounds
        lo = np.full(n, lo_v, dtype=np.float64)
        hi = np.full(n, hi_v, dtype=np.float64)
        scale = np.ones(n, dtype=np.float64)
        prot = layer.protection
        if prot is not None and prot.n_protected and prot.scheme is Scheme.SPLIT:
            idx = prot.neurons
            shift[idx] += 1
            lo[idx], hi[idx], scale[idx] = 0, SPLIT_HALF_MAX, 2
        factor = np.ldexp(1.0, -shift)
        clip = getattr(layer, "clip", None)
        return cls(factor.astype(dtype), lo.astype(dtype), hi.astype(dtype), scale.astype(dtype), dtype,
                   clip_bound=None if clip is None else float(clip.bound),
                   clip_zero=clip is not None and clip.variant == "zero")

    @property
    def has_scale(self) -> bool:
        return bool(np.any(self.scale != 1))

    def columns(self, cols: np.ndarray) -> ColumnMap:
        """The map restricted to output columns ``cols`` (for a receptive cone)."""
        if self.identity:
            return ColumnMap(None, None, None, None)
        lo, hi, scale = self.lo[cols], self.hi[cols], self.scale[cols]
        uniform = lo.size and lo.min() == lo.max() and hi.min() == hi.max()
        return ColumnMap(self.factor[cols], lo[0] if uniform else lo, hi[0] if uniform else hi,
                         scale if np.any(scale != 1) else None, self.clip_bound, self.clip_zero)

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """Outputs of every neuron for accumulators ``acc`` of shape (N, n_out)."""
        return self.columns(np.arange(self.factor.size))(acc)


@dataclass(frozen=True, eq=False)
class ColumnMap:
    factor: np.ndarray | None
    lo: np.ndarray | float | None
    hi: np.ndarray | float | None
    scale: np.ndarray | None
    clip_bound: float | None = None
    clip_zero: bool = False

    def __call__(self, acc: np.ndarray, restrict: bool = True) -> np.ndarray:
        """Apply in place to a float accumulator block (K, len(cols)) and return it (``restrict``: with the
        layer's clip, :func:`resilq.arith.clip_range`)."""
        if self.factor is None:
            return acc
        np.multiply(acc, self.factor, out=acc)
        np.rint(acc, out=acc)
        np.clip(acc, self.lo, self.hi, out=acc)
        if self.scale is not None:
            np.multiply(acc, self.scale, out=acc)
        if restrict and self.clip_bound is not None:
            if self.clip_zero:
                acc[acc > self.clip_bound] = 0
            else:
                np.minimum(acc, self.clip_bound, out=acc)
        return acc

    def box(self, acc_lo: np.ndarray, acc_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on the outputs of every accumulator in ``[acc_lo, acc_hi]`` (in place). Requantization is
        monotone; the ``zero`` clip is not: a box reaching above the bound also holds 0."""
        lo, hi = self(acc_lo, restrict=False), self(acc_hi, restrict=False)
        if self.factor is None or self.clip_bound is None:
            return lo, hi
        b = self.clip_bound
        if not self.clip_zero:
            return np.minimum(lo, b, out=lo), np.minimum(hi, b, out=hi)
        new_lo = np.where(lo > b, 0, np.where(hi > b, np.minimum(lo, 0), lo)).astype(lo.dtype)
        new_hi = np.where(lo > b, 0, np.minimum(hi, b)).astype(hi.dtype)
        return new_lo, new_hi
