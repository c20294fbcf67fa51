"""Integer IR -> Brevitas ``nn.Sequential``: the way back, so an exported (and e.g. pruned) network can be
fine-tuned with quantization-aware training and exported again.

The rebuilt network uses the zoo's own quantizers (:mod:`resilq.train.quantizers`) initialised from the
power-of-two exponents that export recorded in ``metadata["quant_exponents"]``:

* weights: ``w_int * 2**e_w`` (fixed-point weight quantizers recompute the same scale from max|w|);
* biases: ``b_int * 2**(e_in + e_w)`` (``Int32Bias`` at the accumulator scale);
* activations (input quantizer, ``QuantReLU``/``QuantIdentity``): the learned log2-scale parameter is set
  to the middle of the interval that rounds to ``e_out`` and statistics collection is switched off, so
  training continues from exactly the exported scales.

Exporting the rebuilt network gives a model that computes bit-identically to the source IR (tested on
data). If an output channel's max|w_int| is below 64 (possible after pruning a per-tensor layer), Brevitas
picks a scale one power of two finer: the integers double, the requantization shift grows by one, and the
computation is still the same.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

from ..errors import UnsupportedModelError
from ..ir.layers import Conv2d, Flatten, Linear, MaxPool2d
from ..ir.model import Model
from .export import ExportTrace
from .quantizers import act_quant, classifier, conv, input_quant, linear

_F32_EXACT = 2**24


def _exponents(model: Model) -> dict:
    exps = model.metadata.get("quant_exponents")
    if not isinstance(exps, dict):
        raise UnsupportedModelError(f"model {model.name} carries no quant_exponents in its metadata (models exported "
                                    "by `resilq train` do); without them the Brevitas network cannot be rebuilt")
    return exps


def _layer_exps(exps: dict, name: str, out_channels: int) -> tuple[int, np.ndarray, int | None]:
    if name not in exps:
        raise UnsupportedModelError(f"quant_exponents has no entry for layer {name!r}")
    e = exps[name]
    w = np.broadcast_to(np.asarray(e["weight"], dtype=np.int64), (out_channels,)).copy()
    return int(e["input"]), w, (None if e.get("output") is None else int(e["output"]))


def _exact_float(values: np.ndarray, exps: np.ndarray, what: str) -> torch.Tensor:
    """``values * 2**exps`` as float32, refusing integers float32 cannot hold exactly."""
    if np.abs(values.astype(np.int64)).max(initial=0) >= _F32_EXACT:
        raise UnsupportedModelError(f"{what} has integers beyond 2**24, which a float32 Brevitas parameter cannot "
                                    "hold exactly")
    return torch.from_numpy((values.astype(np.float64) * np.exp2(exps.astype(np.float64))).astype(np.float32))


def _scaling_impl(module: nn.Module) -> nn.Module:
    impl = module.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl
    if not hasattr(impl, "value") or not hasattr(impl, "collect_stats_steps"):
        raise UnsupportedModelError(f"{type(module).__name__}: unexpected activation quantizer; expected the "
                                    "runtime-statistics fixed-point quantizer of resilq.train.quantizers")
    return impl


def _set_activation_exponent(module: nn.Module, exponent: int) -> None:
    """Make a fixed-point activation quantizer use the scale ``2**exponent`` (and keep learning from it)."""
    impl = _scaling_impl(module)
    probe = torch.zeros(1, 4)

    def scale_for(value: float) -> float:
        impl.load_state_dict({"value": torch.full_like(impl.value, value)}, strict=False)
        module.eval()
        with torch.no_grad():
            return float(module(probe).scale.reshape(-1)[0])

    # The learned value v maps to the scale 2**(ceil(v) - offset); find the offset, then aim at the middle
    # of the interval (e - 1, e] + offset so small training steps cannot flip the rounding.
    offset = -int(round(np.log2(scale_for(-0.5))))
    scale = scale_for(exponent + offset - 0.5)
    if scale != 2.0**exponent:
        raise UnsupportedModelError(f"could not set the activation scale to 2**{exponent} (got {scale})")


def to_brevitas(model: Model, with_trace: bool = False):
    """A Brevitas ``nn.Sequential`` that computes ``model`` (protection is ignored: it is not trained).

    Module names follow the zoo: each compute layer keeps its IR name, its activation is ``<name>_act``.
    Returns the network, or ``(net, ExportTrace)`` when ``with_trace`` (for ``compare_brevitas``).
    """
    exps = _exponents(model)
    per_channel = model.metadata.get("per_channel_weights")
    modules: OrderedDict[str, nn.Module] = OrderedDict(input_quant=input_quant())
    taps: list[str] = []
    params: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    acts: list[tuple[nn.Module, int]] = [(modules["input_quant"], -int(model.input.shift))]
    for i, layer in enumerate(model.layers):
        if isinstance(layer, (Conv2d, Linear)):
            e_in, e_w, e_out = _layer_exps(exps, layer.name, layer.out_channels)
            pc = bool(per_channel) if per_channel is not None else bool(np.unique(e_w).size > 1)
            if not pc and np.unique(e_w).size > 1:
                raise UnsupportedModelError(f"layer {layer.name!r} has per-channel weight exponents but the model "
                                            "says per_channel_weights is false")
            if isinstance(layer, Conv2d):
                m = conv(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride,
                         padding=layer.padding, per_channel=pc)
                w_shape = (-1, 1, 1, 1)
            elif i == model.classifier_index:
                m = classifier(layer.in_features, layer.out_channels, per_channel=pc)
                w_shape = (-1, 1)
            else:
                m = linear(layer.in_features, layer.out_channels, per_channel=pc)
                w_shape = (-1, 1)
            w = _exact_float(layer.weight, e_w.reshape(w_shape), f"weights of layer {layer.name!r}")
            b = _exact_float(layer.bias, e_in + e_w, f"bias of layer {layer.name!r}")
            params.append((m, w, b))
            modules[layer.name] = m
            if layer.requant is None:
                taps.append(layer.name)
                continue
            if e_out is None:
                raise UnsupportedModelError(f"quant_exponents of layer {layer.name!r} lack its output exponent")
            act = act_quant(relu=layer.requant.relu)
            modules[f"{layer.name}_act"] = act
            acts.append((act, e_out))
            taps.append(f"{layer.name}_act")
        elif isinstance(layer, MaxPool2d):
            modules[layer.name] = nn.MaxPool2d(layer.kernel, layer.stride)
            taps.append(layer.name)
        elif isinstance(layer, Flatten):
            modules[layer.name] = nn.Flatten()
            taps.append(layer.name)
        else:
            raise UnsupportedModelError(f"layer {layer.name!r}: cannot rebuild a {type(layer).__name__} in Brevitas")
    net = nn.Sequential(modules)
    with torch.no_grad():
        for m, w, b in params:
            m.weight.copy_(w)
            m.bias.copy_(b)
    for module, exponent in acts:
        _set_activation_exponent(module, exponent)
    net.eval()
    return (net, ExportTrace("input_quant", taps)) if with_trace else net


__all__ = ["to_brevitas"]
