"""Redundancy that survives a persistent PE-lane fault (issue #15): lane-diverse shadows.

The accelerator computes shadow ``j`` of a neuron owned by lane ``q`` on a dedicated shadow lane (``PE + k``) where
its tile and position need at most ``shadow_units`` shadow values, else on lane ``(q + j) mod PE`` (a rotated
array pass; hls/include/resilq/conv.hpp; resilq.hls.mapping.shadow_lane / slot_lanes, which the Python engines
use too), so with ``PE >= copies`` no lane computes two copies of one protected neuron. Checked here on the
executor with :class:`resilq.fault_kinds.LaneFault` (the C-sim and the emulator equal it fault by fault:
tests/test_hls_lane.py):

* TMR corrects every single lane fault on every protected neuron (one corrupted copy out of three);
* split and dup-and correct every lane fault that only sets bits (the AND with the intact copy), and
  split every flip of bit 6 or 7 of a half (the LCU drops them);
* where the mapping shares a lane -- a rotated pass of TMR at PE = 2, whose second shadow runs on the original's
  lane; any scheme at PE = 1 -- a lane fault on that lane is not corrected; a shadow lane's copies are.
"""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme
from resilq.fault_kinds import LaneFault
from resilq.faults import slot_owner
from resilq.hls.mapping import dsp_partner, shadow_lane, shadow_ranks, slot_lanes
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


def _copy_slots(model, pe, units=0):
    """(layer, protected neuron, its copies' slots -- original first, then its shadows --, the layer's slot lanes,
    whether its position is spare: the shadow lanes compute its shadows)."""
    for i in model.neuron_layers:
        prot = model.protection(i)
        if prot is None:
            continue
        lanes = slot_lanes(model, i, pe, units)
        hw_out = model.neurons_in(i) // model.out_shape(i)[0]
        _, spare = shadow_ranks(prot.neurons, hw_out, prot.copies, pe, units)
        for k, neuron in enumerate(prot.neurons):
            yield i, neuron, [int(neuron)] + [model.neurons_in(i) + k * (prot.copies - 1) + j
                                               for j in range(prot.copies - 1)], lanes, bool(spare[k])


@pytest.mark.parametrize("units", [0, 2, 4])
@pytest.mark.parametrize("pe", [1, 2, 4, 8])
@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT, Scheme.DUP_AND])
def test_copies_of_a_protected_neuron_run_on_different_lanes(net, scheme, pe, units):
    model, _ = _protected(net, scheme)
    spares = 0
    for i, neuron, slots, lanes, spare in _copy_slots(model, pe, units):
        prot = model.protection(i)
        assert [slot_owner(model, i, s) for s in slots] == [(int(neuron), c) for c in range(prot.copies)]
        used = lanes[slots]
        assert used[0] == lanes[neuron] < pe
        if spare:  # the dedicated shadow lanes, all different, beside the array
            assert all(pe <= lane < pe + units for lane in used[1:])
            assert len(set(used.tolist())) == prot.copies
            spares += 1
        else:
            assert list(used[1:]) == [shadow_lane(lanes[neuron], j, pe) for j in range(1, prot.copies)]
            assert len(set(used.tolist())) == min(prot.copies, pe)  # shared only by pigeonhole
    assert (spares > 0) == (units >= 1 and (units >= 2 or scheme != Scheme.TMR))  # the test sees both paths


def test_shadow_lanes_take_each_position_by_rank():
    """Tile 0 position 3 holds lanes 1 and 2 (rank 0, 1); with TMR they need 4 shadow values: spare at 4 units."""
    neurons = np.array([1 * 16 + 3, 2 * 16 + 3, 5 * 16 + 0, 9 * 16 + 3])  # PE 8, hw_out 16: lanes 1, 2, 5; tile 1
    rank, spare = shadow_ranks(neurons, 16, 3, 8, 4)
    assert list(rank) == [0, 1, 0, 0] and list(spare) == [True, True, True, True]
    rank, spare = shadow_ranks(neurons, 16, 3, 8, 2)
    assert list(spare) == [False, False, True, True]
    assert list(shadow_lane(np.array([2, 2]), np.array([1, 2]), 8, rank=2, spare=True)) == [10, 11]


@pytest.mark.parametrize("units", [0, 2])
@pytest.mark.parametrize("pe", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT])
def test_copies_of_a_protected_neuron_share_no_dsp_when_pe_is_twice_the_copies(net, scheme, pe, units):
    """Lanes q and q + PE/2 share one DSP48E1 (ops::mac_pair): the rotated copies of a protected neuron never sit
    on partners when PE >= 2 * copies; below that some do (split at PE = 2, TMR at PE = 4). A shadow lane has its
    own DSPs (ops::mac_single)."""
    model, _ = _protected(net, scheme)
    copies = 3 if scheme == Scheme.TMR else 2
    shared = dense = False
    for _, _, slots, lanes, spare in _copy_slots(model, pe, units):
        dsps = {min(int(lane), int(dsp_partner(int(lane), pe))) for lane in lanes[slots]}
        shared = shared or len(dsps) < copies
        assert not spare or len(dsps) == copies
        dense = dense or not spare
    assert shared == (dense and pe < 2 * copies)
    assert dense or units


def test_dsp_partners_are_half_the_array_apart():
    assert [dsp_partner(q, 8) for q in range(8)] == [4, 5, 6, 7, 0, 1, 2, 3]
    assert dsp_partner(0, 1) == 0 and list(dsp_partner(np.arange(2), 2)) == [1, 0]
    assert dsp_partner(9, 8) == 9 and list(dsp_partner(np.array([3, 8]), 8)) == [7, 8]  # shadow lanes: their own


def _protected_after(ex, x, golden, model, i, lane, mask, mode, pe, units=0):
    out = ex.run(x, [LaneFault(lane, i, mask, mode, pe, units)], collect=True).activations[i].reshape(len(x), -1)
    prot = model.protection(i).neurons
    return out[:, prot], golden[i].reshape(len(x), -1)[:, prot]


@pytest.mark.parametrize("units", [0, 2])
@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT, Scheme.DUP_AND])
def test_single_lane_faults_on_protected_neurons_are_corrected(net, scheme, units):
    pe = 4
    model, x = _protected(net, scheme)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    checked = failed_unprotected = 0
    for i in model.neuron_layers:
        if model.protection(i) is None:
            continue
        for lane in range(pe + units):
            for bit in range(8):
                for mode in (FaultMode.FLIP, FaultMode.STUCK_AT_1):
                    got, want = _protected_after(ex, x, golden, model, i, lane, 1 << bit, mode, pe, units)
                    if scheme is Scheme.TMR or mode is FaultMode.STUCK_AT_1 or (scheme is Scheme.SPLIT and bit >= 6):
                        assert np.array_equal(got, want), (scheme, i, lane, bit, mode)
                        checked += 1
                    elif not np.array_equal(got, want):
                        failed_unprotected += 1  # a 1 -> 0 flip in one copy passes the AND: not corrected
    assert checked >= 2 * (4 + units) * 8
    if scheme is not Scheme.TMR:
        assert failed_unprotected > 0  # the test can tell corrected from not


@pytest.mark.parametrize("pe,scheme", [(2, Scheme.TMR), (1, Scheme.TMR), (1, Scheme.DUP_AND)])
def test_a_shared_lane_is_not_corrected(net, pe, scheme):
    model, x = _protected(net, scheme)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    i = next(i for i in model.neuron_layers if model.protection(i) is not None)
    lanes = slot_lanes(model, i, pe)  # a build without shadow lanes: every shadow is a rotated pass
    prot = model.protection(i)
    # the lane of a protected neuron whose copies share it (TMR at PE 2: the original and shadow 2)
    lane = int(lanes[prot.neurons[0]])
    got, want = _protected_after(ex, x, golden, model, i, lane, 0x01, FaultMode.FLIP, pe)
    shared = lanes[prot.neurons] == lane
    assert not np.array_equal(got[:, shared], want[:, shared])


def test_shadow_lanes_keep_tmr_correcting_at_one_pe_lane(net):
    """PE = 1 shares its lane between a neuron's copies in a rotated pass; where the two shadow lanes take TMR's
    shadows (a position with one protected neuron: always at PE = 1) the lane fault is outvoted."""
    model, x = _protected(net, Scheme.TMR)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    i = next(i for i in model.neuron_layers if model.protection(i) is not None)
    assert (slot_lanes(model, i, 1, 2)[model.neurons_in(i):] >= 1).all()
    got, want = _protected_after(ex, x, golden, model, i, 0, 0x01, FaultMode.FLIP, 1, 2)
    assert np.array_equal(got, want)
    got, want = _protected_after(ex, x, golden, model, i, 0, 0x01, FaultMode.FLIP, 1, 0)
    assert not np.array_equal(got, want)
