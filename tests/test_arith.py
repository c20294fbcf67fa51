"""The one Python requantize / fault / corrector implementation, against first principles."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilq.arith import (
    SPLIT_HALF_MAX,
    FaultMode,
    Scheme,
    apply_fault,
    correct,
    correct_dup_and,
    correct_dup_min,
    correct_split,
    correct_tmr,
    flip_bit,
    requantize,
    round_shift_half_even,
    split_half,
)

int8 = st.integers(-128, 127)


def rhe_reference(acc: int, shift: int) -> int:
    """Python's round() is round-half-to-even on exact rationals."""
    return round(Fraction(acc, 2**shift))


@pytest.mark.parametrize("acc,shift,expected", [
    (5, 1, 2), (7, 1, 4), (-5, 1, -2), (-7, 1, -4), (6, 2, 2), (10, 2, 2), (14, 2, 4), (-6, 2, -2), (-10, 2, -2),
    (3, 0, 3), (-3, 0, -3), (1, 1, 0), (-1, 1, 0), (3, 1, 2), (-3, 1, -2), (2**31 - 1, 31, 1), (-(2**31), 31, -1),
])
def test_round_half_even_ties_and_signs(acc, shift, expected):
    assert int(round_shift_half_even(acc, shift)) == expected == rhe_reference(acc, shift)


@given(st.integers(-(2**31), 2**31 - 1), st.integers(0, 31))
def test_round_shift_matches_exact_rational_rounding(acc, shift):
    assert int(round_shift_half_even(acc, shift)) == rhe_reference(acc, shift)


@given(st.integers(-(2**31), 2**31 - 1), st.integers(0, 31), st.booleans())
def test_requantize_saturates(acc, shift, relu):
    lo = 0 if relu else -128
    expected = min(127, max(lo, rhe_reference(acc, shift)))
    out = requantize(np.array([acc]), shift, lo, 127)
    assert out.dtype == np.int8 and int(out[0]) == expected


def test_round_shift_vectorised_over_ties_and_every_shift():
    """Arrays with a per-row shift of every value 0..31 (0 included beside the others): every tie, its
    neighbours and random values, against the rational reference, element by element."""
    rng = np.random.default_rng(5)
    shift = np.arange(32)[:, None]
    ties = (np.arange(-40, 40)[None, :] * 2 + 1) << shift >> 1  # odd multiples of half: exact ties
    acc = np.concatenate([ties - 1, ties, ties + 1, rng.integers(-(2**31), 2**31, (32, 80))], axis=1)
    acc = np.clip(acc, -(2**31), 2**31 - 1)
    got = round_shift_half_even(acc, shift)
    want = [[rhe_reference(int(a), int(s)) for a in row] for row, s in zip(acc, shift[:, 0])]
    assert got.shape == acc.shape and got.tolist() == want


def test_requantize_is_vectorised_per_channel():
    acc = np.array([[100, 100], [-100, 300]])
    out = requantize(acc, np.array([1, 2]), -128, 127)
    assert out.tolist() == [[50, 25], [-50, 75]]


def test_shift_out_of_range_is_refused():
    with pytest.raises(ValueError, match="shift"):
        requantize(np.array([1]), 32)
    with pytest.raises(ValueError, match="shift"):
        requantize(np.array([1]), -1)


@given(int8, st.integers(0, 7))
def test_flip_bit_is_xor_of_the_pattern(v, k):
    assert int(flip_bit(v, k)) == int(np.uint8((v & 0xFF) ^ (1 << k)).view(np.int8))
    assert int(flip_bit(flip_bit(v, k), k)) == v


@given(int8, st.integers(1, 255))
def test_fault_modes(v, mask):
    bits = v & 0xFF
    as_i8 = lambda b: int(np.uint8(b).view(np.int8))  # noqa: E731
    assert int(apply_fault(v, mask, FaultMode.FLIP)) == as_i8(bits ^ mask)
    assert int(apply_fault(v, mask, FaultMode.STUCK_AT_0)) == as_i8(bits & ~mask & 0xFF)
    assert int(apply_fault(v, mask, FaultMode.STUCK_AT_1)) == as_i8(bits | mask)


def test_sign_bit_flip_of_a_positive_value():
    assert int(flip_bit(5, 7)) == 5 - 128
    assert int(flip_bit(0, 6)) == 64


@given(int8, int8)
def test_split_corrector_formula(a, b):
    expected = (((a & 0xFF) & (b & 0xFF) & 0xBF) << 1) & 0xFF
    assert int(correct_split(a, b)) & 0xFF == expected


@given(int8, int8, int8)
def test_tmr_is_bitwise_majority(a, b, c):
    out = int(correct_tmr(a, b, c)) & 0xFF
    for bit in range(8):
        votes = sum((x >> bit) & 1 for x in (a & 0xFF, b & 0xFF, c & 0xFF))
        assert (out >> bit) & 1 == (votes >= 2)


@given(int8, int8)
def test_dup_correctors(a, b):
    assert int(correct_dup_and(a, b)) == a & b
    assert int(correct_dup_min(a, b)) == min(a, b)


@given(st.integers(0, 127 * 2**6 + 200), st.integers(0, 12))
def test_split_fault_free_is_within_one_lsb_of_the_full_neuron(acc, shift):
    """Fault-free split: both halves equal, the LCU returns 2*half, at most one LSB from the full value
    (or the clamp of the half at 63 when the full value is 127)."""
    full = int(requantize(acc, shift, 0, 127))
    half = int(split_half(acc, shift))
    assert 0 <= half <= SPLIT_HALF_MAX
    corrected = int(correct(Scheme.SPLIT, [half, half]))
    assert corrected == 2 * half
    assert abs(corrected - full) <= 1


def test_scheme_parse_and_copies():
    assert Scheme.parse("dup-and") is Scheme.DUP_AND and Scheme.parse("TMR") is Scheme.TMR
    assert [s.copies for s in Scheme] == [2, 3, 2, 2]
    with pytest.raises(ValueError, match="unknown protection scheme"):
        Scheme.parse("quad")
    with pytest.raises(ValueError, match="reads 3 slots"):
        correct(Scheme.TMR, [np.int8(1), np.int8(2)])
