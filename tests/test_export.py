"""Brevitas -> integer IR: the model zoo, bring-your-own models, refusals, and chain-of-trust link #1."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Int32Bias, Uint8ActPerTensorFixedPoint

from resilq.data import load_dataset
from resilq.errors import UnsupportedModelError
from resilq.train import TrainConfig, build, compare_brevitas, export_brevitas, train
from resilq.train.quantizers import act_quant, conv, input_quant, linear


@pytest.mark.parametrize("name,shape,neurons", [
    ("lenet5", (1, 28, 28), 4684), ("mlp7", (1, 28, 28), 2816), ("alexnet", (3, 32, 32), 103168),
])
def test_zoo_neuron_counts(name, shape, neurons):
    model = export_brevitas(build(name, shape, 10), shape)
    assert model.n_neurons == neurons
    linear_layers = [layer for layer in model.layers if layer.kind == "linear"]
    if name == "mlp7":
        assert len(linear_layers) == 7


def test_chain_of_trust_on_digits(digits_lenet):
    """Brevitas and the integer executor: identical int8 tensors at every layer, identical top-1, 100 %."""
    result = digits_lenet
    report = compare_brevitas(result.net, result.model, result.trace, result.test.images)
    assert report.inputs == len(result.test) == 360
    assert [c.name for c in report.layers] == ["input"] + [layer.name for layer in result.model.layers]
    for check in report.layers:
        assert check.elements > 0 and check.mismatches == 0, check
    assert report.top1_agreement == 1.0
    assert result.int_accuracy == result.float_accuracy > 0.5


def _mnist_split(mnist_dir):
    data = load_dataset("mnist", "test", mnist_dir)
    return data.take(4000), data.take(None, offset=4000)


@pytest.mark.mnist
def test_chain_of_trust_on_real_mnist(mnist_dir):
    """Train on the first 4,000 MNIST test images, compare bit for bit on the other 6,000."""
    train_part, check_part = _mnist_split(mnist_dir)
    net = build("lenet5", (1, 28, 28), 10)
    train(net, train_part, TrainConfig(epochs=2, seed=1))
    model, trace = export_brevitas(net, (1, 28, 28), with_trace=True)
    report = compare_brevitas(net, model, trace, check_part.images)
    assert report.inputs == 6000
    assert all(c.mismatches == 0 for c in report.layers), report.rows()
    assert report.top1_agreement == 1.0


def test_per_channel_weights_are_bit_true():
    data = load_dataset("digits", "train").take(400)
    net = build("lenet5", data.shape, 10, per_channel=True)
    train(net, data, TrainConfig(epochs=1, seed=2))
    model, trace = export_brevitas(net, data.shape, with_trace=True)
    shifts = model.layers[0].requant.shift
    assert shifts.shape == (6,)
    report = compare_brevitas(net, model, trace, data.images[:200])
    assert report.identical, report.rows()


def byo_model(input_shape, n_classes):
    """A bring-your-own Brevitas model: conv with stride and padding, no pooling."""
    return nn.Sequential(
        input_quant(), conv(input_shape[0], 4, 3, stride=2, padding=1), act_quant(), nn.Flatten(),
        linear(4 * 14 * 14, 16), act_quant(relu=False), linear(16, n_classes))


def test_bring_your_own_model_is_bit_true():
    data = load_dataset("digits", "train").take(300)
    net = byo_model(data.shape, 10)
    train(net, data, TrainConfig(epochs=1, seed=3))
    model, trace = export_brevitas(net, data.shape, with_trace=True)
    assert [layer.kind for layer in model.layers] == ["conv2d", "flatten", "linear", "linear"]
    assert model.layers[2].requant.relu is False and model.layers[0].stride == 2
    assert compare_brevitas(net, model, trace, data.images).identical


def _refused(net, match, shape=(1, 28, 28)):
    with pytest.raises(UnsupportedModelError, match=match):
        export_brevitas(net, shape)


def test_unsupported_layer_is_named():
    net = nn.Sequential(input_quant(), conv(1, 4, 3), nn.BatchNorm2d(4), act_quant(), nn.Flatten(), linear(2704, 10))
    _refused(net, r"unsupported layer '2' of type BatchNorm2d")


def test_float_relu_is_refused_with_a_hint():
    net = nn.Sequential(input_quant(), conv(1, 4, 3), nn.ReLU(), nn.Flatten(), linear(2704, 10))
    _refused(net, r"'2' of type ReLU.*use brevitas.nn.QuantReLU")


def test_non_power_of_two_scale_is_refused():
    net = nn.Sequential(qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True), nn.Flatten(),
                        linear(784, 10))
    net.train()
    for _ in range(40):  # let the float-scale quantizer calibrate to a non-power-of-two range
        net(torch.rand(8, 1, 28, 28) * 0.37)
    _refused(net, "input quantizer '0' uses a scale that is not a power of two")
    net = nn.Sequential(input_quant(), nn.Flatten(),
                        qnn.QuantLinear(784, 10, weight_quant=Int8WeightPerTensorFloat, bias_quant=Int32Bias))
    with torch.no_grad():
        net[2].weight.mul_(1.37)
    _refused(net, "weights of layer '2' uses a scale that is not a power of two")


def test_unsigned_activation_is_refused():
    net = nn.Sequential(input_quant(), nn.Flatten(), linear(784, 32),
                        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True), linear(32, 10))
    _refused(net, "activation after layer '2' uses an unsigned quantizer")


def test_non_sequential_model_is_refused():
    class Net(nn.Module):
        def forward(self, x):
            return x

    _refused(Net(), "exports nn.Sequential models; the model is a Net")


def test_wrong_input_shape_is_named():
    _refused(build("lenet5", (1, 28, 28), 10), r"does not run on an input of shape \(3, 32, 32\)", shape=(3, 32, 32))


def test_missing_input_quantizer():
    _refused(nn.Sequential(nn.Flatten(), linear(784, 10)), "first layer must be a QuantIdentity")


def test_exported_scales_are_recorded():
    model = export_brevitas(build("lenet5", (1, 28, 28), 10), (1, 28, 28))
    exps = model.metadata["quant_exponents"]
    assert set(exps) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    for layer in model.layers:
        if layer.kind in ("conv2d", "linear") and layer.requant is not None:
            e = exps[layer.name]
            assert np.array_equal(layer.requant.shift, e["output"] - e["input"] - np.asarray(e["weight"]))


def test_training_is_seeded_from_the_initial_weights_on():
    """The same seed gives the same network, bit for bit (initial weights, data order, updates); another
    seed gives another one. Measured on a small slice so it stays quick."""
    from resilq.train.workflow import train_and_export

    def run(seed):
        return train_and_export("lenet5", "digits", config=TrainConfig(epochs=1, seed=seed, batch_size=128),
                                verify_inputs=0).model.network_hash

    first = run(3)
    assert run(3) == first
    assert run(4) != first
