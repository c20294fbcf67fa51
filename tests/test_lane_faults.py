"""The lane-fault correction property with TODAY's accelerator mapping (resilq.hls.mapping.slot_lanes).

In the current datapath every shadow slot is recomputed by the PE lane of its original (docs/accelerator.md,
hls/include/resilq/conv.hpp), so one persistent lane fault hits every copy of a protected neuron alike:

* TMR's vote and dup-and's AND see three / two equal corrupted copies: they correct no single lane flip;
* split's LCU ``((a & b) & 0xBF) << 1`` "corrects" only what it removes from any value -- bit 6 (reset) and
  bit 7 (shifted out) of the halves -- and no other bit.

The lane-diverse mapping (shadow ``j`` on another lane) is the hardware part of issue #15 still to come; the
last test shows, with output faults placed where such a mapping WOULD put them (a hypothesis, not the
hardware), that TMR would then correct every single lane fault on a protected neuron.
"""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme, as_bits
from resilq.fault_kinds import LaneFault
from resilq.faults import Fault, slot_owner
from resilq.hls.mapping import slot_lanes
from resilq.ir import Executor

from factories import protect, random_model

PE = 4


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(21)
    model = random_model(rng, channels=(6, 8), hidden=16)
    x = model.quantize_input(rng.random((16, 1, 12, 12), dtype=np.float32))
    return model, x


def _protected(net, scheme):
    model, x = net
    return protect(model, np.random.default_rng(3), scheme, 0.5), x


@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT, Scheme.DUP_AND])
def test_every_copy_of_a_protected_neuron_shares_its_lane(net, scheme):
    model, _ = _protected(net, scheme)
    for i in model.neuron_layers:
        prot = model.protection(i)
        if prot is None:
            continue
        lanes = slot_lanes(model, i, PE)
        for s in range(model.neurons_in(i), model.slots_in(i)):
            neuron, copy = slot_owner(model, i, s)
            assert copy >= 1 and lanes[s] == lanes[neuron]


@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.SPLIT, Scheme.DUP_AND])
def test_which_single_lane_flips_today_s_redundancy_corrects(net, scheme):
    model, x = _protected(net, scheme)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    checked = 0
    for i in model.neuron_layers:
        prot = model.protection(i)
        if prot is None:
            continue
        neuron_lane = slot_lanes(model, i, PE)[:model.neurons_in(i)]
        for lane in range(PE):
            hit = prot.neurons[neuron_lane[prot.neurons] == lane]
            if not hit.size:
                continue
            for bit in range(8):
                out = ex.run(x, [LaneFault(lane, i, 1 << bit, FaultMode.FLIP, PE)], collect=True).activations[i]
                got = out.reshape(len(x), -1)[:, hit]
                want = golden[i].reshape(len(x), -1)[:, hit]
                corrected = np.array_equal(got, want)
                if scheme is Scheme.SPLIT:
                    # the LCU drops bits 6 and 7 of the halves whatever the fault: those flips vanish, no others
                    assert corrected == (bit >= 6), (i, lane, bit)
                else:
                    # every copy flipped alike: the vote / AND passes the flip through on every input
                    assert not corrected, (i, lane, bit)
                    assert np.array_equal(as_bits(got), as_bits(want) ^ np.uint8(1 << bit))
                checked += 1
    assert checked >= 3 * 8


def test_a_lane_diverse_mapping_would_let_tmr_correct_every_single_lane_fault(net):
    """Hypothesis for the hardware still to come (NOT today's mapping): shadow j of a neuron on lane p runs
    on lane (p + j) % PE. The faults such a lane would cause are placed as output faults by hand."""
    model, x = _protected(net, Scheme.TMR)
    ex = Executor(model)
    golden = ex.run(x, collect=True).activations
    for i in model.neuron_layers:
        prot = model.protection(i)
        if prot is None:
            continue
        today = slot_lanes(model, i, PE)
        n_out = model.neurons_in(i)
        rotated = today.copy()
        for s in range(n_out, model.slots_in(i)):
            _, copy = slot_owner(model, i, s)
            rotated[s] = (today[s] + copy) % PE
        for lane in range(PE):
            faults = [Fault(i, int(s), 1 << 7) for s in np.flatnonzero(rotated == lane)]
            out = ex.run(x, faults, collect=True).activations[i].reshape(len(x), -1)
            want = golden[i].reshape(len(x), -1)
            assert np.array_equal(out[:, prot.neurons], want[:, prot.neurons])  # every protected neuron corrected
            unprotected = np.setdiff1d(np.flatnonzero(today[:n_out] == lane), prot.neurons)
            if unprotected.size:
                assert not np.array_equal(out[:, unprotected], want[:, unprotected])
