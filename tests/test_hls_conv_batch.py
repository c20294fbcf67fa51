"""Map-batched convs (issue #14): a conv over a small map whose chunk of images fits the buffers (``Flag.BATCH``,
the kernel's ``LayerGeom::map_batch``) keeps the chunk's maps in the buffers side by side and runs every image
through each tile's weights, loaded once for the chunk. C-sim == emulator == executor at every layer, on every
scheme, with faults on image 0 only (one-shot) and on every image, lane faults, chunks of 16 + a partial one; the
cycle counter equals the cycle model; the same image without the flag gives the same values for more cycles; a
hostile BATCH the buffers cannot take is refused alike by the kernel and the emulator.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hls_support import CSIM, assert_layers, calibrated_model, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.fault_kinds import LaneFault
from resilq.faults import Fault
from resilq.hls import imageformat as fmt
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.cycles import cycle_report, layer_cycles
from resilq.hls.mapping import plan_model
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Executor

pytestmark = CSIM
#: conv 3x3 over 6x6 (padded), a second conv with more channels than PE (two tiles), a pool, the classifier
SPECS = [("conv", 12, 3, 1, 1), ("conv", 10, 3, 1, 1), ("pool", 2, 2), ("flatten",), ("head", 4)]
SHAPE = (9, 6, 6)  # 9 input channels: read padded (a packed first conv would read the input dense) at SIMD 8 and 16


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(8)
    model = calibrated_model(rng, SHAPE, SPECS, "batched-convs")
    x = model.quantize_input(rng.random((20, *SHAPE), dtype=np.float32))
    return model, x


def test_the_plan_batches_convs_over_small_maps_and_pools_on_chip_first(network):
    model, _ = network
    plans = plan_model(model, DEFAULT_CONFIG)
    assert [p.map_batched for p in plans] == [True, False, False, False]  # conv 2 pools on chip instead
    assert plans[1].pool_next and plans[0].tiles == 2 and plans[1].tiles == 2


@pytest.mark.parametrize("scheme", [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN])
def test_batched_convs_bit_exact_with_cycles(network, scheme):
    model, x = network
    if scheme is not None:
        model = protect_fraction(model, np.random.default_rng(9), scheme, 0.15)
    ref = Executor(model).run(x, collect=True)
    acc = CsimAccelerator(model, batch=x.shape[0])  # chunks of 16 and 4 images
    run = acc.run(x)
    assert_layers(run.activations, ref.activations, f"C-sim {scheme}")
    report = cycle_report(model, DEFAULT_CONFIG, images=x.shape[0])
    assert list(run.profile) == [layer.total for layer in report.layers]
    assert run.cycles == report.total
    emu = Accelerator(EmulatedAccelerator(), model, batch=x.shape[0], keep_activations=True)
    out = emu.run(x)
    assert_layers(out.activations, ref.activations, f"emulator {scheme}")
    assert out.cycles == run.cycles and np.array_equal(out.profile, run.profile)
    assert out.corrections == run.status.corrections
    one = acc.run(x[:1])  # a batch of one: the batched conv runs its single image
    assert_layers(one.activations, [a[:1] for a in ref.activations], f"C-sim one image {scheme}")
    assert one.cycles == cycle_report(model, DEFAULT_CONFIG, images=1).total


def test_batched_convs_on_the_largest_build(network):
    """PE 16 x SIMD 16 (the largest build the resource model fits on the xc7z020): the packed DSP pairs are lanes q
    and q + 8, both convs one tile; TMR, bit-exact with the cycle model."""
    model, x = network
    config = AccelConfig(pe=16, simd=16)
    model = protect_fraction(model, np.random.default_rng(13), Scheme.TMR, 0.15)
    assert plan_model(model, config)[0].map_batched
    run = CsimAccelerator(model, config, batch=x.shape[0]).run(x)
    assert_layers(run.activations, Executor(model).run(x, collect=True).activations, "C-sim 16x16")
    assert run.cycles == cycle_report(model, config, images=x.shape[0]).total


@pytest.mark.parametrize("once", [False, True])
def test_faults_in_a_batched_conv_hit_the_images_they_should(network, once):
    model, x = network
    model = protect_fraction(model, np.random.default_rng(10), Scheme.TMR, 0.2)
    prot = model.protection(0)
    n = model.neurons_in(0)
    acc = CsimAccelerator(model, batch=x.shape[0])
    emu = Accelerator(EmulatedAccelerator(), model, batch=x.shape[0], keep_activations=True)
    faults = [Fault(0, 5, 0x41, FaultMode.FLIP), Fault(0, int(prot.neurons[1]), 0x40, FaultMode.STUCK_AT_1),
              Fault(0, n + 1, 0x02, FaultMode.FLIP), Fault(0, n - 1, 0x80, FaultMode.STUCK_AT_0),
              LaneFault(3, layer=0, mask=0x10, mode=FaultMode.STUCK_AT_1, pe=DEFAULT_CONFIG.pe), LaneFault(5, layer=None, mask=0x04, mode=FaultMode.FLIP, pe=DEFAULT_CONFIG.pe)]
    for fault in faults:
        if once:
            want = Executor(model).run(x[:1], faults=[fault], collect=True).activations
            want = [np.concatenate([a, b[1:]]) for a, b in zip(want, Executor(model).run(x, collect=True).activations)]
        else:
            want = Executor(model).run(x, faults=[fault], collect=True).activations
        got = acc.run(x, fault=fault, once=once)
        assert_layers(got.activations, want, f"C-sim {fault} once={once}")
        if not once:
            out = emu.run(x, fault=fault)
            assert_layers(out.activations, want, f"emulator {fault}")
            assert out.fi_hits == got.status.fi_hits and out.corrections == got.status.corrections


def _clear_batch(acc, k):
    words = acc.image.buffer.view("<u4")
    at = int(words[fmt.HeaderWord.DESC_OFFSET]) // 4 + k * fmt.DESC_WORDS + fmt.DescWord.OP_FLAGS
    assert words[at] & np.uint32(int(fmt.Flag.BATCH) << 8)
    words[at] &= ~np.uint32(int(fmt.Flag.BATCH) << 8)


def test_batching_divides_the_weight_loads_and_changes_no_value(network):
    model, x = network
    model = protect_fraction(model, np.random.default_rng(11), Scheme.SPLIT, 0.1)
    acc = CsimAccelerator(model, batch=16)
    batched = acc.run(x[:16])
    report = cycle_report(model, DEFAULT_CONFIG, images=16)
    assert batched.profile[0] == report.layers[0].total and report.layers[0].weights * 16 < report.layers[0].compute
    _clear_batch(acc, 0)  # the same network, image by image
    plain = acc.run(x[:16])
    assert_layers(plain.activations, batched.activations, "unbatched vs batched")
    plan = dataclasses.replace(acc.image.plans[0], flags=acc.image.plans[0].flags & ~fmt.Flag.BATCH)
    assert plain.profile[0] == layer_cycles(plan, DEFAULT_CONFIG, 16).total > batched.profile[0]
    assert list(plain.profile[1:]) == list(batched.profile[1:])


def _hostile_batch(model, x, descriptor: int, runs: tuple[int, ...],
                   stride_error: int = 0) -> list[list[tuple[str, int, int]]]:
    """(STATUS code, descriptor, MODEL_CYCLES) of runs of ``runs`` images after setting BATCH on ``descriptor`` (and
    adding ``stride_error`` bytes to its OUT_STRIDE), on the emulator and on the C-simulated kernel."""
    from resilq.deploy.targets import CsimTarget
    from resilq.hls import host

    outcomes = []
    for device in (EmulatedAccelerator(), CsimTarget.open(DEFAULT_CONFIG)):
        accel = Accelerator(device, model, batch=x.shape[0])
        accel.run(x)
        words = accel.image.buffer.view("<u4")
        at = int(words[fmt.HeaderWord.DESC_OFFSET]) // 4 + descriptor * fmt.DESC_WORDS + fmt.DescWord.OP_FLAGS
        words[at] |= np.uint32(int(fmt.Flag.BATCH) << 8)
        words[at - fmt.DescWord.OP_FLAGS + fmt.DescWord.OUT_STRIDE] += np.uint32(stride_error)
        statuses = [host.run(accel.device, n) for n in runs]
        outcomes.append([(s.code.name, s.descriptor, s.cycles) for s in statuses])
    return outcomes


def test_a_batch_the_buffers_cannot_take_is_refused_alike():
    """A hostile image sets BATCH on a conv whose 16 maps overflow the input buffer: CAPACITY at that descriptor
    and the same MODEL_CYCLES on the kernel and the emulator; the host's own plan never batches it."""
    rng = np.random.default_rng(12)
    shape = (8, 24, 24)  # 4,608 input-buffer bytes per image: 16 of them exceed max_in (65,536)
    model = calibrated_model(rng, shape, [("conv", 8, 3, 1, 1), ("conv", 4, 3, 3, 0), ("flatten",), ("head", 3)],
                             "too-big")
    assert not any(p.batched for p in plan_model(model, DEFAULT_CONFIG)[:2])
    x = model.quantize_input(rng.random((2, *shape), dtype=np.float32))
    emulated, simulated = _hostile_batch(model, x, 1, (2,))
    assert emulated == simulated and emulated[0][:2] == ("CAPACITY", 1)
    # with a misaligned stride as well: the batch's buffers are checked before the addresses, as in the kernel
    emulated, simulated = _hostile_batch(model, x, 1, (2,), stride_error=4)
    assert emulated == simulated and emulated[0][:2] == ("CAPACITY", 1)


def test_a_batch_whose_shadows_overflow_a_lane_is_refused_alike():
    """TMR on every position of one channel: 81 neurons x 2 shadows fit a lane for one image, not for a chunk of
    16 (2,592 > shadow_lane 2,048). The host does not batch it; a hostile BATCH stops the kernel and the emulator
    alike with SHADOW_OVERFLOW at that descriptor, and a run of one image (no chunk) goes through."""
    from resilq.ir import Protection

    rng = np.random.default_rng(14)
    shape = (9, 9, 9)
    model = calibrated_model(rng, shape, [("conv", 16, 3, 1, 1), ("flatten",), ("head", 3)], "full-lane")
    model = model.with_protection({0: Protection(Scheme.TMR, np.arange(81, dtype=np.int32))})  # channel 0
    assert not plan_model(model, DEFAULT_CONFIG)[0].batched
    x = model.quantize_input(rng.random((16, *shape), dtype=np.float32))
    emulated, simulated = _hostile_batch(model, x, 0, (16, 1))
    assert [o[:2] for o in emulated] == [("SHADOW_OVERFLOW", 0), ("OK", 0)]
    assert emulated == simulated  # MODEL_CYCLES too: the kernel completes the chunk it overflows in, then stops
