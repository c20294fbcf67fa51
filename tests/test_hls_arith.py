"""The C++ arithmetic (hls/include/resilq/arith.hpp) against resilq.arith: edge cases and exhaustively."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hls_support import CSIM

from resilq.arith import (
    INT32_MAX,
    INT32_MIN,
    FaultMode,
    Scheme,
    apply_fault,
    clip_range,
    correct,
    requantize,
    round_shift_half_even,
    split_half,
)
from resilq.hls.csim import CsimDevice

pytestmark = CSIM


@pytest.fixture(scope="module")
def lib():
    return CsimDevice.open().lib


def _p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def edge_accumulators() -> tuple[np.ndarray, np.ndarray]:
    """(acc, shift) pairs: for every shift 0..31, ties, +-1 around ties, negatives, saturation, extremes."""
    accs, shifts = [], []
    rng = np.random.default_rng(5)
    for s in range(32):
        unit = 1 << s
        half = unit >> 1
        k = np.arange(-6, 7, dtype=np.int64)
        cand = np.concatenate([k * unit + half, k * unit - half, k * unit + half + 1, k * unit + half - 1, k * unit,
                               np.array([0, 1, -1, 127 * unit, 128 * unit, -128 * unit, -129 * unit,
                                         127 * unit + half, -128 * unit - half, INT32_MIN, INT32_MAX]),
                               rng.integers(INT32_MIN, INT32_MAX, 200, dtype=np.int64)])
        cand = cand[(cand >= INT32_MIN) & (cand <= INT32_MAX)]
        accs.append(cand)
        shifts.append(np.full(cand.size, s))
    return np.concatenate(accs).astype(np.int32), np.concatenate(shifts).astype(np.uint32)


def test_round_shift_half_even_matches_python(lib):
    acc, shift = edge_accumulators()
    out = np.zeros(acc.size, np.int32)
    lib.resilq_arith_round_shift(_p(acc), _p(shift), _p(out), ctypes.c_uint64(acc.size))
    want = round_shift_half_even(acc.astype(np.int64), shift.astype(np.int64))
    assert np.array_equal(out.astype(np.int64), want)


@pytest.mark.parametrize("lo,hi", [(-128, 127), (0, 127), (0, 63)])
def test_requantize_matches_python(lib, lo, hi):
    acc, shift = edge_accumulators()
    out = np.zeros(acc.size, np.int8)
    lib.resilq_arith_requantize(_p(acc), _p(shift), lo, hi, _p(out), ctypes.c_uint64(acc.size))
    assert np.array_equal(out, requantize(acc, shift.astype(np.int64), lo, hi))
    assert out.min() >= lo and out.max() <= hi


def test_split_half_matches_python(lib):
    acc, shift = edge_accumulators()
    keep = shift <= 30  # the IR refuses split with shift 31 (no room for the extra bit)
    acc, shift = acc[keep], shift[keep]
    out = np.zeros(acc.size, np.int8)
    lib.resilq_arith_split_half(_p(acc), _p(shift), _p(out), ctypes.c_uint64(acc.size))
    assert np.array_equal(out, split_half(acc, shift.astype(np.int64)))
    assert np.all((out.view(np.uint8) & 0x40) == 0)


def test_apply_fault_exhaustive(lib):
    """Every int8 value x every 8-bit mask x every mode."""
    v, m, mode = np.meshgrid(np.arange(-128, 128), np.arange(256), np.arange(3), indexing="ij")
    v, m, mode = v.ravel().astype(np.int8), m.ravel().astype(np.uint8), mode.ravel().astype(np.uint32)
    out = np.zeros(v.size, np.int8)
    lib.resilq_arith_apply_fault(_p(v), _p(m), _p(mode), _p(out), ctypes.c_uint64(v.size))
    assert np.array_equal(out, apply_fault(v, m, mode))
    assert set(int(x) for x in FaultMode) == {0, 1, 2}


def test_clip_range_exhaustive(lib):
    """Every int8 value x every bound 0..127 x both variants (resilq.arith.clip_range, a layer's clip)."""
    v, bound, zero = np.meshgrid(np.arange(-128, 128), np.arange(128), np.arange(2), indexing="ij")
    v, bound, zero = v.ravel().astype(np.int8), bound.ravel().astype(np.int8), zero.ravel().astype(np.uint8)
    out = np.zeros(v.size, np.int8)
    lib.resilq_arith_clip_range(_p(v), _p(bound), _p(zero), _p(out), ctypes.c_uint64(v.size))
    for z, variant in ((0, "bound"), (1, "zero")):
        sel = zero == z
        want = np.concatenate([clip_range(v[sel & (bound == b)], b, variant) for b in range(128)])
        got = np.concatenate([out[sel & (bound == b)] for b in range(128)])
        assert np.array_equal(got, want), variant
    assert (out[(v > bound) & (zero == 0)] == bound[(v > bound) & (zero == 0)]).all()  # a real clip happened


def _c_correct(lib, scheme: Scheme, a, b, c):
    out, dis = np.zeros(a.size, np.int8), np.zeros(a.size, np.uint8)
    lib.resilq_arith_correct(int(scheme), _p(a), _p(b), _p(c), _p(out), _p(dis), ctypes.c_uint64(a.size))
    return out, dis.astype(bool)


@pytest.mark.parametrize("scheme", [Scheme.SPLIT, Scheme.DUP_AND, Scheme.DUP_MIN])
def test_two_slot_correctors_all_pairs(lib, scheme):
    """All 65,536 (a, b) int8 pairs."""
    a, b = np.meshgrid(np.arange(-128, 128, dtype=np.int8), np.arange(-128, 128, dtype=np.int8), indexing="ij")
    a, b = a.ravel(), b.ravel()
    out, dis = _c_correct(lib, scheme, a, b, a)
    assert out.size == 65536
    assert np.array_equal(out, correct(scheme, [a, b]))
    assert np.array_equal(dis, a != b)


def test_tmr_all_triples(lib):
    """All 16,777,216 (a, b, c) int8 triples of the voter."""
    v = np.arange(-128, 128, dtype=np.int8)
    a = np.repeat(v, 65536)
    b = np.tile(np.repeat(v, 256), 256)
    c = np.tile(v, 65536)
    out, dis = _c_correct(lib, Scheme.TMR, a, b, c)
    assert np.array_equal(out, correct(Scheme.TMR, [a, b, c]))
    assert np.array_equal(dis, (a != b) | (a != c))


def test_scheme_codes_are_the_register_codes(lib):
    """The corrector switch uses resilq.arith.Scheme's codes: code 0 (unprotected) passes the slot through."""
    a = np.array([5, -7, 100], np.int8)
    b = np.array([1, 2, 3], np.int8)
    out, _ = _c_correct(lib, 0, a, b, b)
    assert np.array_equal(out, a)
    out, _ = _c_correct(lib, Scheme.SPLIT, a, a, a)
    assert np.array_equal(out, correct(Scheme.SPLIT, [a, a]))


def test_packed_dsp_product_pair_all_triples(lib):
    """ops::mac_pair (two int8 products sharing x in one DSP48E1's pre-adder and 25 x 18 multiplier) equals the
    two plain products for all 16,777,216 (wa, wb, x) int8 triples."""
    v = np.arange(-128, 128, dtype=np.int8)
    wa = np.repeat(v, 65536)
    wb = np.tile(np.repeat(v, 256), 256)
    x = np.tile(v, 65536)
    a, b = np.zeros(wa.size, np.int32), np.zeros(wa.size, np.int32)
    lib.resilq_ops_mac_pair(_p(wa), _p(wb), _p(x), _p(a), _p(b), ctypes.c_uint64(wa.size))
    assert np.array_equal(a, wa.astype(np.int32) * x)
    assert np.array_equal(b, wb.astype(np.int32) * x)
