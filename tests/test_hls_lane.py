"""Persistent PE-lane faults on the accelerator (issue #15): C-sim == emulator == executor, fault by fault.

FI_CTRL.KIND = 1 makes the fault unit hit every value PE lane FI_SLOT writes (in FI_LAYER, or with
ALL_LAYERS in every neuron layer), originals and shadows, which run lane-diverse (on the dedicated shadow lanes
PE.. where a position's shadows fit them, else shadow j of lane q's neuron on lane q + j mod PE). The executor applies the same :class:`resilq.fault_kinds.LaneFault` through
resilq.hls.mapping.slot_lanes, so equality here ties the Python lane model to the hardware's. FI_HITS and
CORRECTIONS equal resilq.hls.reference. LeNet-5 trained on digits, 8 images (batched FC layers).
"""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.errors import ParameterError
from resilq.fault_kinds import LaneFault
from resilq.hls import host
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.cycles import cycle_report
from resilq.hls.imageformat import Status
from resilq.hls.reference import expected_corrections, expected_fi_hits
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Executor

pytestmark = CSIM
IMAGES = 8
PE = DEFAULT_CONFIG.pe
UNITS = DEFAULT_CONFIG.shadow_units
ROTATED = AccelConfig(shadow_units=0)  # a build whose shadows are all rotated array passes


def lenet(trained, scheme):
    model = trained.model
    if scheme is not None:
        model = protect_fraction(model, np.random.default_rng(11), scheme, 0.1)
    return model, model.quantize_input(trained.test.images[:IMAGES])


def same_layers(got, want, where):
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"{where}: layer {i} differs in {np.count_nonzero(a != b)} values"


SCHEMES = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]


@pytest.mark.parametrize("scheme,config", [(s, DEFAULT_CONFIG) for s in SCHEMES] +
                         [(s, ROTATED) for s in (Scheme.SPLIT, Scheme.TMR)],  # dup-*: split's rotated path
                         ids=lambda v: ("none" if v is None else v.label) if not isinstance(v, AccelConfig) else
                         ("shadow-lanes" if v.shadow_units else "rotated"))
def test_lane_faults_bit_exact_on_csim_and_emulator(digits_lenet, scheme, config):
    model, x = lenet(digits_lenet, scheme)
    units = config.shadow_units
    sim = CsimAccelerator(model, config, batch=IMAGES)
    emu = Accelerator(EmulatedAccelerator(config), model, config, batch=IMAGES, keep_activations=True)
    ex = Executor(model)
    rng = np.random.default_rng(5)
    faults = [LaneFault(lane, layer, int(rng.integers(1, 256)), FaultMode(int(rng.integers(3))), PE, units)
              for layer in model.neuron_layers for lane in rng.choice(PE, 3, replace=False)]
    faults += [LaneFault(lane, None, 0x40, FaultMode.STUCK_AT_1, PE, units) for lane in (0, 5)]  # every layer
    faults += [LaneFault(PE + k, layer, int(rng.integers(1, 256)), FaultMode.FLIP, PE, units)  # the shadow lanes
               for layer in model.neuron_layers for k in range(units)]
    corrected_somewhere, shadow_hits = False, 0
    assert sim.run(x, fault=faults[0]).status.cycles == cycle_report(model, config, IMAGES).total  # the model's count
    for fault in faults:
        want = ex.run(x, faults=[fault], collect=True)
        got = sim.run(x, fault=fault)
        same_layers(got.activations, want.activations, f"C-sim {fault}")
        hits = expected_fi_hits(fault, IMAGES, model=model)
        assert got.status.fi_hits == hits and (hits > 0 or fault.lane >= PE)  # a shadow lane may idle in a layer
        shadow_hits += hits if fault.lane >= PE else 0
        assert got.status.corrections == expected_corrections(model, x, fault)
        corrected_somewhere |= got.status.corrections > 0
        e = emu.run(x, fault=fault)
        same_layers(e.activations, want.activations, f"emulator {fault}")
        assert (e.fi_hits, e.corrections) == (got.status.fi_hits, got.status.corrections)
    assert corrected_somewhere == (scheme is not None)
    assert (shadow_hits > 0) == (scheme is not None and units > 0)  # the shadow lanes computed copies
    once = sim.run(x, fault=faults[0], once=True)  # a one-shot lane fault: the first image only
    assert once.status.fi_hits == expected_fi_hits(faults[0], IMAGES, once=True, model=model)
    same_layers([a[1:] for a in once.activations], [a[1:] for a in ex.run(x, collect=True).activations], "once")


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_weight_upsets_bit_exact_on_the_csim(digits_lenet, scheme):
    """A stored-word fault is a flipped bit in the DDR image's parameter block (resilq.deploy.upsets): the
    C-simulated kernel reading it equals the executor's WeightFault, every copy reading the one stored word."""
    from resilq.deploy.targets import CsimTarget
    from resilq.fault_kinds import WeightFault

    model, x = lenet(digits_lenet, scheme)
    acc = Accelerator(CsimTarget.open(DEFAULT_CONFIG), model, batch=IMAGES, keep_activations=True)
    ex = Executor(model)
    rng = np.random.default_rng(9)
    changed = 0
    for i, layer in enumerate(model.layers):
        if not hasattr(layer, "weight"):
            continue
        for fault in (WeightFault(i, int(rng.integers(layer.out_channels)), int(rng.integers(layer.fan_in)), 6),
                      WeightFault(i, int(rng.integers(layer.out_channels)), None, 12)):
            want = ex.run(x, faults=[fault], collect=True)
            got = acc.run(x, fault)
            same_layers(got.activations, want.activations, f"C-sim {fault}")
            changed += not np.array_equal(want.logits, ex.run(x).logits)
    assert changed  # some upsets matter, or the comparison proves nothing


def test_lane_beyond_the_array_is_refused(digits_lenet):
    model, x = lenet(digits_lenet, Scheme.TMR)
    sim = CsimAccelerator(model, batch=IMAGES)
    with pytest.raises(ParameterError, match="PE=8"):
        sim.run(x, fault=LaneFault(3, None, 1, FaultMode.FLIP, 16))
    with pytest.raises(ParameterError, match=f"PE=8 and {UNITS}"):
        sim.run(x, fault=LaneFault(3, None, 1, FaultMode.FLIP, PE, 0))
    beyond = PE + UNITS  # a hostile host writes the lane after the last shadow lane: STATUS FAULT_CONFIG
    sim._load()
    sim.image.write_inputs(x)
    host.set_fault(sim.device, LaneFault(beyond, None, 1, FaultMode.FLIP, 16))
    assert host.run(sim.device, IMAGES).code == Status.FAULT_CONFIG
    host.set_fault(sim.device, LaneFault(beyond - 1, None, 1, FaultMode.FLIP, 16))  # the last shadow lane: runs
    assert host.run(sim.device, IMAGES).code == Status.OK
    emu = EmulatedAccelerator()
    acc = Accelerator(emu, model, batch=IMAGES)
    acc.image.write_inputs(x)
    host.set_fault(emu, LaneFault(beyond, None, 1, FaultMode.FLIP, 16))
    assert host.run(emu, IMAGES).code == Status.FAULT_CONFIG
