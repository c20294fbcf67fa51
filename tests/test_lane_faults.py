"""Redundancy that survives a persistent PE-lane fault (issue #15): lane-diverse shadows.

The accelerator computes shadow ``j`` of a neuron owned by lane ``q`` on lane ``(q + j) mod PE``
(hls/include/resilq/conv.hpp; resilq.hls.mapping.shadow_lane / slot_lanes, which the Python engines use
too), so with ``PE >= copies`` no lane computes two copies of one protected neuron. Checked here on the
executor with :class:`resilq.fault_kinds.LaneFault` (the C-sim and the emulator equal it fault by fault:
tests/test_hls_lane.py):

* TMR corrects every single lane fault on every protected neuron (one corrupted copy out of three);
* split and dup-and correct every lane fault that only sets bits (the AND with the intact copy), and
  split every flip of bit 6 or 7 of a half (the LCU drops them);
* where the mapping shares a lane -- TMR at PE = 2, whose second shadow runs on the original's lane; any
  scheme at PE = 1 -- a lane fault on that lane is not corrected.
"""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme
from resilq.fault_kinds import LaneFault
from resilq.faults import slot_owner
from resilq.hls.mapping import dsp_partner, shadow_lane, slot_lanes
from resilq.ir import Executor

from factories import protect, random_model


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(21)
    model = random_model(rng, channels=(6, 8), hidden=16)
    x = model.quantize_input(rng.random((16, 1, 12, 12), dtype=np.float32))
    return model, x


def _protected(net, scheme):
    model, x = net
    return protect(model, np.random.default_rng(3), scheme, 0.5), x


def _copy_slots(model, pe):
    """(layer, protected neuron, its copies' slots -- original first, then its shadows --, the layer's slot lanes)."""
    for i in model.neuron_layers:
        prot = model.protection(i)
        if prot is None:
            continue
        lanes = slot_lanes(model, i, pe)
        for k, neuron in enumerate(prot.neurons):
            yield i, neuron, [int(neuron)] + [model.neurons_in(i) + k * (prot.copies - 1) + j
                                               for j in range(prot.copies - 1)], lanes


@pytest.mark.parametrize("pe", [1, 2, 4, 8])
@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT, Scheme.DUP_AND])
def test_copies_of_a_protected_neuron_run_on_different_lanes(net, scheme, pe):
    model, _ = _protected(net, scheme)
    for i, neuron, slots, lanes in _copy_slots(model, pe):
        prot = model.protection(i)
        assert [slot_owner(model, i, s) for s in slots] == [(int(neuron), c) for c in range(prot.copies)]
        used = lanes[slots]
        assert used[0] == lanes[neuron] and list(used[1:]) == [shadow_lane(lanes[neuron], j, pe)
                                                                for j in range(1, prot.copies)]
        distinct = len(set(used.tolist()))
        assert distinct == min(prot.copies, pe)  # all different when PE >= copies, shared only by pigeonhole


@pytest.mark.parametrize("pe", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT])
def test_copies_of_a_protected_neuron_share_no_dsp_when_pe_is_twice_the_copies(net, scheme, pe):
    """Lanes q and q + PE/2 share one DSP48E1 (ops::mac_pair): the copies of a protected neuron never sit on
    partners when PE >= 2 * copies; below that some do (split at PE = 2, TMR at PE = 4)."""
    model, _ = _protected(net, scheme)
    copies = 3 if scheme == Scheme.TMR else 2
    shared = False
    for _, _, slots, lanes in _copy_slots(model, pe):
        dsps = {min(int(lane), int(dsp_partner(int(lane), pe))) for lane in lanes[slots]}
        shared = shared or len(dsps) < copies
    assert shared == (pe < 2 * copies)


def test_dsp_partners_are_half_the_array_apart():
    assert [dsp_partner(q, 8) for q in range(8)] == [4, 5, 6, 7, 0, 1, 2, 3]
    assert dsp_partner(0, 1) == 0 and list(dsp_partner(np.arange(2), 2)) == [1, 0]


def _protected_after(ex, x, golden, model, i, lane, mask, mode, pe):
    out = ex.run(x, [LaneFault(lane, i, mask, mode, pe)], collect=True).activations[i].reshape(len(x), -1)
    prot = model.protection(i).neurons
    return out[:, prot], golden[i].reshape(len(x), -1)[:, prot]


@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT, Scheme.DUP_AND])
def test_single_lane_faults_on_protected_neurons_are_corrected(net, scheme):
    pe = 4
    model, x = _protected(net, scheme)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    checked = failed_unprotected = 0
    for i in model.neuron_layers:
        if model.protection(i) is None:
            continue
        for lane in range(pe):
            for bit in range(8):
                for mode in (FaultMode.FLIP, FaultMode.STUCK_AT_1):
                    got, want = _protected_after(ex, x, golden, model, i, lane, 1 << bit, mode, pe)
                    if scheme is Scheme.TMR or mode is FaultMode.STUCK_AT_1 or (scheme is Scheme.SPLIT and bit >= 6):
                        assert np.array_equal(got, want), (scheme, i, lane, bit, mode)
                        checked += 1
                    elif not np.array_equal(got, want):
                        failed_unprotected += 1  # a 1 -> 0 flip in one copy passes the AND: not corrected
    assert checked >= 2 * 4 * 8
    if scheme is not Scheme.TMR:
        assert failed_unprotected > 0  # the test can tell corrected from not


@pytest.mark.parametrize("pe,scheme", [(2, Scheme.TMR), (1, Scheme.TMR), (1, Scheme.DUP_AND)])
def test_a_shared_lane_is_not_corrected(net, pe, scheme):
    model, x = _protected(net, scheme)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    i = next(i for i in model.neuron_layers if model.protection(i) is not None)
    lanes = slot_lanes(model, i, pe)
    prot = model.protection(i)
    # the lane of a protected neuron whose copies share it (TMR at PE 2: the original and shadow 2)
    lane = int(lanes[prot.neurons[0]])
    got, want = _protected_after(ex, x, golden, model, i, lane, 0x01, FaultMode.FLIP, pe)
    shared = lanes[prot.neurons] == lane
    assert not np.array_equal(got[:, shared], want[:, shared])
