"""Chain-of-trust link #2: the C-simulated accelerator equals the IR executor bit for bit.

LeNet-5 and MLP-7 trained on the bundled digits, unprotected and protected with `split` and `tmr`, on
real test images: every layer's int8 output (and the int32 logits) equal; with the fault-injection
registers set to a few hundred random faults (every mode, original and shadow slots) every layer still
equals the executor's ``run(x, faults=[f])`` and the counters equal their reference; the cycle counter
equals the cycle model on every layer.

The protected neurons are a seeded random 5 % of every neuron layer: a stand-in for the NVF critical
set (issue #3), which changes nothing in what is checked here.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hls_support import CSIM, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.faults import Fault
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.cycles import cycle_report
from resilq.hls.reference import expected_corrections, expected_fi_hits
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Executor

pytestmark = CSIM

NETS = ("lenet5", "mlp7")
SCHEMES = (None, Scheme.SPLIT, Scheme.TMR)
N_IMAGES, N_FAULTS, FAULT_IMAGES = 120, 50, 8


@pytest.fixture(scope="module")
def digits_mlp7():
    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    return train_and_export("mlp7", "digits", config=TrainConfig(epochs=2, seed=0), verify_inputs=0)


@pytest.fixture(scope="module")
def trained(digits_lenet, digits_mlp7):
    return {"lenet5": digits_lenet, "mlp7": digits_mlp7}


def variant(trained, name, scheme):
    model = trained[name].model
    if scheme is not None:
        model = protect_fraction(model, np.random.default_rng(20), scheme, 0.05)
    return model, model.quantize_input(trained[name].test.images)


def assert_same_layers(run, ref, where):
    for i, (got, want) in enumerate(zip(run.activations, ref.activations, strict=True)):
        assert np.array_equal(got, want), f"{where}: layer {i} differs in {np.count_nonzero(got != want)} values"


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label if s else "unprotected")
@pytest.mark.parametrize("name", NETS)
def test_every_layer_bit_exact_and_cycles_per_layer(trained, name, scheme):
    model, x = variant(trained, name, scheme)
    x = x[:N_IMAGES]
    run = CsimAccelerator(model, batch=N_IMAGES).run(x)
    assert_same_layers(run, Executor(model).run(x, collect=True), f"{name}/{scheme}")
    report = cycle_report(model, DEFAULT_CONFIG, images=N_IMAGES)  # layer-major, batched vector layers
    assert [int(c) for c in run.profile] == [layer.total for layer in report.layers]
    assert run.cycles == report.run(N_IMAGES)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label if s else "unprotected")
@pytest.mark.parametrize("name", NETS)
def test_random_faults_bit_exact(trained, name, scheme):
    model, x = variant(trained, name, scheme)
    x = x[N_IMAGES:N_IMAGES + FAULT_IMAGES]
    acc, ex = CsimAccelerator(model, batch=FAULT_IMAGES), Executor(model)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{scheme}".encode()))
    kinds = set()
    for _ in range(N_FAULTS):
        layer = int(rng.choice(model.neuron_layers))
        n_out = model.neurons_in(layer)
        shadow = scheme is not None and rng.random() < 0.4
        slot = int(rng.integers(n_out, model.slots_in(layer))) if shadow else int(rng.integers(n_out))
        if not shadow and scheme is not None and rng.random() < 0.4:  # aim at protected originals too
            slot = int(rng.choice(model.protection(layer).neurons))
        fault = Fault(layer, slot, int(rng.integers(1, 256)), FaultMode(int(rng.integers(3))))
        kinds.add((fault.mode, slot >= n_out))
        run = acc.run(x, fault=fault)
        assert_same_layers(run, ex.run(x, faults=[fault], collect=True), f"{name}/{scheme} {fault}")
        assert run.status.fi_hits == expected_fi_hits(fault, FAULT_IMAGES)
        assert run.status.corrections == expected_corrections(model, x, fault)
    assert {mode for mode, _ in kinds} == set(FaultMode)
    assert any(shadow for _, shadow in kinds) == (scheme is not None)


@pytest.mark.slow
@pytest.mark.parametrize("name", NETS)
def test_whole_test_set_and_many_faults(trained, name):
    for scheme in (*SCHEMES, Scheme.DUP_AND, Scheme.DUP_MIN):
        model, x = variant(trained, name, scheme)
        acc, ex = CsimAccelerator(model, batch=x.shape[0]), Executor(model)
        assert_same_layers(acc.run(x), ex.run(x, collect=True), f"{name}/{scheme}")
        rng = np.random.default_rng(0)
        small = CsimAccelerator(model, batch=32)
        for _ in range(300):
            layer = int(rng.choice(model.neuron_layers))
            fault = Fault.bit_flip(layer, int(rng.integers(model.slots_in(layer))), int(rng.integers(8)))
            assert_same_layers(small.run(x[:32], fault=fault), ex.run(x[:32], faults=[fault], collect=True), str(fault))
