"""The quantizer choices of resilq's int8 contract, as Brevitas layer factories.

* weights: signed int8, power-of-two scale per tensor (``Int8WeightPerTensorFixedPoint``) or per
  output channel;
* activations: signed int8, power-of-two scale (``Int8ActPerTensorFixedPoint``); after a ReLU they lie
  in [0, 127];
* biases: int32 at the accumulator scale (``Int32Bias``).
"""

from __future__ import annotations

import brevitas.nn as qnn
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int32Bias


class Int8WeightPerChannelFixedPoint(Int8WeightPerTensorFixedPoint):
    """Int8 weights with one power-of-two scale per output channel."""

    scaling_per_output_channel = True


def weight_quant(per_channel: bool):
    return Int8WeightPerChannelFixedPoint if per_channel else Int8WeightPerTensorFixedPoint


def input_quant() -> qnn.QuantIdentity:
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)


def act_quant(relu: bool = True):
    if relu:
        return qnn.QuantReLU(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)


def conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, per_channel: bool = False) -> qnn.QuantConv2d:
    return qnn.QuantConv2d(cin, cout, k, stride=stride, padding=padding, bias=True,
                           weight_quant=weight_quant(per_channel), bias_quant=Int32Bias)


def linear(fin: int, fout: int, per_channel: bool = False) -> qnn.QuantLinear:
    return qnn.QuantLinear(fin, fout, bias=True, weight_quant=weight_quant(per_channel), bias_quant=Int32Bias)


def classifier(fin: int, n_classes: int, per_channel: bool = False) -> qnn.QuantLinear:
    """The last layer: its int32 accumulators are the logits (no output quantizer)."""
    return linear(fin, n_classes, per_channel=per_channel)
