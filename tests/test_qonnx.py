"""QONNX interchange: our export runs bit-exactly in qonnx, and imports (ours and Brevitas's) give back
the same integer network."""

import numpy as np
import pytest

pytest.importorskip("qonnx")

from resilq.errors import UnsupportedModelError  # noqa: E402
from resilq.interchange.qonnx_export import layer_exponents, save_qonnx, to_qonnx  # noqa: E402
from resilq.interchange.qonnx_import import from_qonnx  # noqa: E402
from resilq.ir import run  # noqa: E402

from factories import random_model  # noqa: E402


def _execute(path, images):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    wrapper = cleanup_model(ModelWrapper(str(path)))
    return execute_onnx(wrapper, {wrapper.graph.input[0].name: images})[wrapper.graph.output[0].name]


def test_export_executes_bit_exactly_in_qonnx(rng, tmp_path):
    images = rng.random((32, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images)
    path = save_qonnx(model, tmp_path / "m.onnx", batch_size=32)
    logits = _execute(path, images)
    e = layer_exponents(model)[-1]
    ints = logits / np.exp2(e["input"] + np.asarray(e["weight"], dtype=np.float64))
    assert np.array_equal(ints, run(model, model.quantize_input(images)).logits)


def test_round_trip_gives_the_same_network(rng, tmp_path):
    model = random_model(rng)
    back = from_qonnx(save_qonnx(model, tmp_path / "m.onnx"))
    assert back.network_hash == model.network_hash
    assert [layer.kind for layer in back.layers] == [layer.kind for layer in model.layers]


def test_brevitas_qonnx_export_imports_to_the_direct_export(digits_lenet, tmp_path):
    """Two independent export paths (Brevitas -> IR, Brevitas -> QONNX -> IR) agree exactly."""
    import torch
    from brevitas.export import export_qonnx

    path = tmp_path / "brevitas.onnx"
    export_qonnx(digits_lenet.net, torch.zeros(1, 1, 28, 28), str(path))
    imported = from_qonnx(path)
    assert imported.network_hash == digits_lenet.model.network_hash
    x = imported.quantize_input(digits_lenet.test.images)
    assert np.array_equal(run(imported, x).logits, run(digits_lenet.model, x).logits)


def test_non_power_of_two_scale_is_refused(rng, tmp_path):
    from onnx import numpy_helper

    proto = to_qonnx(random_model(rng))
    for init in proto.graph.initializer:
        if init.name == "global_in_scale":
            init.CopyFrom(numpy_helper.from_array(np.asarray(0.3, np.float32), init.name))
    with pytest.raises(UnsupportedModelError, match="input quantizer.*not a power of two"):
        from_qonnx(proto)


def test_unsupported_node_is_named(rng):
    proto = to_qonnx(random_model(rng))
    nodes = list(proto.graph.node)
    relu = next(n for n in nodes if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    with pytest.raises(UnsupportedModelError, match="unsupported ONNX node 'Sigmoid_0' of type Sigmoid"):
        from_qonnx(proto)
