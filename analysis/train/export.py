"""Brevitas ``nn.Sequential`` -> resilq integer IR, with one handler per layer kind.

Supported layers (in ``nn.Sequential`` order, nested Sequentials flattened):

* ``QuantIdentity`` first: the input quantizer;
* ``QuantConv2d`` / ``QuantLinear`` followed by ``QuantReLU`` (requantize + ReLU) or ``QuantIdentity``
  (requantize); the last ``QuantLinear`` without an output quantizer is the classifier (int32 logits);
* ``nn.MaxPool2d`` / ``QuantMaxPool2d`` (no padding, no dilation, floor mode); ``nn.Flatten``;
* ``nn.Dropout`` (identity at inference, dropped).

Every scale must be a power of two and every quantizer signed 8-bit with zero point 0 (weights and
activations) or up to 32-bit (biases); anything else is refused with a message that names the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ..errors import UnsupportedModelError
from ..ir.layers import Conv2d, Flatten, Layer, Linear, MaxPool2d, Requant
from ..ir.model import InputQuant, Model


@dataclass
class ExportTrace:
    """Which Brevitas module produces each IR layer's output (for the chain-of-trust comparison)."""

    input_module: str
    layer_modules: list[str]


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if not isinstance(module, nn.Sequential):
        raise UnsupportedModelError(
            f"resilq exports nn.Sequential models; {prefix or 'the model'} is a {type(module).__name__} "
            "(wrap the layers in nn.Sequential in forward order)")
    out = []
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        out.extend(_leaves(child, path) if isinstance(child, nn.Sequential) else [(path, child)])
    return out


def _exp2(scale: torch.Tensor | float, what: str) -> np.ndarray:
    """Integer exponents of power-of-two scales, or a clear refusal."""
    s = np.atleast_1d(np.asarray(torch.as_tensor(scale).detach().cpu().double().numpy(), dtype=np.float64)).reshape(-1)
    with np.errstate(divide="ignore"):
        e = np.log2(s)
    if not np.all(np.isfinite(e)) or not np.array_equal(np.exp2(np.round(e)), s):
        raise UnsupportedModelError(f"{what} uses a scale that is not a power of two ({s[:4].tolist()}); resilq's "
                                    "bit-true integer contract needs fixed-point quantizers such as "
                                    "Int8ActPerTensorFixedPoint / Int8WeightPerTensorFixedPoint")
    return np.round(e).astype(np.int64)


def _is_quant_act(m: nn.Module) -> bool:
    import brevitas.nn as qnn

    return isinstance(m, (qnn.QuantReLU, qnn.QuantIdentity))


def _check_int8(qt, what: str, signed_required: bool = True) -> None:
    bw = int(torch.as_tensor(qt.bit_width).item())
    if bw > 8:
        raise UnsupportedModelError(f"{what} is quantized to {bw} bits; the accelerator's datapath is int8")
    if signed_required and not bool(qt.signed):
        raise UnsupportedModelError(f"{what} uses an unsigned quantizer; resilq's int8 contract needs a signed one "
                                    "(e.g. Int8ActPerTensorFixedPoint, whose ReLU outputs lie in [0, 127])")
    if torch.any(torch.as_tensor(qt.zero_point) != 0):
        raise UnsupportedModelError(f"{what} has a non-zero zero point; only symmetric quantization is supported")


def check_structure(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's leaves in forward order, or a refusal naming the first unsupported layer.

    Cheap and static: call it before training so an unexportable model fails in a second, not after an hour.
    """
    import brevitas.nn as qnn

    leaves = [(n, m) for n, m in _leaves(net) if not isinstance(m, nn.Dropout)]
    supported = (qnn.QuantIdentity, qnn.QuantReLU, qnn.QuantConv2d, qnn.QuantLinear, nn.MaxPool2d, nn.Flatten)
    qmax = getattr(qnn, "QuantMaxPool2d", None)
    for name, m in leaves:
        if not isinstance(m, supported) and not (qmax is not None and isinstance(m, qmax)):
            hint = " (use brevitas.nn.QuantReLU with a signed int8 fixed-point quantizer)" if isinstance(m, nn.ReLU) else ""
            raise UnsupportedModelError(f"unsupported layer {name!r} of type {type(m).__name__}{hint}; resilq supports "
                                        "QuantIdentity, QuantConv2d, QuantLinear, QuantReLU, MaxPool2d, Flatten, Dropout")
    if not leaves or not isinstance(leaves[0][1], qnn.QuantIdentity):
        raise UnsupportedModelError("the first layer must be a QuantIdentity that quantizes the input to int8")
    return leaves


def export_brevitas(net: nn.Module, input_shape: tuple[int, int, int], metadata: dict | None = None,
                    with_trace: bool = False):
    """Export a trained Brevitas ``nn.Sequential`` to a :class:`~resilq.ir.Model`.

    Returns the model, or ``(model, ExportTrace)`` when ``with_trace``.
    """
    import brevitas.nn as qnn
    from brevitas.quant_tensor import QuantTensor

    leaves = check_structure(net)

    # One forward pass in eval mode records every leaf's input and output quant tensors.
    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, (inp[0], out))) for n, m in leaves]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros((1, *input_shape)))
    except Exception as exc:  # a shape mismatch inside torch: say which input shape was tried
        raise UnsupportedModelError(f"the model does not run on an input of shape {tuple(input_shape)}: {exc}") from exc
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)

    first_name, first = leaves[0]
    in_qt = seen[first_name][1]
    if not isinstance(in_qt, QuantTensor):
        raise UnsupportedModelError(f"{first_name!r}: the input QuantIdentity must use return_quant_tensor=True")
    _check_int8(in_qt, f"input quantizer {first_name!r}")
    input_q = InputQuant(tuple(int(d) for d in input_shape), int(-_exp2(in_qt.scale, f"input quantizer {first_name!r}")[0]))

    layers: list[Layer] = []
    taps: list[str] = []
    quant_info: dict[str, dict] = {}
    i = 1
    while i < len(leaves):
        name, m = leaves[i]
        if isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear)):
            nxt = leaves[i + 1] if i + 1 < len(leaves) else None
            act = nxt if nxt is not None and _is_quant_act(nxt[1]) else None
            if act is None and nxt is not None:
                raise UnsupportedModelError(f"layer {name!r} must be followed by QuantReLU or QuantIdentity "
                                            f"(found {type(nxt[1]).__name__} {nxt[0]!r}); only the classifier may end the model")
            layer, info = _compute_layer(name, m, seen[name][0], seen[act[0]][1] if act else None,
                                         isinstance(act[1], qnn.QuantReLU) if act else False)
            layers.append(layer)
            quant_info[name] = info
            taps.append(act[0] if act else name)
            i += 2 if act else 1
            continue
        if isinstance(m, nn.MaxPool2d) or type(m).__name__ == "QuantMaxPool2d":
            layers.append(_maxpool(name, m))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise UnsupportedModelError(f"layer {name!r}: only Flatten(start_dim=1, end_dim=-1) is supported")
            layers.append(Flatten(name))
        else:
            raise UnsupportedModelError(f"layer {name!r} ({type(m).__name__}) is not preceded by a Conv2d/Linear layer; "
                                        "activation quantizers must directly follow a compute layer")
        taps.append(name)
        i += 1
    meta = {"quant_exponents": quant_info, **(metadata or {})}
    model = Model(input_q, tuple(layers), meta)
    return (model, ExportTrace(first_name, taps)) if with_trace else model


def _maxpool(name: str, m: nn.Module) -> MaxPool2d:
    def single(v, what):
        v = v if isinstance(v, (tuple, list)) else (v, v)
        if v[0] != v[1]:
            raise UnsupportedModelError(f"layer {name!r}: non-square max-pool {what} {tuple(v)} is not supported")
        return int(v[0])

    k = single(m.kernel_size, "kernel")
    s = single(m.stride if m.stride is not None else m.kernel_size, "stride")
    if single(m.padding, "padding") != 0 or single(m.dilation, "dilation") != 1 or m.ceil_mode:
        raise UnsupportedModelError(f"layer {name!r}: max-pooling must have padding 0, dilation 1 and ceil_mode=False")
    return MaxPool2d(name, kernel=k, stride=s)


def _compute_layer(name: str, m: nn.Module, inp, out_qt, relu: bool) -> tuple[Layer, dict]:
    from brevitas.quant_tensor import QuantTensor

    if not isinstance(inp, QuantTensor):
        raise UnsupportedModelError(f"layer {name!r} receives a float tensor; the layer before it must return a quant "
                                    "tensor (return_quant_tensor=True)")
    _check_int8(inp, f"input of layer {name!r}", signed_required=False)
    qw = m.quant_weight()
    _check_int8(qw, f"weights of layer {name!r}")
    out_ch = int(m.weight.shape[0])
    w_int = qw.int().detach().cpu().numpy().astype(np.int8)
    in_exp = int(_exp2(inp.scale, f"input of layer {name!r}")[0]) if torch.as_tensor(inp.scale).numel() == 1 else None
    if in_exp is None:
        raise UnsupportedModelError(f"layer {name!r}: per-channel input scales are not supported")
    w_exp = np.broadcast_to(_exp2(qw.scale, f"weights of layer {name!r}"), (out_ch,)).copy()
    if m.bias is not None:
        qb = m.bias_quant(m.bias, inp, qw)
        if int(torch.as_tensor(qb.bit_width).item()) > 32:
            raise UnsupportedModelError(f"bias of layer {name!r} needs more than 32 bits")
        b_int = qb.int().detach().cpu().numpy().astype(np.int64)
        b_exp = np.broadcast_to(_exp2(qb.scale, f"bias of layer {name!r}"), (out_ch,))
        if not np.array_equal(b_exp, in_exp + w_exp):
            raise UnsupportedModelError(f"bias of layer {name!r} is not at the accumulator scale (use Int32Bias)")
    else:
        b_int = np.zeros(out_ch, dtype=np.int64)
    if np.abs(b_int).max(initial=0) > 2**31 - 1:
        raise UnsupportedModelError(f"bias of layer {name!r} does not fit int32")
    requant, out_exp = None, None
    if out_qt is not None:
        if not isinstance(out_qt, QuantTensor):
            raise UnsupportedModelError(f"the activation after {name!r} must use return_quant_tensor=True")
        _check_int8(out_qt, f"activation after layer {name!r}")
        out_exp = int(_exp2(out_qt.scale, f"activation after layer {name!r}")[0])
        shift = out_exp - in_exp - w_exp  # s_out / (s_in * s_w) = 2**shift
        if shift.min() < 0:
            raise UnsupportedModelError(f"layer {name!r}: its output scale is finer than its accumulator scale "
                                        f"(requantization shift {int(shift.min())} < 0), which the accelerator cannot "
                                        "represent")
        requant = Requant(shift.astype(np.int32), relu)
    info = {"input": in_exp, "weight": w_exp.tolist(), "output": out_exp}
    if isinstance(m, nn.Conv2d):
        _check_conv(name, m)
        layer = Conv2d(name, w_int, b_int.astype(np.int32), requant, stride=int(m.stride[0]), padding=int(m.padding[0]))
    else:
        layer = Linear(name, w_int, b_int.astype(np.int32), requant)
    return layer, info


def _check_conv(name: str, m: nn.Conv2d) -> None:
    if m.groups != 1:
        raise UnsupportedModelError(f"layer {name!r}: grouped/depthwise convolution (groups={m.groups}) is not supported")
    if m.dilation != (1, 1):
        raise UnsupportedModelError(f"layer {name!r}: dilated convolution is not supported")
    if m.stride[0] != m.stride[1] or not isinstance(m.padding, tuple) or m.padding[0] != m.padding[1]:
        raise UnsupportedModelError(f"layer {name!r}: stride and padding must be equal in both dimensions")
    if m.kernel_size[0] != m.kernel_size[1]:
        raise UnsupportedModelError(f"layer {name!r}: only square kernels are supported, got {m.kernel_size}")
    if m.padding_mode != "zeros":
        raise UnsupportedModelError(f"layer {name!r}: padding mode {m.padding_mode!r} is not supported (zeros only)")
