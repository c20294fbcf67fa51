"""Structured output-channel pruning of the integer IR.

Removing output channel ``c`` of a Conv2d/Linear layer removes its weight row, bias and shift, and the
matching inputs of the next compute layer: an input channel of a Conv2d, or, after a Flatten, the ``H*W``
features that channel's feature map became (flat C-H-W order: features ``c*H*W .. (c+1)*H*W - 1``).
MaxPool2d keeps channels, so it passes the selection through. The classifier's outputs (the classes) are
never pruned.

The pruned network computes exactly what the original computes with the removed channels' outputs forced
to 0 (a removed channel contributes nothing downstream); the tests check exactly that, against stuck-at-0
faults on those neurons in the unpruned model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from ..errors import ParameterError, UnsupportedModelError
from ..ir.layers import Conv2d, Flatten, Linear, MaxPool2d, Requant
from ..ir.model import Model


def _check_keep(model: Model, keep: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    out = {}
    for i, channels in keep.items():
        layer = model.layers[i]
        if i == model.classifier_index:
            raise ParameterError(f"layer {layer.name!r} is the classifier: its outputs are the classes and cannot be "
                                 "pruned")
        if i not in model.neuron_layers:
            raise ParameterError(f"layer {layer.name!r} ({layer.kind}) has no output channels to prune")
        ch = np.unique(np.asarray(channels, dtype=np.int64))
        if ch.size == 0:
            raise ParameterError(f"pruning would remove every output channel of layer {layer.name!r}")
        if ch[0] < 0 or ch[-1] >= layer.out_channels:
            raise ParameterError(f"layer {layer.name!r}: kept channel index out of range [0, {layer.out_channels})")
        out[i] = ch
    return out


def prune_channels(model: Model, keep: Mapping[int, np.ndarray]) -> Model:
    """Keep only output channels ``keep[i]`` of each listed compute layer ``i``; everything else stays.

    Per-channel ``metadata["quant_exponents"][name]["weight"]`` lists are pruned along. The model must be
    unprotected (prune first, then analyse and harden the pruned network).
    """
    if model.is_protected:
        raise UnsupportedModelError(f"model {model.name} is protected; prune the unprotected network, then analyse "
                                    "and harden the pruned one")
    keep = _check_keep(model, keep)
    exps = model.metadata.get("quant_exponents")
    new_exps = dict(exps) if isinstance(exps, dict) else None
    layers = []
    sel: np.ndarray | None = None  # original indices kept along dim 0 of the current tensor (None = all)
    for i, layer in enumerate(model.layers):
        in_shape = model.in_shape(i)
        if isinstance(layer, MaxPool2d):
            layers.append(layer)
            continue
        if isinstance(layer, Flatten):
            if sel is not None and len(in_shape) == 3:
                hw = in_shape[1] * in_shape[2]
                sel = (sel[:, None] * hw + np.arange(hw)[None, :]).ravel()
            layers.append(layer)
            continue
        weight = layer.weight if sel is None else np.ascontiguousarray(layer.weight[:, sel])
        bias, requant = layer.bias, layer.requant
        out = keep.get(i)
        if out is not None:
            weight = np.ascontiguousarray(weight[out])
            bias = np.ascontiguousarray(bias[out])
            if requant is not None:
                requant = Requant(np.ascontiguousarray(requant.shift[out]), requant.relu)
            if new_exps is not None and layer.name in new_exps:
                entry = dict(new_exps[layer.name])
                w = np.broadcast_to(np.asarray(entry["weight"]), (layer.out_channels,))
                entry["weight"] = w[out].tolist()
                new_exps[layer.name] = entry
        if isinstance(layer, (Conv2d, Linear)):
            layers.append(dataclasses.replace(layer, weight=weight, bias=bias, requant=requant))
        sel = out
    meta = dict(model.metadata)
    if new_exps is not None:
        meta["quant_exponents"] = new_exps
    return Model(model.input, tuple(layers), meta)


def removed_outputs(model: Model, keep: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Flat output indices (neurons) of ``model`` that pruning to ``keep`` removes, per layer."""
    out = {}
    for i, channels in _check_keep(model, keep).items():
        shape = model.out_shape(i)
        per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        gone = np.setdiff1d(np.arange(shape[0]), channels)
        out[i] = (gone[:, None] * per + np.arange(per)[None, :]).ravel()
    return out


__all__ = ["prune_channels", "removed_outputs"]
