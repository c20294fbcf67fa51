// Vectorised C entry points to resilq/arith.hpp (and the packed DSP product of resilq/ops.hpp), so the tests can compare the C++ arithmetic with
// resilq.arith on every edge case and exhaustively. Not synthesized.
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/ops.hpp"

namespace ar = resilq::arith;

extern "C" {

void resilq_arith_round_shift(const int32_t* acc, const uint32_t* shift, int32_t* out, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) out[i] = ar::round_shift_half_even(acc[i], shift[i]);
}

void resilq_arith_requantize(const int32_t* acc, const uint32_t* shift, int32_t lo, int32_t hi, int8_t* out,
                             uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) out[i] = ar::requantize(acc[i], shift[i], lo, hi);
}

void resilq_arith_split_half(const int32_t* acc, const uint32_t* shift, int8_t* out, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) out[i] = ar::split_half(acc[i], shift[i]);
}

void resilq_arith_apply_fault(const int8_t* value, const uint8_t* mask, const uint32_t* mode, int8_t* out,
                              uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) out[i] = ar::apply_fault(value[i], mask[i], mode[i]);
}

void resilq_arith_clip_range(const int8_t* value, const int8_t* bound, const uint8_t* zero, int8_t* out, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) out[i] = ar::clip_range(value[i], bound[i], zero[i] != 0);
}

// c is ignored by the two-slot schemes (pass any array of length n).
void resilq_arith_correct(uint32_t scheme, const int8_t* a, const int8_t* b, const int8_t* c, int8_t* out,
                          uint8_t* disagree, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
        out[i] = ar::correct(scheme, a[i], b[i], c[i]);
        disagree[i] = ar::slots_disagree(scheme, a[i], b[i], c[i]) ? 1 : 0;
    }
}

// The PE array's packed product pair (two int8 products sharing x in one DSP48E1).
void resilq_ops_mac_pair(const int8_t* wa, const int8_t* wb, const int8_t* x, int32_t* a, int32_t* b, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
        const resilq::ops::ProductPair r = resilq::ops::mac_pair(wa[i], wb[i], x[i]);
        a[i] = r.a;
        b[i] = r.b;
    }
}

}  // extern "C"
