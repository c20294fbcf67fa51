"""The paper's networks in Brevitas, int8 everywhere with power-of-two (fixed-point) scales.

Power-of-two scales make the integer pipeline *exactly* equal to Brevitas's fake-quantized forward
pass: every rescaling is a shift, every rounding is round-half-to-even, so the exported IR reproduces
Brevitas bit for bit (tested on real data). Every model is an ``nn.Sequential`` of the layers
:mod:`resilq.train.export` understands, so a bring-your-own model built the same way exports too.

=========  ====================================================  ================
name       architecture                                          neurons (SPEC §2)
=========  ====================================================  ================
lenet5     conv5x5(6)-pool-conv5x5(16)-pool-fc120-fc84-fc10       4,684 on 28x28
mlp7       fc512 x5 - fc256 - fc10 (7 linear layers)              2,816
alexnet    conv3x3(64)-pool-conv(128)-pool-conv(256)-pool-        103,168 on 32x32
           conv(256)-conv(128)-fc512-fc256-fc10
=========  ====================================================  ================
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch.nn as nn

from .quantizers import act_quant, classifier, conv, input_quant, linear


def _block(name: str, layer: nn.Module, out: OrderedDict, relu: bool = True) -> None:
    out[name] = layer
    out[f"{name}_act"] = act_quant(relu=relu)


def lenet5(input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10, per_channel: bool = False) -> nn.Sequential:
    c, h, w = input_shape
    side = ((h - 4) // 2 - 4) // 2
    m: OrderedDict[str, nn.Module] = OrderedDict(input_quant=input_quant())
    _block("conv1", conv(c, 6, 5, per_channel=per_channel), m)
    m["pool1"] = nn.MaxPool2d(2)
    _block("conv2", conv(6, 16, 5, per_channel=per_channel), m)
    m["pool2"] = nn.MaxPool2d(2)
    m["flatten"] = nn.Flatten()
    _block("fc1", linear(16 * side * side, 120, per_channel=per_channel), m)
    _block("fc2", linear(120, 84, per_channel=per_channel), m)
    m["fc3"] = classifier(84, n_classes, per_channel=per_channel)
    return nn.Sequential(m)


def mlp7(input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10, per_channel: bool = False) -> nn.Sequential:
    widths = [512, 512, 512, 512, 512, 256]
    m: OrderedDict[str, nn.Module] = OrderedDict(input_quant=input_quant(), flatten=nn.Flatten())
    fan_in = input_shape[0] * input_shape[1] * input_shape[2]
    for i, width in enumerate(widths, start=1):
        _block(f"fc{i}", linear(fan_in, width, per_channel=per_channel), m)
        fan_in = width
    m["fc7"] = classifier(fan_in, n_classes, per_channel=per_channel)
    return nn.Sequential(m)


def alexnet(input_shape: tuple[int, int, int] = (3, 32, 32), n_classes: int = 10, per_channel: bool = False) -> nn.Sequential:
    c, h, w = input_shape
    m: OrderedDict[str, nn.Module] = OrderedDict(input_quant=input_quant())
    _block("conv1", conv(c, 64, 3, per_channel=per_channel), m)  # 30x30
    m["pool1"] = nn.MaxPool2d(2)  # 15x15
    _block("conv2", conv(64, 128, 3, padding=1, per_channel=per_channel), m)
    m["pool2"] = nn.MaxPool2d(2)  # 7x7
    _block("conv3", conv(128, 256, 3, padding=1, per_channel=per_channel), m)
    m["pool3"] = nn.MaxPool2d(2)  # 3x3
    _block("conv4", conv(256, 256, 3, padding=1, per_channel=per_channel), m)
    _block("conv5", conv(256, 128, 3, padding=1, per_channel=per_channel), m)
    m["flatten"] = nn.Flatten()
    side = (((h - 2) // 2) // 2) // 2
    m["drop1"] = nn.Dropout(0.3)
    _block("fc1", linear(128 * side * side, 512, per_channel=per_channel), m)
    m["drop2"] = nn.Dropout(0.3)
    _block("fc2", linear(512, 256, per_channel=per_channel), m)
    m["fc3"] = classifier(256, n_classes, per_channel=per_channel)
    return nn.Sequential(m)


ZOO: dict[str, Callable[..., nn.Sequential]] = {"lenet5": lenet5, "mlp7": mlp7, "alexnet": alexnet}
#: The dataset each zoo model is meant for in the paper (used as the CLI default).
DEFAULT_DATASET = {"lenet5": "digits", "mlp7": "digits", "alexnet": "cifar10"}


def build(name: str, input_shape: tuple[int, int, int], n_classes: int, per_channel: bool = False) -> nn.Sequential:
    if name not in ZOO:
        raise KeyError(f"unknown model {name!r}; the zoo has {', '.join(ZOO)}")
    return ZOO[name](tuple(input_shape), n_classes, per_channel=per_channel)
