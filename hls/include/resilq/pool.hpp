// Max-pooling over the input buffer, SIMD channels per cycle (no padding, floor mode, as the IR).
// Addresses are counted incrementally (no run-time multiplier) and each SIMD lane writes its own
// compile-time output-buffer banks: channel cg * SIMD + s lives in bank (cg % GROUPS) * SIMD + s.
#pragma once
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/types.hpp"

namespace resilq {

// The k x k window walk both pool loops share: the element offsets of window pixel (ky, kx), counted
// (ky_off = ky * row_step, kx_off = kx * col_step), and whether the pixel is the window's first.
struct WindowWalk {
    uint32_t ky = 0, kx = 0, ky_off = 0, kx_off = 0;

    bool first() const { return ky == 0 && kx == 0; }
    uint32_t offset() const { return ky_off + kx_off; }

    // Step to the next pixel of a `kernel` x `kernel` window; true when the window is complete (back at (0, 0)).
    bool next(uint32_t kernel, uint32_t col_step, uint32_t row_step) {
        if (kx + 1 < kernel) {
            ++kx;
            kx_off += col_step;
            return false;
        }
        kx = 0;
        kx_off = 0;
        if (ky + 1 < kernel) {
            ++ky;
            ky_off += row_step;
            return false;
        }
        ky = 0;
        ky_off = 0;
        return true;
    }
};

template <class Cfg>
uint64_t maxpool(const LayerDesc& d, const LayerGeom& g, const typename Buffers<Cfg>::In& in_buf,
                 typename Buffers<Cfg>::Out& out_buf) {
    constexpr uint32_t GROUPS = Cfg::OUT_BANKS / Cfg::SIMD;  // channel groups sharing one output-buffer row
    int8_t m[Cfg::SIMD];
#pragma HLS ARRAY_PARTITION variable=m complete
    uint32_t pos = 0, ox = 0, cg = 0;
    // input-buffer word of window pixel (ky, kx), channel group cg: (window + ky_off + kx_off) / SIMD + cg, with
    // the element offsets (LayerGeom::pitch = cg_count * SIMD, never packed for a pool) window =
    // (oy * stride * in_w + ox * stride) * pitch, ky_off = ky * line, kx_off = kx * pitch
    uint32_t window = 0, row_window = 0;
    WindowWalk walk;
    // output place of channel group cg: bank group cg % GROUPS, row (cg / GROUPS) * hw_out, channel cg * SIMD
    uint32_t group = 0, row_base = 0, c_base = 0;
    uint64_t iters = 0;
pool:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=262144
        const uint32_t addr = (window + walk.offset()) / Cfg::SIMD + cg;
        const bool first = walk.first();
    window_max:
        for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
            const int8_t x = in_buf[s][addr];
            m[s] = (first || x > m[s]) ? x : m[s];
        }
        ++iters;
        if (!walk.next(d.kernel, g.pitch, g.line)) continue;
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

// Max-pooling of the conv `conv` whose output map is still in the output buffer (FLAG_POOL_NEXT): no DDR round
// trip. Channel c of the conv's map lies in bank c % OUT_BANKS, row (c / OUT_BANKS) * hw_in + position, and each
// iteration reads one window pixel of OUT_BANKS channels (all banks at one address). The conv's range
// restriction applies to every value read (the store applies it on the way to DDR, so the buffer holds the
// values before it; clip_range is monotone only for the bound variant, so it must precede the max). The pooled
// map is written in place in the pool layout store_output reads (row (c / OUT_BANKS) * hw_out + position): row
// groups outermost, the write of output position q of row group r goes to r * hw_out + q, below every element
// read after it (a later window of the group starts at or after element r * hw_in + q + 1, later groups at
// (r + 1) * hw_in), so no value is overwritten before it is read.
template <class Cfg>
uint64_t maxpool_on_chip(const LayerDesc& conv, const LayerDesc& d, const LayerGeom& g,
                         typename Buffers<Cfg>::Out& out_buf) {
    const bool clip = (conv.flags & image::FLAG_CLIP) != 0, zero = (conv.flags & image::FLAG_CLIP_ZERO) != 0;
    const int8_t bound = static_cast<int8_t>(conv.clip_bound);
    // vertical window step stride * in_w: a compare-and-add chain (MAX_STRIDE steps), no multiplier
    uint32_t step_y = 0;
count_step_y:
    for (uint32_t s = 0; s < Cfg::MAX_STRIDE; ++s) {
#pragma HLS UNROLL
        if (s < d.stride) step_y += d.in_w;
    }
    int8_t m[Cfg::OUT_BANKS];
#pragma HLS ARRAY_PARTITION variable=m complete
    uint32_t pos = 0, ox = 0;
    uint32_t window = 0, row_window = 0;  // element of window pixel (ky, kx): window + ky * in_w + kx
    WindowWalk walk;
    uint32_t in_row = 0, out_row = 0, c_base = 0;     // row group r: r * hw_in, r * hw_out, r * OUT_BANKS
    uint64_t iters = 0;
pool_on_chip:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=262144
// every write lands below every later read (above): no carried dependence through the buffer (UG1399 "pragma
// HLS dependence", type=inter false)
#pragma HLS DEPENDENCE variable=out_buf type=inter false
        const uint32_t addr = in_row + window + walk.offset();
        const bool first = walk.first();
    window_max:
        for (uint32_t b = 0; b < Cfg::OUT_BANKS; ++b) {
#pragma HLS UNROLL
            const int8_t v = out_buf[b][addr];
            const int8_t x = clip ? arith::clip_range(v, bound, zero) : v;
            m[b] = (first || x > m[b]) ? x : m[b];
        }
        ++iters;
        if (!walk.next(d.kernel, 1u, d.in_w)) continue;
    write_banks:
        for (uint32_t b = 0; b < Cfg::OUT_BANKS; ++b) {
#pragma HLS UNROLL
            if (c_base + b < d.in_c) out_buf[b][out_row + pos] = m[b];
        }
        if (pos + 1 < g.hw_out) {
            ++pos;
            if (ox + 1 < d.out_w) {
                ++ox;
                window += d.stride;
            } else {
                ox = 0;
                row_window += step_y;
                window = row_window;
            }
            continue;
        }
        pos = 0;
        ox = 0;
        window = 0;
        row_window = 0;
        if (c_base + Cfg::OUT_BANKS >= d.in_c) break;
        c_base += Cfg::OUT_BANKS;
        in_row += g.hw_in;
        out_row += g.hw_out;
    }
    return iters + Cfg::Latency::POOL;
}

}  // namespace resilq
