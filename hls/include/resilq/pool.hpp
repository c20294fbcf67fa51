// Max-pooling over the input buffer, SIMD channels per cycle (no padding, floor mode, as the IR).
#pragma once
#include <cstdint>

#include "resilq/types.hpp"

namespace resilq {

template <class Cfg>
uint64_t maxpool(const LayerDesc& d, const LayerGeom& g, const typename Buffers<Cfg>::In& in_buf,
                 typename Buffers<Cfg>::Out& out_buf) {
    int8_t m[Cfg::SIMD];
#pragma HLS ARRAY_PARTITION variable=m complete
    uint32_t pos = 0, oy = 0, ox = 0, cg = 0, ky = 0, kx = 0;
    uint64_t iters = 0;
pool:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=262144
        const uint32_t iy = oy * d.stride + ky, ix = ox * d.stride + kx;
        const uint32_t addr = (iy * d.in_w + ix) * g.cg + cg;
        const bool first = ky == 0 && kx == 0;
    window:
        for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
            const int8_t x = in_buf[s][addr];
            m[s] = (first || x > m[s]) ? x : m[s];
        }
        ++iters;
        if (kx + 1 < d.kernel) {
            ++kx;
            continue;
        }
        kx = 0;
        if (ky + 1 < d.kernel) {
            ++ky;
            continue;
        }
        ky = 0;
    write_lanes:
        for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
            const uint32_t c = cg * Cfg::SIMD + s;
            if (c < d.in_c) out_buf[c % Cfg::OUT_BANKS][(c / Cfg::OUT_BANKS) * g.hw_out + pos] = m[s];
        }
        if (cg + 1 < g.cg) {
            ++cg;
            continue;
        }
        cg = 0;
        if (pos + 1 == g.hw_out) break;
        ++pos;
        if (ox + 1 < d.out_w) {
            ++ox;
        } else {
            ox = 0;
            ++oy;
        }
    }
    return iters + Cfg::Latency::POOL;
}

}  // namespace resilq
