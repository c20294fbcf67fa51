// Fetching a layer descriptor from DDR, checking it against the build's capacities and deriving its
// geometry. The checks are the same rules resilq.hls.mapping applies at generation time (and
// resilq.deploy.unpack in emulation); here they keep a bad image from overrunning a buffer (the run stops
// with STATUS CAPACITY / TABLE_RANGE / BAD_OP).
#pragma once
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/ops.hpp"
#include "resilq/probe.hpp"
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
        w[i] = probe::load<probe::CTRL>(ctrl_mem, word + i);
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
    d.clip_bound = (w[image::DESC_GEOMETRY] >> 24) & 0xFFu;
    d.in_addr = w[image::DESC_IN_ADDR];
    d.in_stride = w[image::DESC_IN_STRIDE];
    d.out_addr = w[image::DESC_OUT_ADDR];
    d.out_stride = w[image::DESC_OUT_STRIDE];
    d.w_addr = w[image::DESC_W_ADDR];
    d.crit_start = w[image::DESC_CRIT_START];
    d.crit_count = w[image::DESC_CRIT_COUNT];
    return image::DESC_WORDS + Cfg::Latency::DESCRIPTOR;
}

// Largest spatial size and channel count a descriptor may carry: 16-bit fields keep every product below
// exact in one DSP48E1 (ops::index_product). resilq.hls.mapping and resilq.deploy.unpack apply the same limit.
constexpr uint32_t MAX_DIM = 0xFFFFu;

// Check descriptor d against this build and fill its geometry g; returns the STATUS code (0 = runnable).
// The checks run in stages so that every ops::index_product sees operands inside its 24 x 17-bit range:
// first the raw fields, then the sizes built from them.
template <class Cfg>
uint32_t plan_descriptor(const LayerDesc& d, LayerGeom& g, bool chunk = false) {
    static_assert(Cfg::MAX_IN < (1u << ops::INDEX_A_BITS), "max_in must stay below 2^24 (index multipliers)");
    static_assert(Cfg::MAX_POS <= (1u << 16), "max_pos must stay <= 2^16 (16-bit table positions)");
    g = LayerGeom{};
    g.copies = 1;
    if (d.op != image::OP_CONV && d.op != image::OP_MAXPOOL) return image::STATUS_BAD_OP;
    if (d.scheme > arith::DUP_MIN) return image::STATUS_BAD_OP;
    const bool raw = (d.flags & image::FLAG_RAW) != 0;
    // range restriction: only an int8 conv/linear output, bound in the int8 range
    if ((d.flags & image::FLAG_CLIP) && (d.op != image::OP_CONV || raw || d.clip_bound > 127)) return image::STATUS_BAD_OP;
    bool ok = d.in_c >= 1 && d.in_c <= MAX_DIM && d.in_h >= 1 && d.in_h <= MAX_DIM && d.in_w >= 1 && d.in_w <= MAX_DIM;
    ok = ok && d.out_c >= 1 && d.out_c <= Cfg::MAX_CHANNELS && d.out_h >= 1 && d.out_h <= MAX_DIM && d.out_w >= 1 &&
         d.out_w <= MAX_DIM;
    ok = ok && d.kernel >= 1 && d.kernel <= Cfg::MAX_KERNEL && d.stride >= 1 && d.stride <= Cfg::MAX_STRIDE;
    ok = ok && d.pad < d.kernel;
    if (!ok) return image::STATUS_CAPACITY;
    g.cg = (d.in_c + Cfg::SIMD - 1) / Cfg::SIMD;
    g.hw_in = static_cast<uint32_t>(ops::index_product(d.in_h, d.in_w));
    g.hw_out = static_cast<uint32_t>(ops::index_product(d.out_h, d.out_w));
    if (g.hw_in > Cfg::MAX_IN || g.hw_out > Cfg::MAX_POS) return image::STATUS_CAPACITY;
    const uint64_t in_bytes = ops::index_product(g.hw_in, g.cg) * Cfg::SIMD;
    const uint32_t out_rows = (d.out_c + Cfg::OUT_BANKS - 1) / Cfg::OUT_BANKS;
    g.ft = static_cast<uint32_t>(ops::index_product(static_cast<uint32_t>(ops::index_product(d.kernel, d.kernel)), g.cg));
    g.n_out = static_cast<uint32_t>(ops::index_product(g.hw_out, d.out_c));
    ok = in_bytes <= Cfg::MAX_IN;
    // every window the output asks for lies inside the (padded) input
    ok = ok && ops::index_product(d.out_h - 1, d.stride) + d.kernel <= uint64_t(d.in_h) + 2 * d.pad;
    ok = ok && ops::index_product(d.out_w - 1, d.stride) + d.kernel <= uint64_t(d.in_w) + 2 * d.pad;
    const uint64_t out_words = ops::index_product(g.hw_out, out_rows);  // output-buffer words per bank
    if (raw) ok = ok && d.op == image::OP_CONV && g.n_out <= Cfg::MAX_RAW && d.out_c <= Cfg::MAX_RAW;
    else ok = ok && out_words <= Cfg::MAX_OUT / Cfg::OUT_BANKS;
    if (d.op == image::OP_CONV) ok = ok && uint64_t(g.ft) * Cfg::SIMD <= Cfg::MAX_FANIN;
    if (d.op == image::OP_MAXPOOL) ok = ok && d.in_c == d.out_c && d.pad == 0;
    g.raw_rows = (d.out_c + Cfg::OUT_BANKS - 1) / Cfg::OUT_BANKS;
    if (raw && !chunk) ok = ok && g.hw_out == 1;  // the classifier buffer holds one position per image
    // FLAG_BATCH: a layer whose MAX_BATCH-image chunk fits every buffer (products by the power-of-two MAX_BATCH are
    // shifts). A vector layer runs the chunk as one 1 x chunk map (plan_batch gives its geometry); a conv over a
    // map (map_batch) keeps its geometry and runs the chunk's images one after the other on each tile's weights:
    // an int8 map read padded (not the classifier, not a dense network input)
    const bool vector = d.op == image::OP_CONV && g.hw_in == 1 && g.hw_out == 1 && d.kernel == 1 && d.stride == 1;
    if ((d.flags & image::FLAG_BATCH) && vector) {
        ok = ok && ((uint64_t(g.cg) * Cfg::SIMD) << Cfg::MAX_BATCH_LOG2) <= Cfg::MAX_IN;
        if (raw) ok = ok && (uint64_t(g.raw_rows) << Cfg::MAX_BATCH_LOG2) <= Cfg::MAX_RAW / Cfg::OUT_BANKS;
        else ok = ok && (uint64_t(out_rows) << Cfg::MAX_BATCH_LOG2) <= Cfg::MAX_OUT / Cfg::OUT_BANKS;
    } else if (d.flags & image::FLAG_BATCH) {
        ok = ok && d.op == image::OP_CONV && !raw && !chunk && (d.flags & image::FLAG_DENSE_IN) == 0;
        ok = ok && (in_bytes << Cfg::MAX_BATCH_LOG2) <= Cfg::MAX_IN;
        ok = ok && (out_words << Cfg::MAX_BATCH_LOG2) <= Cfg::MAX_OUT / Cfg::OUT_BANKS;
        g.map_batch = 1;
        g.img_in = static_cast<uint32_t>(in_bytes);
        g.img_out = static_cast<uint32_t>(out_words);
    }
    if (!ok) return image::STATUS_CAPACITY;
    // FLAG_POOL_NEXT: the next descriptor max-pools this conv's output buffer (an int8 map, one image at a time)
    if ((d.flags & image::FLAG_POOL_NEXT) &&
        (d.op != image::OP_CONV || raw || (d.flags & image::FLAG_BATCH) || chunk)) return image::STATUS_LAYOUT;
    // activations move in 64-bit beats: every address and per-image stride is a whole beat
    if (((d.in_addr | d.in_stride | d.out_addr | d.out_stride) & 7u) != 0) return image::STATUS_LAYOUT;
    // kernel-row packing: a conv with at least two kernel columns' channels per SIMD word (2 * in_c <= SIMD)
    g.packed = (d.op == image::OP_CONV && d.kernel > 1 && 2 * d.in_c <= Cfg::SIMD) ? 1u : 0u;
    // a dense input is read as one run of elements: only where the buffer's element order is the DDR order
    g.in_dense = (d.flags & image::FLAG_DENSE_IN) ? 1u : 0u;
    if (g.in_dense && !(g.packed || g.hw_in == 1)) return image::STATUS_LAYOUT;
    if (uint64_t(d.crit_start) + d.crit_count > regmap::CRIT_TABLE_CAPACITY) return image::STATUS_TABLE_RANGE;
    if (d.crit_count > 0 && (d.scheme == arith::NONE || raw || d.op != image::OP_CONV)) return image::STATUS_TABLE_RANGE;
    // the loop geometry, from checked sizes (hw_in * cg * SIMD <= MAX_IN < 2^24 bounds every operand)
    g.n_in = static_cast<uint32_t>(ops::index_product(g.hw_in, d.in_c));
    // taps = min(kernel, floor(SIMD / in_c)), row_words = ceil(kernel / taps) (and below
    // stack, mac_words = ceil(kernel / stack) * row_words):
    // unrolled compare-and-add chains (SIMD and MAX_KERNEL steps, monotone conditions), no divider or multiplier
    g.taps = 1;
    g.tap_elems = d.in_c;
    g.row_words = d.kernel;
    if (g.packed) {
    count_taps:
        for (uint32_t t = 1; t < Cfg::SIMD; ++t) {
#pragma HLS UNROLL
            if (g.taps < d.kernel && g.tap_elems + d.in_c <= Cfg::SIMD) {
                ++g.taps;
                g.tap_elems += d.in_c;
            }
        }
        g.row_words = 0;
        uint32_t covered = 0;
    count_row_words:
        for (uint32_t k = 0; k < Cfg::MAX_KERNEL; ++k) {
#pragma HLS UNROLL
            if (covered < d.kernel) {
                covered += g.taps;
                ++g.row_words;
            }
        }
    }
    // row stacking: a whole kernel row in one word (taps == kernel) and room for another: stack = min(kernel,
    // floor(SIMD / tap_elems)) kernel rows per word, so a position takes ceil(kernel / stack) words
    g.stack = 1;
    if (g.packed && g.taps == d.kernel) {
        uint32_t used = g.tap_elems;
    count_stack:
        for (uint32_t k = 1; k < Cfg::MAX_KERNEL; ++k) {
#pragma HLS UNROLL
            if (g.stack < d.kernel && used + g.tap_elems <= Cfg::SIMD) {
                ++g.stack;
                used += g.tap_elems;
            }
        }
    }
    uint32_t groups = 0, covered_rows = 0;  // words down the kernel: ceil(kernel / stack)
count_row_groups:
    for (uint32_t k = 0; k < Cfg::MAX_KERNEL; ++k) {
#pragma HLS UNROLL
        if (covered_rows < d.kernel) {
            covered_rows += g.stack;
            ++groups;
        }
    }
    uint32_t words = 0;
count_mac_words:
    for (uint32_t k = 0; k < Cfg::MAX_KERNEL; ++k) {
#pragma HLS UNROLL
        if (k < groups) words += g.row_words;
    }
    g.mac_words = g.packed ? words : g.ft;
    g.pitch = g.packed ? d.in_c : g.cg * Cfg::SIMD;
    g.row_elems = static_cast<uint32_t>(ops::index_product(d.in_w, g.pitch));
    // stacked, each row is followed by row_gap unused elements so that line = tap_elems (mod SIMD): the stack's rows
    // then start tap_elems banks apart and one word's stack * tap_elems <= SIMD elements sit in distinct banks.
    // line <= max(tap_elems, row_elems + SIMD - 1) <= in_w * SIMD (in_w >= 2; in_w = 1: line = tap_elems), so the
    // map still fits the in_bytes the capacity check counted.
    g.row_gap = (g.stack > 1) ? ((g.tap_elems - g.row_elems) & (Cfg::SIMD - 1)) : 0u;
    g.line = g.row_elems + g.row_gap;
    g.word_line = 0;
count_word_line:
    for (uint32_t k = 0; k < Cfg::MAX_KERNEL; ++k) {
#pragma HLS UNROLL
        if (k < g.stack) g.word_line += g.line;
    }
    g.step_x = static_cast<uint32_t>(ops::index_product(g.pitch, d.stride));
    g.step_y = static_cast<uint32_t>(ops::index_product(g.line, d.stride));
    g.pad_offset = static_cast<uint32_t>(ops::index_product(g.line + g.pitch, d.pad));
    g.in_pixel_beats = (d.in_c + 7) / 8;
    g.in_beats = g.in_dense ? (g.n_in + 7) / 8 : static_cast<uint32_t>(ops::index_product(g.hw_in, g.in_pixel_beats));
    g.in_trips = g.in_beats;
    if (g.in_dense && g.stack > 1 && (g.row_elems & 7u) != 0) {
        // rows 1 .. in_h-1 start at byte y * row_elems; one inside a beat (y * row_elems != 0 mod 8) costs a
        // second read of that beat. That is every y but the multiples of 8 / gcd(row_elems, 8) = 1 << period_log.
        const uint32_t r = g.row_elems & 7u;
        const uint32_t period_log = (r & 1u) ? 3u : (r & 2u) ? 2u : 1u;
        g.in_trips += (d.in_h - 1) - ((d.in_h - 1) >> period_log);
    }
    g.out_pixel_beats = (d.out_c + 7) / 8;
    g.out_beats = static_cast<uint32_t>(ops::index_product(g.hw_out, g.out_pixel_beats));
    g.in_pixel_stride = g.in_pixel_beats;
    g.out_pixel_stride = g.out_pixel_beats;
    g.batched = 0;
    g.slot_hw = g.hw_out;
    g.slot_n_out = g.n_out;
    g.tiles = (d.out_c + Cfg::PE - 1) / Cfg::PE;
    g.copies = arith::copies(d.scheme);
    return image::STATUS_OK;
}

// The DDR extents of descriptor d (accepted by plan_descriptor, geometry g) against the image: the three masters
// address the one image of `image_bytes` (HDR_IMAGE_BYTES) from its base (resilq.hls.packing). Its parameter
// block (a conv: bias/shift beats and out_c weight rows), and its input and output regions for all `batch`
// images the image holds (HDR_BATCH; image i at addr + i * stride) must lie inside, else STATUS_LAYOUT: no
// descriptor makes a master read or write DDR past the image. Strides of 2^24 bytes or more (with more than one
// image) and batches of 2^17 or more are refused before they reach a multiplier (ops::index_product's range).
template <class Cfg>
uint32_t check_extents(const LayerDesc& d, const LayerGeom& g, uint32_t image_bytes, uint32_t batch) {
    const uint32_t more = batch > 0u ? batch - 1u : 0u;
    if (more >= (1u << ops::INDEX_B_BITS)) return image::STATUS_LAYOUT;
    if (more > 0u && (d.in_stride >= (1u << ops::INDEX_A_BITS) || d.out_stride >= (1u << ops::INDEX_A_BITS)))
        return image::STATUS_LAYOUT;
    const bool raw = (d.flags & image::FLAG_RAW) != 0;
    const uint64_t in_end = uint64_t(d.in_addr) + ops::index_product(d.in_stride, more) + (uint64_t(g.in_beats) << 3);
    const uint64_t out_bytes = raw ? (uint64_t(d.out_c) << 2) : (uint64_t(g.out_beats) << 3);
    const uint64_t out_end = uint64_t(d.out_addr) + ops::index_product(d.out_stride, more) + out_bytes;
    // row bytes ft * SIMD <= MAX_FANIN and out_c <= MAX_CHANNELS: inside the multiplier's range
    const uint64_t w_end = (d.op == image::OP_CONV)
                               ? uint64_t(d.w_addr) + (uint64_t(d.out_c) << 3) + ops::index_product(d.out_c, g.ft * Cfg::SIMD)
                               : 0u;
    const uint64_t end = image_bytes;
    return (in_end <= end && out_end <= end && w_end <= end) ? image::STATUS_OK : image::STATUS_LAYOUT;
}

// Whether max-pool descriptor `p` can pool conv descriptor `d`'s output buffer (d has FLAG_POOL_NEXT and passed
// plan_descriptor; so did p): p reads exactly d's map, padded per pixel as d would have stored it.
inline bool pools_on_chip(const LayerDesc& d, const LayerDesc& p) {
    return p.op == image::OP_MAXPOOL && p.in_c == d.out_c && p.in_h == d.out_h && p.in_w == d.out_w &&
           (p.flags & (image::FLAG_DENSE_IN | image::FLAG_POOL_NEXT)) == 0;
}

// The geometry of one chunk of `chunk` (2 .. MAX_BATCH) images of a FLAG_BATCH descriptor: the vector layer as a
// 1 x chunk map (positions = images, each read from and written to its own image's region: pixel strides of
// IN_STRIDE / OUT_STRIDE), slots numbered per image as the IR's. plan_descriptor accepted d with MAX_BATCH.
template <class Cfg>
uint32_t plan_batch(const LayerDesc& d, uint32_t chunk, LayerDesc& db, LayerGeom& g) {
    db = d;
    db.in_w = chunk;
    db.out_w = chunk;
    db.flags = d.flags & ~(image::FLAG_BATCH | image::FLAG_DENSE_IN);  // a vector: dense and padded read alike
    const uint32_t status = plan_descriptor<Cfg>(db, g, true);
    g.in_pixel_stride = d.in_stride / 8;
    g.out_pixel_stride = d.out_stride / 8;
    g.batched = 1;
    g.slot_hw = 1;
    g.slot_n_out = d.out_c;
    return status;
}

}  // namespace resilq
