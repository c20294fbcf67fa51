"""Stacked kernel rows (issue #14: LeNet-5's first conv at SIMD 16 and 32): a conv whose whole kernel row fits a
SIMD word twice (``kernel * in_c * 2 <= SIMD``) puts ``stack`` rows into one word (``LayerPlan.stack``, the
kernel's ``LayerGeom::stack``), the input buffer leaving a gap after every row so that the rows of a word sit in
distinct banks. C-sim == emulator == executor at every layer, on every scheme, with output and lane faults; the
counter and the per-descriptor profile equal the cycle model's (the dense input load reads a beat twice where a
row starts inside it); a stacked conv reading a padded map (and map-batched), and with kept weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, assert_layers, calibrated_model, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.fault_kinds import LaneFault
from resilq.faults import Fault
from resilq.hls.config import AccelConfig
from resilq.hls.cycles import cycle_report
from resilq.hls.mapping import plan_model
from resilq.hls.reference import expected_corrections
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Executor

pytestmark = CSIM

CASES = {
    # name: (input shape, layers, PE, SIMD, the first conv's stack, its words per position)
    "lenet5-conv1-simd16": ((1, 28, 28), [("conv", 6, 5, 1, 0), ("pool", 2, 2)], 8, 16, 3, 2),
    "lenet5-conv1-simd32": ((1, 28, 28), [("conv", 6, 5, 1, 0), ("pool", 2, 2)], 8, 32, 5, 1),
    "3x3-stride2-pad1-simd8": ((1, 13, 11), [("conv", 5, 3, 2, 1)], 4, 8, 2, 2),
    "2ch-3x3-pad1-simd16": ((2, 9, 10), [("conv", 4, 3, 1, 1)], 4, 16, 2, 2),
    "alexnet-conv0-simd32": ((3, 12, 12), [("conv", 6, 3, 1, 1), ("pool", 2, 2)], 4, 32, 3, 1),
}
HEAD = [("flatten",), ("fc", 12), ("head", 4)]


def _case(name, scheme, images=3):
    shape, layers, pe, simd, stack, words = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    model = calibrated_model(rng, shape, layers + HEAD, name)
    if scheme is not None:
        model = protect_fraction(model, rng, scheme, 0.25)
    config = AccelConfig(pe=pe, simd=simd)
    plan = plan_model(model, config)[0]
    assert (plan.stack, plan.mac_words) == (stack, words)
    x = model.quantize_input(rng.random((images, *shape), dtype=np.float32))
    return model, config, x


@pytest.mark.parametrize("scheme", [None, Scheme.SPLIT, Scheme.TMR], ids=lambda s: s.label if s else "none")
@pytest.mark.parametrize("name", sorted(CASES))
def test_stacked_rows_bit_exact_with_cycles(name, scheme):
    model, config, x = _case(name, scheme)
    ref = Executor(model).run(x, collect=True)
    run = CsimAccelerator(model, config, batch=x.shape[0]).run(x)
    assert_layers(run.activations, ref.activations, f"C-sim {name}")
    report = cycle_report(model, config, images=x.shape[0])
    assert list(run.profile) == [layer.total for layer in report.layers]
    assert run.cycles == report.total
    out = Accelerator(EmulatedAccelerator(config), model, config, batch=x.shape[0], keep_activations=True).run(x)
    assert_layers(out.activations, ref.activations, f"emulator {name}")
    assert out.cycles == run.cycles and np.array_equal(out.profile, run.profile)


def test_a_dense_input_reads_a_beat_twice_where_a_row_starts_inside_it():
    """28-byte rows: rows 1, 3, 5, ... start mid-beat (28 y = 4 mod 8 for odd y), rows 2, 4, ... on a beat."""
    model, config, _ = _case("lenet5-conv1-simd16", None)
    plan = plan_model(model, config)[0]
    assert plan.in_dense and plan.in_beats == 98 and plan.in_trips == 98 + 14
    model32, config32, _ = _case("alexnet-conv0-simd32", None)
    plan32 = plan_model(model32, config32)[0]
    assert plan32.in_dense and plan32.in_trips == plan32.in_beats + 6  # 36-byte rows: every odd row of 11


@pytest.mark.parametrize("name", ["lenet5-conv1-simd16", "3x3-stride2-pad1-simd8", "alexnet-conv0-simd32"])
def test_faults_in_a_stacked_conv(name):
    """A fault on a shadow slot and on an original, and persistent lane faults: C-sim == executor, the corrections
    the reference counts."""
    model, config, x = _case(name, Scheme.TMR)
    acc = CsimAccelerator(model, config, batch=x.shape[0])
    n = model.neurons_in(0)
    faults = [Fault(0, n + 1, 0x41, FaultMode.FLIP), Fault(0, int(model.protection(0).neurons[0]), 0x40,
                                                              FaultMode.STUCK_AT_1),
              LaneFault(1, layer=0, mask=0x10, mode=FaultMode.STUCK_AT_1, pe=config.pe),
              LaneFault(2, layer=None, mask=0x04, mode=FaultMode.FLIP, pe=config.pe)]
    for fault in faults:
        got = acc.run(x, fault=fault)
        assert_layers(got.activations, Executor(model).run(x, faults=[fault], collect=True).activations,
                      f"C-sim {name} {fault}")
        if isinstance(fault, Fault):
            assert got.status.corrections == expected_corrections(model, x, fault)


def test_a_stacked_conv_reading_a_padded_map_in_batches():
    """The second conv (2 channels, 3 x 3: 6 elements a row, 2 rows a word at SIMD 16) reads the first conv's
    padded output records, a chunk of images at a time (map-batched), each row followed by the buffer's gap."""
    rng = np.random.default_rng(31)
    shape = (1, 10, 10)
    model = calibrated_model(rng, shape, [("conv", 2, 3, 1, 1), ("conv", 5, 3, 1, 1)] + HEAD, "stacked-padded")
    model = protect_fraction(model, rng, Scheme.SPLIT, 0.2)
    config = AccelConfig(pe=4, simd=16)
    plans = plan_model(model, config)
    assert (plans[1].stack, plans[1].mac_words, plans[1].in_dense, plans[1].map_batched) == (2, 2, False, True)
    assert (plans[0].stack, plans[0].mac_words) == (3, 1)  # 1 channel: the whole 3 x 3 window in one word
    x = model.quantize_input(rng.random((20, *shape), dtype=np.float32))  # chunks of 16 and 4
    ref = Executor(model).run(x, collect=True)
    run = CsimAccelerator(model, config, batch=20).run(x)
    assert_layers(run.activations, ref.activations, "C-sim")
    report = cycle_report(model, config, images=20)
    assert list(run.profile) == [layer.total for layer in report.layers] and run.cycles == report.total
    out = Accelerator(EmulatedAccelerator(config), model, config, batch=20, keep_activations=True).run(x)
    assert out.cycles == run.cycles


def test_stacked_rows_with_kept_weights():
    """Kept weights lay each tile at mac_words words of its own: with stacked rows that is fewer words."""
    model, config, x = _case("lenet5-conv1-simd16", Scheme.TMR)
    csim = CsimAccelerator(model, config, batch=x.shape[0], keep_weights=True)
    assert csim.image.weights_tag != 0
    want = Executor(model).run(x, collect=True).activations
    cold = cycle_report(model, config, images=x.shape[0], kept=True)
    warm = cycle_report(model, config, images=x.shape[0], kept=True, warm=True)
    first = csim.run(x)
    assert first.cycles in (cold.total, warm.total)  # the IP may still hold them from another test's run
    for _ in range(2):
        run = csim.run(x)
        assert_layers(run.activations, want, "C-sim warm")
        assert run.cycles == warm.total
