"""The integer model: input quantization + a sequence of IR layers, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..arith import INT8_MAX, INT8_MIN, Scheme
from ..errors import ShapeError, UnsupportedModelError
from .layers import (
    ComputeLayer,
    Conv2d,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    Protection,
    Shape,
    check_compute_layer,
    is_compute,
)


@dataclass(frozen=True)
class InputQuant:
    """How float inputs become int8: ``x_int = saturate(round_half_even(x * 2**shift))``."""

    shape: Shape  # (C, H, W)
    shift: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != tuple(self.shape):
            raise ShapeError(f"input batch has shape {x.shape}, the model expects (N, {', '.join(map(str, self.shape))})")
        # x * 2**shift is exact in float32 (a power of two); rint rounds half to even like torch.round.
        scaled = x * np.float32(2.0**self.shift)
        return np.clip(np.rint(scaled), INT8_MIN, INT8_MAX).astype(np.int8)


@dataclass(frozen=True, eq=False)
class Model:
    """A trained int8 network in resilq's integer IR. Construction validates it."""

    input: InputQuant
    layers: tuple[Layer, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        self._validate()

    # ---------------------------------------------------------------------------------------------- shapes
    @cached_property
    def shapes(self) -> tuple[Shape, ...]:
        """Input shape followed by the output shape of every layer (batch excluded)."""
        shapes = [tuple(self.input.shape)]
        for layer in self.layers:
            shapes.append(tuple(int(d) for d in layer.output_shape(shapes[-1])))
        return tuple(shapes)

    def in_shape(self, index: int) -> Shape:
        return self.shapes[index]

    def out_shape(self, index: int) -> Shape:
        return self.shapes[index + 1]

    def out_size(self, index: int) -> int:
        return int(np.prod(self.out_shape(index)))

    @property
    def n_classes(self) -> int:
        return self.out_size(len(self.layers) - 1)

    @property
    def classifier_index(self) -> int:
        return len(self.layers) - 1

    # ---------------------------------------------------------------------------------------------- neurons
    @cached_property
    def neuron_layers(self) -> tuple[int, ...]:
        """Indices of the layers whose outputs are neurons: every Conv2d/Linear but the classifier."""
        return tuple(i for i, layer in enumerate(self.layers[:-1]) if is_compute(layer))

    def neurons_in(self, index: int) -> int:
        return self.out_size(index) if index in self.neuron_layers else 0

    @property
    def n_neurons(self) -> int:
        return sum(self.out_size(i) for i in self.neuron_layers)

    def protection(self, index: int) -> Protection | None:
        return getattr(self.layers[index], "protection", None)

    def shadows_in(self, index: int) -> int:
        prot = self.protection(index)
        return prot.n_shadows if prot is not None else 0

    def slots_in(self, index: int) -> int:
        """Fault sites of a neuron layer: its neurons plus the shadow slots of its protected neurons."""
        return self.neurons_in(index) + self.shadows_in(index)

    @property
    def n_shadows(self) -> int:
        return sum(self.shadows_in(i) for i in self.neuron_layers)

    @property
    def n_slots(self) -> int:
        """Network size in the paper's sense: neurons + shadow slots."""
        return self.n_neurons + self.n_shadows

    @property
    def n_protected(self) -> int:
        return sum(p.n_protected for i in self.neuron_layers if (p := self.protection(i)) is not None)

    @property
    def is_protected(self) -> bool:
        return any(self.protection(i) is not None and self.protection(i).n_protected for i in self.neuron_layers)

    # ---------------------------------------------------------------------------------------------- cost
    def macs_of(self, index: int, include_shadows: bool = True) -> int:
        layer = self.layers[index]
        if not is_compute(layer):
            return 0
        macs = self.out_size(index) * layer.fan_in
        if include_shadows:
            macs += self.shadows_in(index) * layer.fan_in
        return int(macs)

    def macs(self, include_shadows: bool = True) -> int:
        return sum(self.macs_of(i, include_shadows) for i in range(len(self.layers)))

    def params(self) -> int:
        """Stored words: every compute layer's weights and biases, plus the shadow copies' own rows and biases
        where a protection stores them (``Protection.own_weights``)."""
        base = sum(int(layer.weight.size + layer.bias.size) for layer in self.layers if is_compute(layer))
        return base + sum(self.copied_params(i) for i in self.neuron_layers)

    def copied_channels(self, index: int) -> np.ndarray:
        """Output channels of layer ``index`` whose shadow copies read their own stored words (sorted; empty
        unless the layer's protection has ``own_weights``): the channels holding a protected neuron."""
        prot = self.protection(index)
        if prot is None or not prot.own_weights or not prot.n_protected:
            return np.zeros(0, dtype=np.int64)
        shape = self.out_shape(index)
        hw = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return np.unique(prot.neurons.astype(np.int64) // hw)

    def copied_params(self, index: int) -> int:
        """Extra stored words of layer ``index``'s own-weight copies: ``copies - 1`` x (fan-in + bias) per copied
        channel."""
        channels = self.copied_channels(index)
        if not channels.size:
            return 0
        return int(channels.size * (self.protection(index).copies - 1) * (self.layers[index].fan_in + 1))

    # ---------------------------------------------------------------------------------------------- identity
    @cached_property
    def hash(self) -> str:
        """SHA-256 of the integer network and its protection (layer names and metadata excluded)."""
        from .io import model_digest

        return model_digest(self, include_protection=True)

    @cached_property
    def network_hash(self) -> str:
        """SHA-256 of the integer network alone: equal for a model and its hardened variants."""
        from .io import model_digest

        return model_digest(self, include_protection=False)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "model"))

    # ---------------------------------------------------------------------------------------------- edits
    def replace(self, **changes: Any) -> Model:
        return dataclasses.replace(self, **changes)

    def with_layer(self, index: int, layer: Layer) -> Model:
        layers = list(self.layers)
        layers[index] = layer
        return self.replace(layers=tuple(layers))

    def with_protection(self, protections: Mapping[int, Protection | None], **metadata: Any) -> Model:
        """A copy whose layers ``index`` carry ``protections[index]`` (``None`` removes protection)."""
        layers = list(self.layers)
        for index, prot in protections.items():
            layers[index] = dataclasses.replace(layers[index], protection=prot)
        return self.replace(layers=tuple(layers), metadata={**self.metadata, **metadata})

    def clip(self, index: int):
        """The range restriction of layer ``index`` (None: none)."""
        return getattr(self.layers[index], "clip", None)

    @property
    def has_clip(self) -> bool:
        return any(self.clip(i) is not None for i in self.neuron_layers)

    def with_clip(self, clips: Mapping[int, Any], **metadata: Any) -> Model:
        """A copy whose layers ``index`` carry the range restriction ``clips[index]`` (None removes it)."""
        layers = list(self.layers)
        for index, clip in clips.items():
            layers[index] = dataclasses.replace(layers[index], clip=clip)
        return self.replace(layers=tuple(layers), metadata={**self.metadata, **metadata})

    def without_clip(self) -> Model:
        return self.with_clip({i: None for i in self.neuron_layers if self.clip(i) is not None})

    def unprotected(self) -> Model:
        return self.with_protection({i: None for i in self.neuron_layers if self.protection(i) is not None})

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return self.input.quantize(x)

    # ---------------------------------------------------------------------------------------------- checks
    def _validate(self) -> None:
        shape = tuple(self.input.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise UnsupportedModelError(f"input shape must be (C, H, W) with positive sizes, got {shape}")
        if not isinstance(self.input.shift, (int, np.integer)) or not -31 <= int(self.input.shift) <= 31:
            raise UnsupportedModelError(f"input quantization shift must be an integer in [-31, 31], got {self.input.shift!r}")
        if not self.layers:
            raise UnsupportedModelError("a model needs at least one layer")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise UnsupportedModelError(f"layer names must be unique non-empty strings, got {names}")
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if is_compute(layer):
                check_compute_layer(layer, shape, is_last=(i == last))
            elif isinstance(layer, MaxPool2d):
                if len(shape) != 3:
                    raise UnsupportedModelError(f"layer {layer.name!r} (maxpool2d): expects a (C, H, W) input, gets {shape}")
                if layer.kernel < 1 or layer.stride < 1 or min(layer.output_shape(shape)[1:]) < 1:
                    raise UnsupportedModelError(f"layer {layer.name!r} (maxpool2d): kernel {layer.kernel}/stride "
                                                f"{layer.stride} do not fit the {shape} input")
            elif isinstance(layer, Flatten):
                pass
            else:
                raise UnsupportedModelError(f"layer {getattr(layer, 'name', '?')!r}: unsupported IR layer type {type(layer).__name__}")
            shape = tuple(int(d) for d in layer.output_shape(shape))
        if not is_compute(self.layers[last]) or len(shape) != 1:
            raise UnsupportedModelError("the last layer must be the classifier: a Linear layer producing one score per class")
        for i, layer in enumerate(self.layers):
            prot = getattr(layer, "protection", None)
            if prot is not None:
                self._check_protection(i, layer, prot)
            clip = getattr(layer, "clip", None)
            if clip is not None:
                where = f"layer {layer.name!r}"
                if i == last:
                    raise UnsupportedModelError(f"{where} is the classifier; its outputs are the class scores and cannot "
                                                "be clipped")
                clip.check(where)

    def _check_protection(self, index: int, layer: ComputeLayer, prot: Protection) -> None:
        n = f"layer {layer.name!r}"
        if index == len(self.layers) - 1:
            raise UnsupportedModelError(f"{n} is the classifier; its outputs are not neurons and cannot be protected")
        if not isinstance(prot.scheme, Scheme):
            raise UnsupportedModelError(f"{n}: protection scheme must be a resilq.arith.Scheme, got {prot.scheme!r}")
        if not isinstance(prot.own_weights, (bool, np.bool_)):
            raise UnsupportedModelError(f"{n}: own_weights must be a bool, got {prot.own_weights!r}")
        neurons = prot.neurons
        if not isinstance(neurons, np.ndarray) or neurons.ndim != 1 or neurons.dtype.kind != "i":
            raise UnsupportedModelError(f"{n}: protected neurons must be a 1-D integer array")
        size = int(np.prod(self.shapes[index + 1]))
        if neurons.size and (neurons.min() < 0 or neurons.max() >= size):
            raise UnsupportedModelError(f"{n}: protected neuron index out of range [0, {size})")
        if neurons.size > 1 and np.any(np.diff(neurons) <= 0):
            raise UnsupportedModelError(f"{n}: protected neurons must be sorted and unique")
        if prot.scheme is Scheme.SPLIT and not layer.requant.relu:
            raise UnsupportedModelError(f"{n}: 'split' needs a non-negative fault-free output (a ReLU layer); in two's "
                                        "complement a negative half-value has bit 6 set and the LCU would corrupt it")
        if prot.scheme is Scheme.SPLIT and int(layer.requant.shift.max()) + 1 > 31:
            raise UnsupportedModelError(f"{n}: 'split' needs one extra bit of requantization shift, the layer already uses 31")


def compute_layers(model: Model) -> Sequence[tuple[int, ComputeLayer]]:
    return [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, (Conv2d, Linear))]
