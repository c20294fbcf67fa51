"""Test networks for the fault-propagation core and the NVF analysis (beyond ``factories.random_model``)."""

import dataclasses

import numpy as np

from resilq.arith import requantize
from resilq.ir import Conv2d, Flatten, InputQuant, Linear, MaxPool2d, Model, Requant
from resilq.ir.kernels import accumulate, maxpool


def deep_model(rng, images, overlap=False, relu_fc=False, requant_classifier=False) -> Model:
    """conv(s1,p1)-pool-conv(s2?)-pool-fc-fc-classifier: fused conv+pool steps, overlapping pools, no-ReLU fc."""
    inp = InputQuant(tuple(images.shape[1:]), 7)
    x = inp.quantize(images)
    layers = []

    def add(layer, relu=True):
        nonlocal x
        if isinstance(layer, (Conv2d, Linear)):
            acc = accumulate(layer, x)
            per_ch = np.moveaxis(acc, 1, 0).reshape(acc.shape[1], -1)
            peak = np.percentile(np.abs(per_ch), 99, axis=1) + 1
            shift = np.clip(np.ceil(np.log2(peak / 100.0)), 0, 30).astype(np.int32)
            layer = dataclasses.replace(layer, requant=Requant(shift, relu))
            x = requantize(acc, shift.reshape((-1,) + (1,) * (acc.ndim - 2)), *layer.requant.bounds)
        elif isinstance(layer, MaxPool2d):
            x = maxpool(layer, x)
        else:
            x = x.reshape(x.shape[0], -1)
        layers.append(layer)

    def wb(shape):
        return rng.integers(-60, 61, size=shape).astype(np.int8), rng.integers(-300, 301, size=shape[0]).astype(np.int32)

    add(Conv2d("conv1", *wb((4, images.shape[1], 3, 3)), None, stride=1, padding=1))
    add(MaxPool2d("pool1", 3, 2) if overlap else MaxPool2d("pool1", 2, 2))
    add(Conv2d("conv2", *wb((5, 4, 3, 3)), None, stride=1, padding=1))
    add(MaxPool2d("pool2", 2, 2))
    add(Flatten("flatten"))
    add(Linear("fc1", *wb((12, x.shape[1])), None), relu=relu_fc)
    add(Linear("fc2", *wb((8, 12)), None))
    w, b = wb((4, 8))
    if requant_classifier:
        add(Linear("fc3", w, b, None), relu=False)
    else:
        layers.append(Linear("fc3", w, b, None))
    return Model(inp, tuple(layers), {"name": "deep"})
