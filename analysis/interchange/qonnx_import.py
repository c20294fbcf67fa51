"""QONNX -> resilq integer IR: import a chain of Quant / Conv / Gemm / MatMul / Relu / MaxPool / Flatten nodes.

Accepts what Brevitas's ``export_qonnx`` writes for the supported layers (and what
:mod:`resilq.interchange.qonnx_export` writes): an input ``Quant``, then compute nodes whose weights (and
biases) are ``Quant`` nodes on initializers, each followed by an optional ``Relu`` and an activation
``Quant``; the last compute node without an activation ``Quant`` is the classifier. All scales must be
powers of two with zero points of 0 and ``ROUND`` rounding. Anything else is refused with a message that
names the node.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError, UnsupportedModelError
from ..ir.layers import Conv2d, Flatten, Layer, Linear, MaxPool2d, Requant
from ..ir.model import InputQuant, Model

_SKIP = {"Identity", "Dropout"}


class _Graph:
    def __init__(self, wrapper):
        self.w = wrapper

    def init(self, name: str, what: str) -> np.ndarray:
        value = self.w.get_initializer(name)
        if value is None:
            raise UnsupportedModelError(f"{what}: tensor {name!r} must be a constant initializer")
        return np.asarray(value, dtype=np.float64)

    def consumer(self, tensor: str):
        nodes = self.w.find_consumers(tensor) or []
        if len(nodes) > 1:
            raise UnsupportedModelError(f"tensor {tensor!r} feeds {len(nodes)} nodes; only chains are supported")
        return nodes[0] if nodes else None

    def quant(self, node, what: str) -> tuple[np.ndarray, int, bool]:
        """Power-of-two exponents (array), bit width and signedness of a Quant node."""
        if node is None or node.op_type != "Quant":
            raise UnsupportedModelError(f"{what}: expected a QONNX Quant node, found "
                                        f"{'nothing' if node is None else node.op_type + ' ' + repr(node.name)}")
        attrs = {a.name: a for a in node.attribute}
        mode = attrs["rounding_mode"].s.decode() if "rounding_mode" in attrs else "ROUND"
        if mode != "ROUND":
            raise UnsupportedModelError(f"{what} ({node.name}): rounding mode {mode} is not round-half-even")
        scale = self.init(node.input[1], what)
        zeropt = self.init(node.input[2], what)
        bits = int(self.init(node.input[3], what).reshape(-1)[0])
        if np.any(zeropt != 0):
            raise UnsupportedModelError(f"{what} ({node.name}): non-zero zero point")
        exp = np.log2(scale)
        if not np.all(np.isfinite(exp)) or not np.array_equal(np.round(exp), exp):
            raise UnsupportedModelError(f"{what} ({node.name}): scale {scale.reshape(-1)[:4].tolist()} is not a power "
                                        "of two; resilq's integer contract needs fixed-point quantization")
        signed = bool(attrs["signed"].i) if "signed" in attrs else True
        return np.round(exp).astype(np.int64).reshape(-1), bits, signed

    def quantized_constant(self, tensor: str, what: str) -> tuple[np.ndarray, np.ndarray, int]:
        """Integer values, exponents and bit width of ``Quant(initializer)`` feeding ``tensor``."""
        node = self.w.find_producer(tensor)
        exp, bits, _ = self.quant(node, what)
        value = self.init(node.input[0], what)
        scale_shape = self.init(node.input[1], what).shape
        scaled = value / np.exp2(exp.astype(np.float64)).reshape(scale_shape if len(scale_shape) else ())
        ints = np.rint(scaled)
        lim = 2 ** (bits - 1)
        return np.clip(ints, -lim, lim - 1).astype(np.int64), exp, bits


def read_onnx(path: str | os.PathLike):
    """An ONNX file as an ``onnx.ModelProto``, or a :class:`FormatError` naming the file.

    The file's size is checked before it is read (the archive limit, ``archive.MAX_FILE_BYTES``), and it is
    parsed from its bytes, so tensors stored as external data are never opened by a path taken from the file.
    """
    import onnx
    from google.protobuf.message import DecodeError

    from ..archive import MAX_FILE_BYTES

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such ONNX file" if not os.path.exists(path) else f"{path}: not a file")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise FormatError(f"{path}: {size:,} bytes, more than an ONNX model resilq reads ({MAX_FILE_BYTES:,})")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError) as exc:
        raise FormatError(f"{path}: not an ONNX model ({exc})") from None
    if not proto.graph.node:
        raise FormatError(f"{path}: not an ONNX model (it holds no graph nodes)")
    return proto


def from_qonnx(source, name: str | None = None) -> Model:
    """Import a QONNX model (a path or an ``onnx.ModelProto``) into the integer IR."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    if isinstance(source, (str, os.PathLike)):
        source = read_onnx(source)
    wrapper = cleanup_model(ModelWrapper(source))
    g = _Graph(wrapper)
    graph = wrapper.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise UnsupportedModelError("only single-input, single-output graphs are supported")
    in_shape = tuple(int(d) for d in wrapper.get_tensor_shape(graph.input[0].name))
    if len(in_shape) != 4:
        raise UnsupportedModelError(f"the input must be (N, C, H, W), got {in_shape}")
    first = g.consumer(graph.input[0].name)
    in_exp, bits, _ = g.quant(first, "input quantizer")
    if bits > 8:
        raise UnsupportedModelError(f"the input is quantized to {bits} bits; the datapath is int8")
    input_q = InputQuant(in_shape[1:], int(-in_exp[0]))
    cur, exp = first.output[0], int(in_exp[0])
    layers: list[Layer] = []
    counts = {"conv": 0, "fc": 0, "pool": 0}

    def label(kind: str) -> str:
        counts[kind] += 1
        return f"{kind}{counts[kind]}"

    while (node := g.consumer(cur)) is not None:
        op = node.op_type
        if op in _SKIP:
            cur = node.output[0]
            continue
        if op in ("Conv", "Gemm", "MatMul"):
            layer, cur, exp = _compute(g, node, exp, label("conv" if op == "Conv" else "fc"))
            layers.append(layer)
        elif op == "MaxPool":
            layers.append(_maxpool(node, label("pool")))
            cur = node.output[0]
        elif op in ("Flatten", "Reshape"):
            out_shape = wrapper.get_tensor_shape(node.output[0])
            if out_shape is None or len(out_shape) != 2:
                raise UnsupportedModelError(f"{op} node {node.name!r} must flatten to (N, features)")
            layers.append(Flatten(f"flatten{len([x for x in layers if isinstance(x, Flatten)]) + 1}"))
            cur = node.output[0]
        else:
            raise UnsupportedModelError(f"unsupported ONNX node {node.name!r} of type {op}; resilq imports "
                                        "Quant, Conv, Gemm, MatMul(+Add), Relu, MaxPool, Flatten/Reshape")
    if cur != graph.output[0].name and g.w.find_producer(graph.output[0].name) is not None:
        producer = g.w.find_producer(graph.output[0].name)
        if producer.op_type not in _SKIP:
            raise UnsupportedModelError(f"the graph output is not the end of the imported chain ({cur!r})")
    return Model(input_q, tuple(layers), {"name": name or wrapper.graph.name or "qonnx", "source": "qonnx"})


def _maxpool(node, name: str) -> MaxPool2d:
    attrs = {a.name: list(a.ints) if a.ints else a.i for a in node.attribute}
    k, s = attrs.get("kernel_shape", [1, 1]), attrs.get("strides", [1, 1])
    if k[0] != k[1] or s[0] != s[1] or any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0) or \
            any(d != 1 for d in attrs.get("dilations", [1])):
        raise UnsupportedModelError(f"MaxPool node {node.name!r}: only square kernels/strides, no padding, no "
                                    "dilation and floor mode are supported")
    return MaxPool2d(name, kernel=int(k[0]), stride=int(s[0]))


def _compute(g: _Graph, node, exp: int, name: str):
    """One Conv/Gemm/MatMul node (+ bias, + Relu, + activation Quant) -> (layer, output tensor, exponent)."""
    what = f"{node.op_type} node {node.name!r}"
    attrs = {a.name: a for a in node.attribute}
    w_int, w_exp, bits = g.quantized_constant(node.input[1], f"weights of {what}")
    if bits > 8:
        raise UnsupportedModelError(f"weights of {what} are quantized to {bits} bits; the datapath is int8")
    if node.op_type == "Gemm":
        if float(attrs["alpha"].f if "alpha" in attrs else 1.0) != 1.0 or float(attrs["beta"].f if "beta" in attrs else 1.0) != 1.0:
            raise UnsupportedModelError(f"{what}: alpha/beta other than 1 are not supported")
        if "transA" in attrs and attrs["transA"].i:
            raise UnsupportedModelError(f"{what}: transA is not supported")
        if not ("transB" in attrs and attrs["transB"].i):
            w_int = w_int.T
            w_exp = w_exp if w_exp.size == 1 else w_exp
    elif node.op_type == "MatMul":
        w_int = w_int.T
    out_ch = w_int.shape[0]
    w_exp = np.broadcast_to(w_exp, (out_ch,)).astype(np.int64)
    acc_exp = exp + w_exp
    out_tensor = node.output[0]
    bias_tensor = node.input[2] if len(node.input) > 2 and node.input[2] else None
    nxt = g.consumer(out_tensor)
    if bias_tensor is None and nxt is not None and nxt.op_type == "Add":
        bias_tensor = nxt.input[1] if nxt.input[0] == out_tensor else nxt.input[0]
        out_tensor, nxt = nxt.output[0], g.consumer(nxt.output[0])
    bias = np.zeros(out_ch, dtype=np.int64)
    if bias_tensor is not None:
        producer = g.w.find_producer(bias_tensor)
        if producer is not None and producer.op_type == "Quant":
            bias, b_exp, _ = g.quantized_constant(bias_tensor, f"bias of {what}")
            if not np.array_equal(np.broadcast_to(b_exp, (out_ch,)), acc_exp):
                raise UnsupportedModelError(f"bias of {what} is not at the accumulator scale")
        else:
            scaled = g.init(bias_tensor, f"bias of {what}").reshape(-1) / np.exp2(acc_exp.astype(np.float64))
            if not np.array_equal(np.rint(scaled), scaled):
                raise UnsupportedModelError(f"float bias of {what} is not a multiple of the accumulator scale")
            bias = np.rint(scaled).astype(np.int64)
        bias = np.broadcast_to(bias.reshape(-1), (out_ch,))
    if np.abs(bias).max(initial=0) > 2**31 - 1:
        raise UnsupportedModelError(f"bias of {what} does not fit int32")
    relu = nxt is not None and nxt.op_type == "Relu"
    if relu:
        out_tensor, nxt = nxt.output[0], g.consumer(nxt.output[0])
    requant, new_exp = None, exp
    if nxt is not None and nxt.op_type == "Quant":
        o_exp, o_bits, signed = g.quant(nxt, f"activation after {what}")
        if o_bits > 8 or not signed:
            raise UnsupportedModelError(f"activation after {what} must be signed int8 (got {o_bits} bits, "
                                        f"{'signed' if signed else 'unsigned'})")
        shift = int(o_exp[0]) - acc_exp
        if shift.min() < 0:
            raise UnsupportedModelError(f"{what}: output scale finer than the accumulator scale")
        requant, new_exp, out_tensor = Requant(shift.astype(np.int32), relu), int(o_exp[0]), nxt.output[0]
    elif relu:
        raise UnsupportedModelError(f"{what}: Relu must be followed by an activation Quant node")
    weight = w_int.astype(np.int8)
    if node.op_type == "Conv":
        k = [int(v) for v in attrs["kernel_shape"].ints] if "kernel_shape" in attrs else list(weight.shape[2:])
        pads = [int(v) for v in attrs["pads"].ints] if "pads" in attrs else [0, 0, 0, 0]
        strides = [int(v) for v in attrs["strides"].ints] if "strides" in attrs else [1, 1]
        group = attrs["group"].i if "group" in attrs else 1
        if group != 1 or k[0] != k[1] or len(set(pads)) != 1 or strides[0] != strides[1]:
            raise UnsupportedModelError(f"{what}: only square, ungrouped convolutions with symmetric padding are supported")
        layer = Conv2d(name, weight, bias.astype(np.int32), requant, stride=strides[0], padding=pads[0])
    else:
        layer = Linear(name, weight, bias.astype(np.int32), requant)
    return layer, out_tensor, new_exp
