// Max-pooling over the input buffer, SIMD channels per cycle (no padding, floor mode, as the IR).
// Addresses are counted incrementally (no run-time multiplier) and each SIMD lane writes its own
// compile-time output-buffer banks: channel cg * SIMD + s lives in bank (cg % GROUPS) * SIMD + s.
#pragma once
#include <cstdint>

#include "resilq/types.hpp"

namespace resilq {

template <class Cfg>
uint64_t maxpool(const LayerDesc& d, const LayerGeom& g, const typename Buffers<Cfg>::In& in_buf,
                 typename Buffers<Cfg>::Out& out_buf) {
    constexpr uint32_t GROUPS = Cfg::OUT_BANKS / Cfg::SIMD;  // channel groups sharing one output-buffer row
    int8_t m[Cfg::SIMD];
#pragma HLS ARRAY_PARTITION variable=m complete
    uint32_t pos = 0, ox = 0, cg = 0, ky = 0, kx = 0;
    // input-buffer word of window pixel (ky, kx), channel group cg: (window + ky_off + kx_off) / SIMD + cg, with
    // the element offsets (LayerGeom::pitch = cg_count * SIMD, never packed for a pool) window =
    // (oy * stride * in_w + ox * stride) * pitch, ky_off = ky * line, kx_off = kx * pitch
    uint32_t window = 0, row_window = 0, ky_off = 0, kx_off = 0;
    // output place of channel group cg: bank group cg % GROUPS, row (cg / GROUPS) * hw_out, channel cg * SIMD
    uint32_t group = 0, row_base = 0, c_base = 0;
    uint64_t iters = 0;
pool:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=262144
        const uint32_t addr = (window + ky_off + kx_off) / Cfg::SIMD + cg;
        const bool first = ky == 0 && kx == 0;
    window_max:
        for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
            const int8_t x = in_buf[s][addr];
            m[s] = (first || x > m[s]) ? x : m[s];
        }
        ++iters;
        if (kx + 1 < d.kernel) {
            ++kx;
            kx_off += g.pitch;
            continue;
        }
        kx = 0;
        kx_off = 0;
        if (ky + 1 < d.kernel) {
            ++ky;
            ky_off += g.line;
            continue;
        }
        ky = 0;
        ky_off = 0;
    write_banks:
        for (uint32_t b = 0; b < Cfg::OUT_BANKS; ++b) {
#pragma HLS UNROLL
            const uint32_t s = b % Cfg::SIMD;
            if (b / Cfg::SIMD == group && c_base + s < d.in_c) out_buf[b][row_base + pos] = m[s];
        }
        if (cg + 1 < g.cg) {
            ++cg;
            c_base += Cfg::SIMD;
            if (group + 1 == GROUPS) {
                group = 0;
                row_base += g.hw_out;
            } else {
                ++group;
            }
            continue;
        }
        cg = 0;
        c_base = 0;
        group = 0;
        row_base = 0;
        if (pos + 1 == g.hw_out) break;
        ++pos;
        if (ox + 1 < d.out_w) {
            ++ox;
            window += g.step_x;
        } else {
            ox = 0;
            row_window += g.step_y;
            window = row_window;
        }
    }
    return iters + Cfg::Latency::POOL;
}

}  // namespace resilq
