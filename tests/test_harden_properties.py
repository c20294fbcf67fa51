"""Property tests of the correctors (SPEC §4) and what a single-bit flip in one slot can do to a protected
neuron.

"Never larger" means: for a protected neuron of a ReLU layer, the corrected value after any single-bit flip
in any ONE of its slots is <= the corrected value without the fault. For ``tmr``, ``dup-and`` and ``dup-min``
the fault-free corrected value is the neuron's value v; for ``split`` it is 2*h, where h is the half-value
both halves compute (|2h - v| <= 1: odd values lose their LSB, 127 becomes 126), so a flip can only clear
bits of 2h, never set one. ``tmr`` restores v exactly. The bound needs v >= 0 (ReLU): with a negative v,
AND-ing can clear the sign bit and make the value larger (e.g. -1 & 0x7F = 127); only ``dup-min`` and
``tmr`` stay safe there.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilq.arith import Scheme, correct, flip_bit, split_half
from resilq.faults import Fault, shadow_slot
from resilq.harden import HardeningPlan, Threshold, harden
from resilq.ir import Executor

from bruteforce import synthetic_nvf
from factories import random_model

int8 = st.integers(-128, 127)
relu_value = st.integers(0, 127)
half_value = st.integers(0, 63)
bit = st.integers(0, 7)


def u8(v: int) -> int:
    return v & 0xFF


def s8(b: int) -> int:
    b &= 0xFF
    return b - 256 if b & 0x80 else b


def spec_corrector(scheme: Scheme, slots: list[int]) -> int:
    """SPEC §4's table, written from the text with Python integers."""
    if scheme is Scheme.SPLIT:
        a, b = slots
        return s8(((u8(a) & u8(b)) & 0xBF) << 1)
    if scheme is Scheme.TMR:
        a, b, c = map(u8, slots)
        return s8((a & b) | (a & c) | (b & c))
    if scheme is Scheme.DUP_AND:
        return s8(u8(slots[0]) & u8(slots[1]))
    return min(slots)


@pytest.mark.parametrize("scheme", list(Scheme))
@given(data=st.data())
def test_correctors_match_the_spec(scheme, data):
    slots = data.draw(st.lists(int8, min_size=scheme.copies, max_size=scheme.copies))
    assert int(correct(scheme, [np.int8(v) for v in slots])) == spec_corrector(scheme, slots)


@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN])
@given(v=relu_value, k=bit, data=st.data())
def test_one_flipped_copy_never_raises_a_full_copy_neuron(scheme, v, k, data):
    which = data.draw(st.integers(0, scheme.copies - 1))
    slots = [np.int8(v)] * scheme.copies
    slots[which] = flip_bit(v, k)
    out = int(correct(scheme, slots))
    assert out <= v
    if scheme is Scheme.TMR:
        assert out == v


@given(h=half_value, k=bit, which=st.integers(0, 1))
def test_one_flipped_half_never_raises_a_split_neuron(h, k, which):
    slots = [np.int8(h), np.int8(h)]
    slots[which] = flip_bit(h, k)
    fault_free = int(correct(Scheme.SPLIT, [np.int8(h), np.int8(h)]))
    assert fault_free == 2 * h
    out = int(correct(Scheme.SPLIT, slots))
    assert 0 <= out <= fault_free
    assert out == (2 * (h & ~(1 << k)) if k < 6 else 2 * h)  # bits 6 and 7 are masked completely


@given(acc=st.integers(-(2**20), 2**20), shift=st.integers(0, 12), k=bit, which=st.integers(0, 1))
def test_split_bound_holds_for_halves_computed_from_accumulators(acc, shift, k, which):
    """The same property starting from an int32 accumulator (halves via split_half, as the executor does)."""
    h = int(split_half(acc, shift))
    slots = [np.int8(h), np.int8(h)]
    slots[which] = flip_bit(h, k)
    assert int(correct(Scheme.SPLIT, slots)) <= 2 * h


@given(v=st.integers(-128, -1), k=bit)
def test_dup_and_can_raise_a_negative_value(v, k):
    """Why the bound is stated for ReLU layers: AND can clear the sign bit of a negative copy."""
    out = int(correct(Scheme.DUP_AND, [np.int8(v), flip_bit(v, k)]))
    assert (out > v) == (k == 7)
    assert int(correct(Scheme.DUP_MIN, [np.int8(v), flip_bit(v, k)])) <= v


# ------------------------------------------------------------------ the same, exhaustively, in a network
@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(11)
    images = rng.random((6, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images)
    return model, synthetic_nvf(model, rng), model.quantize_input(images)


@pytest.mark.parametrize("scheme", list(Scheme))
def test_every_single_bit_flip_in_every_slot_of_a_protected_layer(network, scheme):
    """conv2 and fc1 protected at NVF >= 0.25: for every slot (original or shadow) of every protected neuron
    and every bit, the corrected layer output is <= the fault-free one element-wise, and equal for tmr."""
    model, nvf, x = network
    hard = harden(model, nvf, HardeningPlan(scheme, Threshold(0.25), layers=("conv2", "fc1"))).model
    executor = Executor(hard)
    golden = executor.run(x, collect=True).activations
    checked = 0
    for i in (2, 4):
        prot = hard.protection(i)
        assert prot.n_protected > 5
        slots = [int(n) for n in prot.neurons]
        slots += [shadow_slot(hard, i, p, c) for p in range(prot.n_protected) for c in range(1, prot.copies)]
        for slot in slots:
            for k in range(8):
                out = executor.run(x, faults=[Fault.bit_flip(i, slot, k)], collect=True).activations[i]
                if scheme is Scheme.TMR:
                    assert np.array_equal(out, golden[i])
                else:
                    assert np.all(out.astype(np.int16) <= golden[i].astype(np.int16))
                checked += 1
    assert checked == 8 * (hard.n_protected * scheme.copies)
