// The int8 arithmetic of the accelerator contract (SPEC §1, §2, §4): the C++ twin of resilq.arith.
//
// Everything that turns an int32 accumulator into an int8 activation, applies a fault to a PE output or
// merges the slots of a protected neuron goes through this header, and nothing else in the accelerator
// re-implements it. tests/test_hls_arith.py checks every function against the Python module: all shifts
// 0..31 on ties, negatives and saturation, all 65,536 (a, b) pairs per two-slot corrector and all
// 16,777,216 triples for the voter.
//
// Synthesizable: fixed-width integer operations only (a 5-bit barrel shifter, comparators, bitwise ops).
#pragma once
#include <cstdint>

namespace resilq {
namespace arith {

constexpr int32_t INT8_LO = -128;
constexpr int32_t INT8_HI = 127;
constexpr uint32_t MAX_SHIFT = 31;       // the shifter is 5 bits wide
constexpr int32_t SPLIT_HALF_MAX = 63;   // clamp of a split half-neuron: bit 6 is 0 fault-free
constexpr uint32_t SPLIT_RESET_BIT = 6;  // the bit the LCU resets

// Fault modes and protection schemes: the same codes as resilq.arith.FaultMode / Scheme (register values).
enum FaultMode : uint32_t { FLIP = 0, STUCK_AT_0 = 1, STUCK_AT_1 = 2 };
enum Scheme : uint32_t { NONE = 0, SPLIT = 1, TMR = 2, DUP_AND = 3, DUP_MIN = 4 };

// Slots a protected neuron occupies (original + shadows); 1 for an unprotected one.
inline uint32_t copies(uint32_t scheme) { return scheme == TMR ? 3u : (scheme == NONE ? 1u : 2u); }

// acc / 2**shift rounded half to even (shift in 0..31). Exact: floor by arithmetic shift, then the
// remainder decides; the quotient cannot overflow because rounding up needs shift > 0.
inline int32_t round_shift_half_even(int32_t acc, uint32_t shift) {
    const uint32_t s = shift & 31u;
    const int32_t q = acc >> s;  // arithmetic shift = floor division by 2**s
    const uint32_t mask = (s == 0) ? 0u : ((1u << s) - 1u);
    const uint32_t rem = static_cast<uint32_t>(acc) & mask;  // acc - q * 2**s, in [0, 2**s)
    const uint32_t half = (s == 0) ? 0u : (1u << (s - 1));
    const bool up = (s > 0) && (rem > half || (rem == half && (q & 1) != 0));
    return q + (up ? 1 : 0);
}

// int32 accumulator -> int8: round half to even by 2**shift, saturate to [lo, hi] (lo = 0 fuses ReLU).
inline int8_t requantize(int32_t acc, uint32_t shift, int32_t lo, int32_t hi) {
    const int32_t q = round_shift_half_even(acc, shift);
    return static_cast<int8_t>(q < lo ? lo : (q > hi ? hi : q));
}

// A split half-neuron: one extra bit of shift, clamped to [0, 63] (the model refuses shift 31 with split).
inline int8_t split_half(int32_t acc, uint32_t shift) {
    return requantize(acc, shift + 1u, 0, SPLIT_HALF_MAX);
}

// The value a fault site holds when the fault (mask, mode) hits value. Unknown modes leave it unchanged
// (the kernel refuses to run with one: STATUS FAULT_CONFIG).
// Range restriction (resilq.arith.clip_range, a layer's clip): a value above `bound` becomes `bound`, or 0 with
// `zero` (the hardening paper's Ranger-style clipping of ReLU outputs). One compare and a multiplexer.
inline int8_t clip_range(int8_t value, int8_t bound, bool zero) {
    return value > bound ? (zero ? static_cast<int8_t>(0) : bound) : value;
}

inline int8_t apply_fault(int8_t value, uint8_t mask, uint32_t mode) {
    const uint8_t bits = static_cast<uint8_t>(value);
    uint8_t out = bits;
    if (mode == FLIP) out = static_cast<uint8_t>(bits ^ mask);
    else if (mode == STUCK_AT_0) out = static_cast<uint8_t>(bits & static_cast<uint8_t>(~mask));
    else if (mode == STUCK_AT_1) out = static_cast<uint8_t>(bits | mask);
    return static_cast<int8_t>(out);
}

// LCU: AND the halves, reset bit 6, restore the scale: ((a & b) & 0xBF) << 1 in 8 bits.
inline int8_t correct_split(int8_t a, int8_t b) {
    const uint8_t anded = static_cast<uint8_t>(static_cast<uint8_t>(a) & static_cast<uint8_t>(b));
    const uint8_t cleared = static_cast<uint8_t>(anded & static_cast<uint8_t>(~(1u << SPLIT_RESET_BIT)));
    return static_cast<int8_t>(static_cast<uint8_t>(cleared << 1));
}

// Bitwise majority of three slots.
inline int8_t correct_tmr(int8_t a, int8_t b, int8_t c) {
    const uint8_t x = static_cast<uint8_t>(a), y = static_cast<uint8_t>(b), z = static_cast<uint8_t>(c);
    return static_cast<int8_t>(static_cast<uint8_t>((x & y) | (x & z) | (y & z)));
}

// Bitwise AND of two full copies.
inline int8_t correct_dup_and(int8_t a, int8_t b) {
    return static_cast<int8_t>(static_cast<uint8_t>(static_cast<uint8_t>(a) & static_cast<uint8_t>(b)));
}

// Signed minimum of two full copies.
inline int8_t correct_dup_min(int8_t a, int8_t b) { return a < b ? a : b; }

// The corrector of `scheme` over the original slot a and the shadows b (and c for TMR).
inline int8_t correct(uint32_t scheme, int8_t a, int8_t b, int8_t c) {
    switch (scheme) {
        case SPLIT: return correct_split(a, b);
        case TMR: return correct_tmr(a, b, c);
        case DUP_AND: return correct_dup_and(a, b);
        case DUP_MIN: return correct_dup_min(a, b);
        default: return a;
    }
}

// Whether the slots of a protected neuron disagree (what the CORRECTIONS counter counts).
inline bool slots_disagree(uint32_t scheme, int8_t a, int8_t b, int8_t c) {
    return a != b || (scheme == TMR && a != c);
}

}  // namespace arith
}  // namespace resilq
