"""resilq integer IR -> QONNX (ONNX with ``Quant`` nodes), for FINN, qonnx and other tools.

The graph computes in floats what the IR computes in integers: every tensor is ``int * 2**exp``. Weights
and biases are ``Quant`` nodes on float initializers, activations are ``Quant`` nodes after (``Relu``
and) the ``Conv``/``Gemm``; all scales are powers of two, rounding is ``ROUND`` (half to even). Executed by
``qonnx`` it reproduces the integer executor exactly while partial sums stay below 2**24 (float32).

The power-of-two exponents are the ones Brevitas used (``metadata["quant_exponents"]``) when present and
consistent with the shifts, otherwise an equivalent assignment derived from the shifts alone.
Protection is not representable in QONNX: a protected model is exported as its unprotected network.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UnsupportedModelError
from ..ir.layers import ComputeLayer, Conv2d, Flatten, Linear, MaxPool2d
from ..ir.model import Model

QONNX_DOMAIN = "qonnx.custom_op.general"


def layer_exponents(model: Model) -> list[dict]:
    """Per layer: ``{"input": e_in, "weight": [e_w per channel], "output": e_out}`` (compute layers) or
    ``{"input": e, "output": e}``; ``model.input`` has exponent ``-model.input.shift``."""
    recorded = model.metadata.get("quant_exponents", {})
    exp = -int(model.input.shift)
    out = []
    for layer in model.layers:
        if isinstance(layer, (Conv2d, Linear)):
            rec = recorded.get(layer.name)
            w_exp = None
            if rec is not None and rec.get("input") == exp and len(rec.get("weight", [])) == layer.out_channels:
                w = np.asarray(rec["weight"], dtype=np.int64)
                if layer.requant is None or np.array_equal(rec["output"] - exp - w, layer.requant.shift):
                    w_exp = w
            if w_exp is None:  # derive: weights as plain integers scaled so that shift = e_out - e_in - e_w
                shift = np.zeros(layer.out_channels, np.int64) if layer.requant is None else layer.requant.shift.astype(np.int64)
                w_exp = int(shift.max()) - shift
            e_out = None if layer.requant is None else int(exp + w_exp[0] + layer.requant.shift[0])
            out.append({"input": exp, "weight": w_exp.tolist(), "output": e_out})
            if e_out is not None:
                exp = e_out
        else:
            out.append({"input": exp, "output": exp})
    return out


def to_qonnx(model: Model, batch_size: int = 1):
    """Build the QONNX ``onnx.ModelProto`` of ``model`` (unprotected network)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = model.unprotected()
    exps = layer_exponents(model)
    nodes, inits = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def quant(name: str, x: str, scale, bits: int, signed: bool = True, narrow: bool = False) -> str:
        out = f"{name}_q"
        nodes.append(helper.make_node(
            "Quant", [x, const(f"{name}_scale", scale), const(f"{name}_zeropt", 0.0), const(f"{name}_bitwidth", bits)],
            [out], name=f"{name}_Quant", domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow),
            rounding_mode="ROUND"))
        return out

    c, h, w = model.input.shape
    cur = quant("global_in", "global_in", 2.0 ** -model.input.shift, 8)
    for layer, e in zip(model.layers, exps):
        if isinstance(layer, (Conv2d, Linear)):
            cur = _compute_node(layer, e, cur, nodes, const, quant, helper)
        elif isinstance(layer, MaxPool2d):
            nodes.append(helper.make_node("MaxPool", [cur], [f"{layer.name}_out"], name=layer.name,
                                          kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2))
            cur = f"{layer.name}_out"
        elif isinstance(layer, Flatten):
            nodes.append(helper.make_node("Flatten", [cur], [f"{layer.name}_out"], name=layer.name, axis=1))
            cur = f"{layer.name}_out"
    nodes.append(helper.make_node("Identity", [cur], ["global_out"], name="output"))
    graph = helper.make_graph(
        nodes, model.name, [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [batch_size, c, h, w])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [batch_size, model.n_classes])], inits)
    proto = helper.make_model(graph, producer_name="resilq",
                              opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


def _compute_node(layer: ComputeLayer, e: dict, cur: str, nodes: list, const, quant, helper) -> str:
    w_exp = np.asarray(e["weight"], dtype=np.float64)
    acc_exp = e["input"] + w_exp
    w_scale = np.exp2(w_exp)
    b_scale = np.exp2(acc_exp)
    if np.abs(layer.bias).max(initial=0) >= 2**24:
        raise UnsupportedModelError(f"layer {layer.name!r}: a bias beyond 2**24 has no exact float32 form in QONNX")
    if isinstance(layer, Conv2d):
        w_float = layer.weight.astype(np.float64) * w_scale[:, None, None, None]
        wq = quant(f"{layer.name}_weight", const(f"{layer.name}_weight", w_float), w_scale.reshape(-1, 1, 1, 1), 8)
    else:
        w_float = layer.weight.astype(np.float64) * w_scale[:, None]
        wq = quant(f"{layer.name}_weight", const(f"{layer.name}_weight", w_float), w_scale.reshape(-1, 1), 8)
    bq = quant(f"{layer.name}_bias", const(f"{layer.name}_bias", layer.bias.astype(np.float64) * b_scale), b_scale, 32)
    out = f"{layer.name}_acc"
    if isinstance(layer, Conv2d):
        p = layer.padding
        nodes.append(helper.make_node("Conv", [cur, wq, bq], [out], name=layer.name, kernel_shape=[layer.kernel] * 2,
                                      strides=[layer.stride] * 2, pads=[p, p, p, p]))
    else:
        nodes.append(helper.make_node("Gemm", [cur, wq, bq], [out], name=layer.name, transB=1))
    if layer.requant is None:
        return out
    if layer.requant.relu:
        nodes.append(helper.make_node("Relu", [out], [f"{layer.name}_relu"], name=f"{layer.name}_Relu"))
        out = f"{layer.name}_relu"
    return quant(f"{layer.name}_act", out, 2.0 ** e["output"], 8)


def save_qonnx(model: Model, path: str | os.PathLike, batch_size: int = 1) -> Path:
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(to_qonnx(model, batch_size), str(path))
    return path
