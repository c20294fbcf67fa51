"""Max-pool fused at the conv output (issue #14): a conv whose next layer is a max-pool leaves its map in the
output buffer (``Flag.POOL_NEXT``) and the pool reads it there, image by image, instead of loading it back from
DDR. C-sim == emulator == executor at every layer, with the range restriction (whose ``zero`` variant does not
commute with the max), a protected conv (the pool reads the corrected map), faults, overlapping windows
(kernel 3, stride 2) and more channels than output-buffer banks (several row groups pooled in place); the
cycle counter equals the cycle model, and the same image with the flag cleared (the pool reading DDR) gives
the same values for more cycles.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hls_support import CSIM, assert_layers, calibrated_model, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.faults import Fault
from resilq.hls import imageformat as fmt
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.cycles import cycle_report, layer_cycles
from resilq.hls.mapping import plan_model
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Clip, Executor

pytestmark = CSIM
IMAGES = 3
SPECS = [("conv", 20, 3, 1, 1), ("pool", 3, 2), ("conv", 9, 3, 1, 0), ("pool", 2, 2), ("flatten",), ("head", 5)]


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(5)
    model = calibrated_model(rng, (3, 13, 13), SPECS, "pooled")
    x = model.quantize_input(rng.random((IMAGES, 3, 13, 13), dtype=np.float32))
    conv = model.layers[0]
    clipped = dataclasses.replace(conv, clip=Clip(40, "zero"))  # the ``zero`` variant: max(clip) != clip(max)
    model = dataclasses.replace(model, layers=(clipped, *model.layers[1:]))
    return protect_fraction(model, np.random.default_rng(6), Scheme.SPLIT, 0.1), x


def test_the_plan_pools_every_conv_output_on_chip(network):
    model, _ = network
    plans = plan_model(model, DEFAULT_CONFIG)
    assert [p.pool_next for p in plans] == [True, False, True, False, False]
    assert [p.on_chip_input for p in plans] == [False, True, False, True, False]
    assert plans[0].out_c > DEFAULT_CONFIG.out_banks  # several row groups of the output buffer are pooled in place


def test_pool_on_chip_bit_exact_with_cycles_and_faults(network):
    model, x = network
    ref = Executor(model).run(x, collect=True)
    unclipped = Executor(model.without_clip()).run(x, collect=True)
    assert not np.array_equal(ref.activations[1], unclipped.activations[1]), "the clip must change the pooled map"
    acc = CsimAccelerator(model, batch=IMAGES)
    run = acc.run(x)
    assert_layers(run.activations, ref.activations, "C-sim")
    report = cycle_report(model, DEFAULT_CONFIG, images=IMAGES)
    assert list(run.profile) == [layer.total for layer in report.layers]
    assert run.cycles == report.total
    emu = Accelerator(EmulatedAccelerator(), model, batch=IMAGES, keep_activations=True)
    out = emu.run(x)
    assert_layers(out.activations, ref.activations, "emulator")
    assert out.cycles == run.cycles and np.array_equal(out.profile, run.profile)
    # faults on the conv's plain neurons, a protected original and its shadow: the pool reads what the LCU left
    prot = model.protection(0)
    n = model.neurons_in(0)
    faults = [Fault(0, 7, 0x41, FaultMode.FLIP), Fault(0, int(prot.neurons[0]), 0x40, FaultMode.STUCK_AT_1),
              Fault(0, n, 0x02, FaultMode.FLIP), Fault(2, 3, 0x80, FaultMode.FLIP)]
    for fault in faults:
        want = Executor(model).run(x, faults=[fault], collect=True)
        assert_layers(acc.run(x, fault=fault).activations, want.activations, f"C-sim {fault}")
        assert_layers(emu.run(x, fault).activations, want.activations, f"emulator {fault}")


def test_the_same_image_through_ddr_gives_the_same_values_for_more_cycles(network):
    model, x = network
    acc = CsimAccelerator(model, batch=IMAGES)
    fused = acc.run(x)
    words = acc.image.buffer.view("<u4")
    base = int(words[fmt.HeaderWord.DESC_OFFSET]) // 4
    pool_next = np.uint32(int(fmt.Flag.POOL_NEXT) << 8)
    for k, plan in enumerate(acc.image.plans):
        if plan.pool_next:
            words[base + k * fmt.DESC_WORDS + fmt.DescWord.OP_FLAGS] &= ~pool_next
    through_ddr = acc.run(x)
    assert_layers(through_ddr.activations, fused.activations, "pool from DDR")
    plans = [dataclasses.replace(p, flags=p.flags & ~fmt.Flag.POOL_NEXT, on_chip_input=False) for p in acc.image.plans]
    assert list(through_ddr.profile) == [layer_cycles(p, DEFAULT_CONFIG, IMAGES).total for p in plans]
    saved = [b - a for a, b in zip(fused.profile, through_ddr.profile)]
    assert saved[0] == 0 and saved[1] > 0 and saved[3] > 0  # the pools lose their input loads (and their lanes)


def test_the_pool_is_checked_before_its_conv_runs_into_a_bad_table(network):
    """The kernel fetches and checks a POOL_NEXT conv's pool before the conv runs, and meets a bad critical table
    only while the conv runs: with both wrong, the pool's LAYOUT is what STATUS reports, on the C-sim and in the
    emulator alike; with only the table wrong, TABLE_RANGE at the conv."""
    from resilq.deploy.targets import CsimTarget
    from resilq.hls import host

    model, x = network
    accels = [Accelerator(EmulatedAccelerator(), model, batch=IMAGES),
              Accelerator(CsimTarget.open(DEFAULT_CONFIG), model, batch=IMAGES)]

    def outcome(accel, bad_pool):
        accel.run(x)
        words = accel.image.buffer.view("<u4")
        saved = words.copy()
        table = accel.image.table.copy()
        table[[0, 1]] = table[[1, 0]]  # conv0's entries out of order
        host.write_table(accel.device, table)
        if bad_pool:
            at = int(words[fmt.HeaderWord.DESC_OFFSET]) // 4 + fmt.DESC_WORDS
            words[at + fmt.DescWord.IN_C] -= 1
            words[at + fmt.DescWord.OUT_C] -= 1
        status = host.run(accel.device, IMAGES)
        words[:] = saved
        host.write_table(accel.device, accel.image.table)
        return status.code.name, status.descriptor

    for bad_pool, want in ((True, ("LAYOUT", 1)), (False, ("TABLE_RANGE", 0))):
        assert [outcome(a, bad_pool) for a in accels] == [want, want]
