// Fetching a layer descriptor from DDR and checking it against the build's capacities.
// The checks are the same rules resilq.hls.mapping applies at generation time; here they keep a bad
// image from overrunning a buffer (the run stops with STATUS CAPACITY / TABLE_RANGE / BAD_OP).
#pragma once
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/regmap.hpp"
#include "resilq/types.hpp"

namespace resilq {

template <class Cfg>
uint64_t fetch_descriptor(const uint32_t* ctrl_mem, uint32_t word, LayerDesc& d) {
    uint32_t w[image::DESC_WORDS];
#pragma HLS ARRAY_PARTITION variable=w complete
fetch_words:
    for (uint32_t i = 0; i < image::DESC_WORDS; ++i) {
#pragma HLS PIPELINE II=1
        w[i] = ctrl_mem[word + i];
    }
    d.op = w[image::DESC_OP_FLAGS] & 0xFFu;
    d.flags = (w[image::DESC_OP_FLAGS] >> 8) & 0xFFu;
    d.scheme = (w[image::DESC_OP_FLAGS] >> 16) & 0xFFu;
    d.ir_layer = w[image::DESC_IR_LAYER];
    d.in_c = w[image::DESC_IN_C];
    d.in_h = w[image::DESC_IN_H];
    d.in_w = w[image::DESC_IN_W];
    d.out_c = w[image::DESC_OUT_C];
    d.out_h = w[image::DESC_OUT_H];
    d.out_w = w[image::DESC_OUT_W];
    d.kernel = w[image::DESC_GEOMETRY] & 0xFFu;
    d.stride = (w[image::DESC_GEOMETRY] >> 8) & 0xFFu;
    d.pad = (w[image::DESC_GEOMETRY] >> 16) & 0xFFu;
    d.in_addr = w[image::DESC_IN_ADDR];
    d.in_stride = w[image::DESC_IN_STRIDE];
    d.out_addr = w[image::DESC_OUT_ADDR];
    d.out_stride = w[image::DESC_OUT_STRIDE];
    d.w_addr = w[image::DESC_W_ADDR];
    d.crit_start = w[image::DESC_CRIT_START];
    d.crit_count = w[image::DESC_CRIT_COUNT];
    return image::DESC_WORDS + Cfg::Latency::DESCRIPTOR;
}

template <class Cfg>
LayerGeom geometry(const LayerDesc& d) {
    LayerGeom g;
    g.cg = (d.in_c + Cfg::SIMD - 1) / Cfg::SIMD;
    g.ft = d.kernel * d.kernel * g.cg;
    g.hw_in = d.in_h * d.in_w;
    g.hw_out = d.out_h * d.out_w;
    g.n_out = d.out_c * g.hw_out;
    g.tiles = (d.out_c + Cfg::PE - 1) / Cfg::PE;
    g.copies = arith::copies(d.scheme);
    return g;
}

// STATUS code for a descriptor this build cannot run (0 = runnable). Mirrors resilq.hls.mapping.
template <class Cfg>
uint32_t check_descriptor(const LayerDesc& d, const LayerGeom& g) {
    if (d.op != image::OP_CONV && d.op != image::OP_MAXPOOL) return image::STATUS_BAD_OP;
    if (d.scheme > arith::DUP_MIN) return image::STATUS_BAD_OP;
    const bool raw = (d.flags & image::FLAG_RAW) != 0;
    const uint64_t in_bytes = uint64_t(g.hw_in) * g.cg * Cfg::SIMD;
    const uint64_t out_rows = (uint64_t(d.out_c) + Cfg::OUT_BANKS - 1) / Cfg::OUT_BANKS;
    bool ok = d.in_c >= 1 && d.out_c >= 1 && g.hw_in >= 1 && g.hw_out >= 1;
    ok = ok && d.kernel >= 1 && d.kernel <= Cfg::MAX_KERNEL && d.stride >= 1 && d.stride <= Cfg::MAX_STRIDE;
    ok = ok && d.pad < d.kernel && in_bytes <= Cfg::MAX_IN && g.hw_out <= Cfg::MAX_POS;
    ok = ok && d.out_c <= Cfg::MAX_CHANNELS && d.out_h >= 1 && d.out_w >= 1;
    // every window the output asks for lies inside the (padded) input
    ok = ok && uint64_t(d.out_h - 1) * d.stride + d.kernel <= uint64_t(d.in_h) + 2 * d.pad;
    ok = ok && uint64_t(d.out_w - 1) * d.stride + d.kernel <= uint64_t(d.in_w) + 2 * d.pad;
    if (raw) ok = ok && d.op == image::OP_CONV && g.n_out <= Cfg::MAX_RAW && d.out_c <= Cfg::MAX_RAW;
    else ok = ok && out_rows * g.hw_out <= Cfg::MAX_OUT / Cfg::OUT_BANKS;
    if (d.op == image::OP_CONV) ok = ok && uint64_t(g.ft) * Cfg::SIMD <= Cfg::MAX_FANIN;
    if (d.op == image::OP_MAXPOOL) ok = ok && d.in_c == d.out_c && d.pad == 0;
    if (!ok) return image::STATUS_CAPACITY;
    if (uint64_t(d.crit_start) + d.crit_count > regmap::CRIT_TABLE_CAPACITY) return image::STATUS_TABLE_RANGE;
    if (d.crit_count > 0 && (d.scheme == arith::NONE || raw || d.op != image::OP_CONV)) return image::STATUS_TABLE_RANGE;
    return image::STATUS_OK;
}

}  // namespace resilq
