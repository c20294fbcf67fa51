// Every multiplication the accelerator instantiates, each a named hardware unit the resource model counts
// (resilq.hls.resources; tests/test_hls_resources.py ties its DSP count to the call sites of these
// functions and refuses any other run-time `*` in the synthesized sources).
//
// * mac_pair: two int8 x int8 products of the PE x SIMD array that share their activation x (PE lanes q and
//   q + PE/2 read the same SIMD input) in ONE DSP48E1, bound with BIND_OP (UG1399 "pragma HLS bind_op": op=mul
//   impl=dsp on the variable the product is assigned to). The DSP48E1's 25-bit pre-adder forms
//   D + A = wb * 2^16 + wa (|D + A| <= 2^23 + 2^7 fits 25 bits two's complement) and its 25 x 18 multiplier
//   P = (D + A) * x = x * wb * 2^16 + x * wa (UG953 DSP48E1: A[24:0] and D[24:0] feed the pre-adder, B is 18
//   bits; UG1399 "DSP Multi-Operation Matching": an add feeding a mul within the DSP's port widths is matched
//   to one DSP). |x * wa| <= 2^14 < 2^15, so the low 16 bits of P are x * wa in 16-bit two's complement and
//   x * wb = (P >> 16) + P[15] (the borrow the low half took): exact for every int8 triple (tested
//   exhaustively, tests/test_hls_arith.py). The packing of Xilinx WP486 ("Deep Learning with INT8
//   Optimization on Xilinx Devices", which packs at 2^18 into the DSP48E2's 27-bit port), narrowed to the
//   DSP48E1's 25 bits: no accumulation inside the packed word, each pair is split before the adder tree.
// * mac_single: one int8 x int8 product of a dedicated shadow lane (conv.hpp shadow_macs) on its own DSP48E1
//   (UG1399 BIND_OP impl=dsp): shadow lanes are not paired, so no DSP holds two copies of one protected neuron.
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

struct ProductPair {
    int32_t a;  // x * wa
    int32_t b;  // x * wb
};

inline ProductPair mac_pair(int8_t wa, int8_t wb, int8_t x) {
#pragma HLS INLINE
    // the pre-adder: wb * 2^16 + wa, 25 bits from two int8 (a product by a power of two: a shift, no multiplier)
    const int32_t packed = static_cast<int32_t>(wb) * 65536 + static_cast<int32_t>(wa);
    const int32_t product = packed * static_cast<int32_t>(x);
#pragma HLS BIND_OP variable=product op=mul impl=dsp
    const uint32_t low = static_cast<uint32_t>(product) & 0xFFFFu;
    ProductPair r;
    r.a = static_cast<int32_t>(low) - static_cast<int32_t>((low & 0x8000u) << 1);  // the low half, sign-extended
    r.b = (product >> 16) + static_cast<int32_t>(low >> 15);                       // plus the borrow it took
    return r;
}

inline int32_t mac_single(int8_t w, int8_t x) {
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
