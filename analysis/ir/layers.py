"""The layers of resilq's integer IR (SPEC §1) and their per-layer protection (SPEC §4).

Layers are frozen dataclasses holding numpy arrays: int8 weights, int32 biases and a per-output-channel
requantization shift. A layer never knows how it was trained; it only states the integer computation.
Shapes are (C, H, W) for feature maps and (F,) for vectors, batch excluded; a neuron is addressed by
its flat index in C-H-W order, which is also its slot index at the fault site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

import numpy as np

from ..arith import CLIP_VARIANTS, INT32_MAX, MAX_SHIFT, Scheme, relu_bounds
from ..errors import UnsupportedModelError

Shape = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Requant:
    """int32 accumulator -> int8: ``requantize(acc, shift[channel], *bounds)``; ReLU fused as lo = 0."""

    shift: np.ndarray  # int32 [O]
    relu: bool

    @property
    def bounds(self) -> tuple[int, int]:
        return relu_bounds(self.relu)


@dataclass(frozen=True, eq=False)
class Protection:
    """The protected neurons of one layer and how their slots are merged.

    ``neurons`` are sorted, unique flat output indices. Protected neuron ``p`` (its position in
    ``neurons``) owns the original slot ``neurons[p]`` and the shadow slots
    ``n_out + p * (copies - 1) + j`` for ``j`` in ``0 .. copies - 2`` (see :mod:`resilq.faults`).

    ``own_weights``: where the copies' stored words come from. ``False`` (the default, and what the accelerator
    builds): every copy reads the layer's one stored weight row and bias of its channel, so a flipped stored word
    (a ``weight`` fault) reaches the original and its shadows alike. ``True``: shadow copy ``j`` reads its own
    stored copy ``j`` of its channel's row and bias (copy 0 is the layer's own words), like duplicated filters
    with their own weights; a flipped word of one copy reaches only that copy, which the corrector can then
    outvote or mask, at the memory cost of ``copies - 1`` extra rows per channel holding a protected neuron
    (:meth:`resilq.ir.Model.copied_channels`).
    """

    scheme: Scheme
    neurons: np.ndarray  # int32 [P]
    own_weights: bool = False

    @property
    def copies(self) -> int:
        return self.scheme.copies

    @property
    def n_protected(self) -> int:
        return int(self.neurons.size)

    @property
    def n_shadows(self) -> int:
        return self.n_protected * (self.copies - 1)


@dataclass(frozen=True)
class Clip:
    """Range restriction of one layer's outputs (Ranger-style): after the corrector, every value the next
    layer reads that is above ``bound`` becomes ``bound`` (variant ``bound``) or 0 (variant ``zero``)."""

    bound: int
    variant: str = "bound"

    def check(self, where: str) -> None:
        if not isinstance(self.bound, (int, np.integer)) or not 0 <= int(self.bound) <= 127:
            raise UnsupportedModelError(f"{where}: clip bound must be an integer in [0, 127], got {self.bound!r}")
        if self.variant not in CLIP_VARIANTS:
            raise UnsupportedModelError(f"{where}: unknown clip variant {self.variant!r} (known: {', '.join(CLIP_VARIANTS)})")


@dataclass(frozen=True, eq=False)
class Conv2d:
    name: str
    weight: np.ndarray  # int8 [O, I, K, K]
    bias: np.ndarray  # int32 [O]
    requant: Requant | None
    stride: int = 1
    padding: int = 0
    protection: Protection | None = None
    clip: Clip | None = None
    kind: ClassVar[str] = "conv2d"

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[2])

    @property
    def fan_in(self) -> int:
        return int(np.prod(self.weight.shape[1:]))

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = in_shape
        k, s, p = self.kernel, self.stride, self.padding
        return (self.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


@dataclass(frozen=True, eq=False)
class Linear:
    name: str
    weight: np.ndarray  # int8 [O, I]
    bias: np.ndarray  # int32 [O]
    requant: Requant | None
    protection: Protection | None = None
    clip: Clip | None = None
    kind: ClassVar[str] = "linear"

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def fan_in(self) -> int:
        return self.in_features

    def output_shape(self, in_shape: Shape) -> Shape:
        return (self.out_channels,)


@dataclass(frozen=True, eq=False)
class MaxPool2d:
    name: str
    kernel: int
    stride: int
    kind: ClassVar[str] = "maxpool2d"

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = in_shape
        return (c, (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1)


@dataclass(frozen=True, eq=False)
class Flatten:
    name: str
    kind: ClassVar[str] = "flatten"

    def output_shape(self, in_shape: Shape) -> Shape:
        return (int(np.prod(in_shape)),)


Layer = Union[Conv2d, Linear, MaxPool2d, Flatten]
ComputeLayer = Union[Conv2d, Linear]
LAYER_KINDS: dict[str, type] = {cls.kind: cls for cls in (Conv2d, Linear, MaxPool2d, Flatten)}


def is_compute(layer: Layer) -> bool:
    return isinstance(layer, (Conv2d, Linear))


def neuron_shift(layer: ComputeLayer, out_shape: Shape, neurons: np.ndarray) -> np.ndarray:
    """Requantization shift of each flat output index (the shift of its output channel)."""
    per_channel = int(np.prod(out_shape[1:])) if len(out_shape) > 1 else 1
    return layer.requant.shift[np.asarray(neurons) // per_channel]


def check_compute_layer(layer: ComputeLayer, in_shape: Shape, is_last: bool) -> None:
    """Raise :class:`UnsupportedModelError` naming the layer if its integer parameters are not valid."""
    n = f"layer {layer.name!r} ({layer.kind})"
    w, b = layer.weight, layer.bias
    want_ndim = 4 if isinstance(layer, Conv2d) else 2
    if not isinstance(w, np.ndarray) or w.dtype != np.int8 or w.ndim != want_ndim:
        raise UnsupportedModelError(f"{n}: weight must be an int8 array of {want_ndim} dims, got "
                                    f"{getattr(w, 'dtype', type(w))}{list(getattr(w, 'shape', []))}")
    if not isinstance(b, np.ndarray) or b.dtype != np.int32 or b.shape != (w.shape[0],):
        raise UnsupportedModelError(f"{n}: bias must be int32[{w.shape[0]}], got "
                                    f"{getattr(b, 'dtype', type(b))}{list(getattr(b, 'shape', []))}")
    if isinstance(layer, Conv2d):
        if len(in_shape) != 3:
            raise UnsupportedModelError(f"{n}: expects a (C, H, W) input, gets shape {in_shape}")
        if w.shape[2] != w.shape[3]:
            raise UnsupportedModelError(f"{n}: only square kernels are supported, got {w.shape[2]}x{w.shape[3]}")
        if w.shape[1] != in_shape[0]:
            raise UnsupportedModelError(f"{n}: weight expects {w.shape[1]} input channels, input has {in_shape[0]}")
        if layer.stride < 1 or layer.padding < 0:
            raise UnsupportedModelError(f"{n}: stride must be >= 1 and padding >= 0")
        if min(layer.output_shape(in_shape)[1:]) < 1:
            raise UnsupportedModelError(f"{n}: kernel {layer.kernel} does not fit the {in_shape} input")
    elif len(in_shape) != 1 or in_shape[0] != w.shape[1]:
        raise UnsupportedModelError(f"{n}: expects {w.shape[1]} input features, gets shape {in_shape} "
                                    "(insert a Flatten layer before a Linear layer that follows a Conv2d)")
    if layer.requant is None:
        if not is_last:
            raise UnsupportedModelError(f"{n}: only the final classifier may output raw int32 accumulators")
    else:
        shift = layer.requant.shift
        if not isinstance(shift, np.ndarray) or shift.shape != (w.shape[0],) or shift.dtype.kind != "i":
            raise UnsupportedModelError(f"{n}: requantization shift must be an integer array of length {w.shape[0]}")
        if shift.min() < 0 or shift.max() > MAX_SHIFT:
            raise UnsupportedModelError(f"{n}: requantization shift {int(shift.min())}..{int(shift.max())} is outside "
                                        f"[0, {MAX_SHIFT}]: the output scale must be coarser than the accumulator scale")
    worst = worst_case_accumulator(layer)
    if worst > INT32_MAX:
        raise UnsupportedModelError(f"{n}: the int32 accumulator can overflow (worst case |acc| = {worst} > {INT32_MAX}); "
                                    "reduce the fan-in or the weight magnitudes")


def worst_case_accumulator(layer: ComputeLayer) -> int:
    """Largest |acc| any int8 input can produce: max over outputs of sum|w| * 128 + |b|."""
    w = np.abs(layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)).sum(axis=1)
    return int((w * 128 + np.abs(layer.bias.astype(np.int64))).max())


def protection_for(layer: Layer) -> Protection | None:
    return getattr(layer, "protection", None)


__all__ = [
    "Requant", "Protection", "Clip", "Conv2d", "Linear", "MaxPool2d", "Flatten", "Layer", "ComputeLayer",
    "LAYER_KINDS", "is_compute", "neuron_shift", "check_compute_layer", "worst_case_accumulator",
    "protection_for",
]
