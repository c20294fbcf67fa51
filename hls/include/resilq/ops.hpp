// Every multiplication the accelerator instantiates, each a named hardware unit the resource model counts
// (resilq.hls.resources; tests/test_hls_resources.py ties its DSP count to the call sites of these
// functions and refuses any other run-time `*` in the synthesized sources).
//
// * mac_product: one int8 x int8 product of the PE x SIMD array, bound to a DSP48E1 with BIND_OP
//   (UG1399 "pragma HLS bind_op": op=mul impl=dsp on the variable the product is assigned to).
// * index_product: an address/size product of unsigned operands below 2^24 and 2^17. A DSP48E1 multiplies
//   25 x 18 bits two's complement (UG953 MULT_MACRO: WIDTH_A 1-25, WIDTH_B 1-18, one DSP48), i.e. 24 x 17
//   bits unsigned: one DSP48E1 per product. The masks make the operand widths visible to the HLS bit-width
//   analysis; a caller must only pass values inside them (the descriptor checks of descriptor.hpp come first).
// * times_shadows: x * (copies - 1) of a protected neuron's slot arithmetic, where copies - 1 is 0, 1 or 2:
//   a shift and a multiplexer, no multiplier.
// Loop indices are counted incrementally by the kernels instead (no multiplier at all).
#pragma once
#include <cstdint>

namespace resilq {
namespace ops {

constexpr uint32_t INDEX_A_BITS = 24;
constexpr uint32_t INDEX_B_BITS = 17;
constexpr uint32_t INDEX_A_MASK = (1u << INDEX_A_BITS) - 1u;
constexpr uint32_t INDEX_B_MASK = (1u << INDEX_B_BITS) - 1u;

inline int32_t mac_product(int8_t w, int8_t x) {
#pragma HLS INLINE
    const int32_t product = static_cast<int32_t>(w) * static_cast<int32_t>(x);
#pragma HLS BIND_OP variable=product op=mul impl=dsp
    return product;
}

// a (< 2^24) x b (< 2^17): the exact 41-bit product.
inline uint64_t index_product(uint32_t a, uint32_t b) {
#pragma HLS INLINE
    const uint64_t product = static_cast<uint64_t>(a & INDEX_A_MASK) * static_cast<uint64_t>(b & INDEX_B_MASK);
#pragma HLS BIND_OP variable=product op=mul impl=dsp
    return product;
}

inline uint32_t times_shadows(uint32_t x, uint32_t extra) {
#pragma HLS INLINE
    return extra == 2u ? (x << 1) : (extra == 1u ? x : 0u);
}

}  // namespace ops
}  // namespace resilq
