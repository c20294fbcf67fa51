"""Weights kept on chip between runs (issue #14: LeNet-5 at batch 1): an image whose network fits the weight, bias
and shift buffers all at once carries a WEIGHTS_TAG (``pack(..., keep_weights=True)``); the kernel lays every
conv's tiles out at words of their own and, when the previous run completed with the same tag, loads no
parameter at all. C-sim == emulator == executor run after run (cold, then warm), the counter equal to the cycle
model's cold and warm reports; a stored-word upset retags the image, so the kernel reloads and computes with the
upset (and again with the clean words after it); a run of another image in between leaves nothing to trust; a
tag on a network that does not fit is refused alike.
"""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, assert_layers, calibrated_model, protect_fraction

from resilq.arith import Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.deploy.targets import CsimTarget
from resilq.fault_kinds import WeightFault
from resilq.hls import host
from resilq.hls import imageformat as fmt
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.cycles import cycle_report
from resilq.hls.mapping import plan_model, weights_fit_on_chip
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Executor

pytestmark = CSIM
#: LeNet-like: two convs (the second of 20 channels: three tiles at PE 8), pools, two Linear layers
SPECS = [("conv", 6, 5, 1, 0), ("pool", 2, 2), ("conv", 20, 3, 1, 0), ("pool", 2, 2), ("flatten",), ("fc", 24),
         ("head", 5)]
SHAPE = (1, 16, 16)


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(21)
    model = calibrated_model(rng, SHAPE, SPECS, "kept")
    model = protect_fraction(model, np.random.default_rng(22), Scheme.TMR, 0.1)
    x = model.quantize_input(rng.random((5, *SHAPE), dtype=np.float32))
    return model, x


def _forget(accel, x) -> None:
    """Leave nothing on chip to trust: one run of the same image without its tag (loaded every run)."""
    words = accel.image.buffer.view("<u4")
    tag = int(words[fmt.HeaderWord.WEIGHTS_TAG])
    words[fmt.HeaderWord.WEIGHTS_TAG] = 0
    accel.run(x)
    words[fmt.HeaderWord.WEIGHTS_TAG] = tag


def test_only_a_network_that_fits_gets_a_tag(network):
    model, _ = network
    assert weights_fit_on_chip(plan_model(model, DEFAULT_CONFIG), DEFAULT_CONFIG)
    assert CsimAccelerator(model, keep_weights=True).image.weights_tag != 0
    assert CsimAccelerator(model).image.weights_tag == 0  # opt-in
    big = calibrated_model(np.random.default_rng(23), (256, 1, 1), [("flatten",), ("fc", 512), ("head", 8)], "big")
    assert not weights_fit_on_chip(plan_model(big, DEFAULT_CONFIG), DEFAULT_CONFIG)  # 32 tiles x 32 words > 512 a buffer
    assert CsimAccelerator(big, keep_weights=True).image.weights_tag == 0


def test_cold_then_warm_runs_are_bit_exact_and_cost_what_the_model_says(network):
    model, x = network
    want = Executor(model).run(x, collect=True).activations
    csim = CsimAccelerator(model, keep_weights=True)
    emu = Accelerator(EmulatedAccelerator(), model, keep_weights=True, keep_activations=True)
    _forget(csim, x)
    cold = cycle_report(model, DEFAULT_CONFIG, images=5, kept=True)
    warm = cycle_report(model, DEFAULT_CONFIG, images=5, kept=True, warm=True)
    assert warm.total < cold.total < cycle_report(model, DEFAULT_CONFIG, images=5).total
    for expected in (cold, warm, warm):
        run, out = csim.run(x), emu.run(x)
        assert_layers(run.activations, want, "C-sim")
        assert_layers(out.activations, want, "emulator")
        assert run.cycles == out.cycles == expected.total
        assert list(run.profile) == list(out.profile) == [layer.total for layer in expected.layers]
    one = csim.run(x[:1])  # a warm run of one image
    assert one.cycles == cycle_report(model, DEFAULT_CONFIG, images=1, kept=True, warm=True).total


def test_an_upset_is_read_and_then_forgotten(network):
    """A weight upset through the driver: the image is retagged, so the kernel reloads the faulty words (the
    executor's values with the fault, a cold run) and, after the restore, the clean ones (cold again)."""
    model, x = network
    fault = WeightFault(layer=2, channel=3, tap=None, bit=18)  # conv2's channel-3 bias, bit 18
    clean = Executor(model).run(x).logits
    faulty = Executor(model).run(x, faults=[fault]).logits
    assert not np.array_equal(clean, faulty)
    cold = cycle_report(model, DEFAULT_CONFIG, images=5, kept=True).total
    warm = cycle_report(model, DEFAULT_CONFIG, images=5, kept=True, warm=True).total
    for device in (EmulatedAccelerator(), CsimTarget.open(DEFAULT_CONFIG)):
        accel = Accelerator(device, model, keep_weights=True)
        tag = accel.image.weights_tag
        _forget(accel, x)
        runs = [accel.run(x), accel.run(x), accel.run(x, fault=fault), accel.run(x), accel.run(x)]
        assert [r.cycles for r in runs] == [cold, warm, cold, cold, warm], type(device).__name__
        for r, want in zip(runs, (clean, clean, faulty, clean, clean), strict=True):
            assert np.array_equal(r.logits, want)
        assert accel.image.weights_tag not in (0, tag)  # restored: a tag of its own again, not one it had


def test_consecutive_contents_never_share_a_tag(network, monkeypatch):
    """Even when the CRC of two contents collides (forced here), a retag gives the image a tag it has not carried
    lately, so the kernel never trusts weights of another content."""
    import resilq.hls.packing as packing

    model, _ = network
    image = packing.pack(model, DEFAULT_CONFIG, keep_weights=True)
    monkeypatch.setattr(packing, "_tag_of", lambda buffer: 7)
    tags = [image.weights_tag]
    for _ in range(12):
        image.retag()
        tags.append(image.weights_tag)
    assert 0 not in tags
    assert all(len(set(tags[i:i + packing.RECENT_TAGS + 1])) == len(tags[i:i + packing.RECENT_TAGS + 1])
               for i in range(len(tags)))


def test_another_image_in_between_leaves_nothing_to_trust(network):
    model, x = network
    other = calibrated_model(np.random.default_rng(24), SHAPE, SPECS, "other")
    device = CsimTarget.open(DEFAULT_CONFIG)
    a = Accelerator(device, model, keep_weights=True)
    _forget(a, x)
    cold = cycle_report(model, DEFAULT_CONFIG, images=5, kept=True).total
    warm = cycle_report(model, DEFAULT_CONFIG, images=5, kept=True, warm=True).total
    assert [a.run(x).cycles, a.run(x).cycles] == [cold, warm]
    b = Accelerator(device, other)  # loaded every run, over a's words
    assert np.array_equal(b.run(x).logits, Executor(other).run(x).logits)
    again = a.run(x)
    assert again.cycles == cold and np.array_equal(again.logits, Executor(model).run(x).logits)


def test_a_tag_on_a_network_that_does_not_fit_is_refused_alike():
    rng = np.random.default_rng(25)
    model = calibrated_model(rng, (256, 1, 1), [("flatten",), ("fc", 512), ("fc", 64), ("head", 8)], "too-big")
    x = model.quantize_input(rng.random((2, 256, 1, 1), dtype=np.float32))
    outcomes = []
    for device in (EmulatedAccelerator(), CsimTarget.open(DEFAULT_CONFIG)):
        accel = Accelerator(device, model, batch=2)
        accel.run(x)
        accel.image.buffer.view("<u4")[fmt.HeaderWord.WEIGHTS_TAG] = 0x1234
        status = host.run(accel.device, 2)
        outcomes.append((status.code.name, status.descriptor, status.cycles))
    assert outcomes[0] == outcomes[1] and outcomes[0][:2] == ("CAPACITY", 0)
