// The controller: runs one layer descriptor for one image (load, tiles of PE channels with their
// critical-table walk and shadow passes, corrector, store) and returns the cycles it took. Loads on the
// weight master overlap the input load and the previous tile's compute (ping-pong weight buffers).
#pragma once
#include <cstdint>

#include "resilq/conv.hpp"
#include "resilq/descriptor.hpp"
#include "resilq/io.hpp"
#include "resilq/lcu.hpp"
#include "resilq/pool.hpp"
#include "resilq/types.hpp"

namespace resilq {

// One tile's compute (its table walk and PE x SIMD loop on weights `w_now`) while the next tile's weight rows
// stream into the other half of the ping-pong pair (`w_next`): the two touch disjoint buffers and different
// ports (the weight master vs on-chip memory), so they overlap, and the tile costs the longer of the two
// (the double-buffering pattern of UG1399 "Optimizing for Throughput" / "pragma HLS dataflow": a producer
// fills one buffer while the consumer reads the other).
template <class Cfg>
uint64_t overlapped_tile(const uint64_t* weight_mem, const uint32_t* crit_table, const LayerDesc& d,
                         const LayerGeom& g, const Tile& tile, bool more, uint32_t next_beat, uint32_t next_rows,
                         uint32_t& table_ptr, uint32_t& table_last, uint32_t table_end, const int32_t bias[Cfg::PE],
                         const uint32_t shift[Cfg::PE], const typename Buffers<Cfg>::In& in_buf,
                         const typename Buffers<Cfg>::Weights& w_now, typename Buffers<Cfg>::Weights& w_next,
                         typename Buffers<Cfg>::Out& out_buf, typename Buffers<Cfg>::Raw& raw_buf,
                         typename Buffers<Cfg>::Shadow& sh_buf, typename Buffers<Cfg>::Marks& marks,
                         uint32_t first[Cfg::PE], uint32_t lane_count[Cfg::PE], const FaultSite& fault,
                         RunCounters& ctr, uint32_t images, uint32_t now_base, uint32_t next_base) {
    const uint64_t load = more ? load_weights<Cfg>(weight_mem, next_beat, next_rows, g.ft, g.packed != 0, d.kernel,
                                                   d.in_c, g.taps, g.stack, w_next, next_base) : 0u;
    uint64_t work = 0;
    if (d.crit_count > 0) {
        work += mark_tile<Cfg>(crit_table, table_ptr, table_last, table_end, d.crit_start, tile.c0, tile.rows,
                               g.slot_hw, marks, first, ctr.error);
    }
    // one image, or (map-batched) the chunk's images one after the other on this tile's weights; the fault is
    // armed for image 0 as FaultSite::active says and for the others as active_rest
    uint32_t in_base = 0, out_base = 0;
tile_images:
    for (uint32_t i = 0; i < images; ++i) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
        FaultSite site = fault;
        if (g.map_batch) site.active = site.active_rest = (i == 0) ? fault.active : fault.active_rest;
        work += conv_tile<Cfg>(d, g, tile, bias, shift, in_buf, w_now, marks, out_buf, raw_buf, sh_buf, first,
                               lane_count, site, ctr, in_base, out_base, i + 1 == images, now_base);
        in_base += g.img_in;
        out_base += g.img_out;
    }
    return work > load ? work : load;
}

// Cycles of one conv/linear layer: the input map (activation master) loads while the layer's bias/shift beats
// and tile 0's weights arrive (weight master); then every tile overlaps with the next tile's weight load.
// `images` > 1 only for a map-batched chunk (LayerGeom::map_batch): image i's maps at in_addr + i * IN_STRIDE and
// out_addr + i * OUT_STRIDE, all in the buffers at once, each tile's weights loaded once for all of them.
template <class Cfg>
uint64_t run_layer(uint32_t* ctrl_mem, const uint64_t* weight_mem, uint64_t* act_mem, const uint32_t* crit_table,
                   const LayerDesc& d, const LayerGeom& g, uint32_t in_addr, uint32_t out_addr,  // bytes, multiples of 8
                   typename Buffers<Cfg>::In& in_buf, typename Buffers<Cfg>::Weights& w_ping,
                   typename Buffers<Cfg>::Weights& w_pong, typename Buffers<Cfg>::Bias& bias_buf,
                   typename Buffers<Cfg>::Shift& shift_buf, typename Buffers<Cfg>::Out& out_buf,
                   typename Buffers<Cfg>::Raw& raw_buf, typename Buffers<Cfg>::Shadow& sh_buf,
                   typename Buffers<Cfg>::Marks& marks, const FaultSite& fault, RunCounters& ctr,
                   const UpsetBuffer& upsets, UpsetRange& u, uint32_t images = 1, bool resident = false,
                   const WeightPlace& place = WeightPlace{0, 0, 0, false}) {
    uint64_t input = 0;
    uint32_t in_img = in_addr / 8, elem0 = 0;
load_images:
    for (uint32_t i = 0; i < images; ++i) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
        input += load_input<Cfg>(act_mem, in_img, g, d.in_c, d.in_w, in_buf, elem0);
        in_img += d.in_stride / 8;
        elem0 += g.img_in;
    }
    if (d.op == image::OP_MAXPOOL) {
        uint64_t cycles = input + maxpool<Cfg>(d, g, in_buf, out_buf);
        return cycles + store_output<Cfg>(act_mem, out_addr / 8, g, d, out_buf);
    }
    int32_t bias[Cfg::PE];
    uint32_t shift[Cfg::PE], first[Cfg::PE], lane_count[Cfg::PE];
#pragma HLS ARRAY_PARTITION variable=bias complete
#pragma HLS ARRAY_PARTITION variable=shift complete
#pragma HLS ARRAY_PARTITION variable=first complete
#pragma HLS ARRAY_PARTITION variable=lane_count complete
    uint32_t taken[Cfg::PE];  // the corrector's shadow read index per lane
#pragma HLS ARRAY_PARTITION variable=taken complete
init_lanes:
    for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
        bias[p] = 0;
        shift[p] = 0;
        first[p] = 0;
        lane_count[p] = 0;
        taken[p] = 0;
    }
    constexpr uint32_t GROUPS = Cfg::OUT_BANKS / Cfg::PE;  // tiles sharing one output-buffer row
    const uint32_t param_beat = d.w_addr / 8;
    const uint32_t row_beats = g.ft * (Cfg::SIMD / 8);
    uint32_t weight_beat = param_beat + d.out_c;
    // `resident`: every tile's rows and the bias/shift are still in the buffers (`place`, WeightPlace): this
    // descriptor ran on the previous image or chunk (kept, or at most two tiles), or a previous run kept them
    uint64_t weights = 0;
    if (!resident) {
        weights = load_params<Cfg>(weight_mem, param_beat, d.out_c, bias_buf, shift_buf, place.tile);
        weights += load_weights<Cfg>(weight_mem, weight_beat, (d.out_c < Cfg::PE) ? d.out_c : Cfg::PE, g.ft,
                                     g.packed != 0, d.kernel, d.in_c, g.taps, g.stack, w_ping, place.ping);
    }
    const uint32_t step = place.kept ? g.mac_words : 0u;  // words from a tile to the next one in the same buffer
    uint32_t ping_at = place.ping, pong_at = place.pong;
    // The two masters reach DDR through one HP port (overlays/tcl/block_design.tcl: one SmartConnect into
    // S_AXI_HP0, 64 bits), so their read beats share its read channel: only the shorter start-up latency hides
    // behind the other stream (the beats are counted one after the other)
    constexpr uint64_t LAT_IN = Cfg::Latency::LOAD_INPUT, LAT_W = Cfg::Latency::PARAMS + Cfg::Latency::WEIGHTS;
    uint64_t cycles = resident ? input : input + weights - (LAT_IN < LAT_W ? LAT_IN : LAT_W);
    uint32_t table_ptr = d.crit_start, table_last = 0;
    const uint32_t table_end = d.crit_start + d.crit_count;
    Tile tile = {0u, 0u, 0u, 0u, 0u, 0u, 0u};
tiles:  // sequential: tile t computes on one weight buffer while tile t+1's rows load into the other
    for (uint32_t t = 0; t < g.tiles; ++t) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
        tile.index = t;
        tile.rows = (d.out_c - tile.c0 < Cfg::PE) ? d.out_c - tile.c0 : Cfg::PE;
    tile_params:
        for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
            bias[p] = bias_buf[p][place.tile + t];
            shift[p] = shift_buf[p][place.tile + t];
        }
        const bool more = t + 1 < g.tiles && !resident;  // the next tile's rows to load
        const uint32_t next_c0 = tile.c0 + Cfg::PE;
        const uint32_t next_rows = !more ? 0u : (d.out_c - next_c0 < Cfg::PE) ? d.out_c - next_c0 : Cfg::PE;
        const uint32_t next_beat = weight_beat + row_beats * Cfg::PE;
        const uint32_t tile_start = table_ptr;
        if ((t & 1u) == 0) {  // tile t at ping_at, tile t+1 (if any) loads at pong_at
            cycles += overlapped_tile<Cfg>(weight_mem, crit_table, d, g, tile, more, next_beat, next_rows, table_ptr,
                                           table_last, table_end, bias, shift, in_buf, w_ping, w_pong, out_buf,
                                           raw_buf, sh_buf, marks, first, lane_count, fault, ctr, images, ping_at,
                                           pong_at);
            ping_at += step;
        } else {
            cycles += overlapped_tile<Cfg>(weight_mem, crit_table, d, g, tile, more, next_beat, next_rows, table_ptr,
                                           table_last, table_end, bias, shift, in_buf, w_pong, w_ping, out_buf,
                                           raw_buf, sh_buf, marks, first, lane_count, fault, ctr, images, pong_at,
                                           ping_at);
            pong_at += step;
        }
        if (u.active) cycles += apply_tile_upsets<Cfg>(upsets, u, tile, out_buf, ctr);  // before the corrector
        // The corrector (one call site): after the last tile over the layer's entries, or, map-batched, after each
        // tile over that tile's entries for each image (the order its shadows were written); entries no tile took
        // (a channel beyond the layer) are a table error there, as the full walk finds them
        const bool last = t + 1 == g.tiles;
        if (d.crit_count > 0 && (g.map_batch || last)) {
            const uint32_t start = g.map_batch ? tile_start : d.crit_start;
            const uint32_t count = g.map_batch ? table_ptr - tile_start : d.crit_count;
            cycles += correct_entries<Cfg>(crit_table, start, count, g.batched ? g.hw_out : images, d, g, out_buf,
                                           sh_buf, taken, ctr, upsets, u);
            if (g.map_batch && last && table_ptr < table_end && ctr.error == image::STATUS_OK) {
                ctr.error = image::STATUS_TABLE_RANGE;
            }
        }
        // the next tile's place, counted (PE is a power of two: the products by PE are shifts)
        tile.c0 = next_c0;
        tile.slot_base += g.slot_hw * Cfg::PE;
        weight_beat = next_beat;
        if (tile.group + 1 == GROUPS) {
            tile.group = 0;
            tile.row_base += g.hw_out;
            ++tile.raw_row;
        } else {
            ++tile.group;
        }
    }
    if (d.flags & image::FLAG_RAW) {
        return cycles + store_raw<Cfg>(ctrl_mem, out_addr / 4, d.out_c, g.hw_out, g.out_pixel_stride * 2, g.raw_rows,
                                       raw_buf);
    }
    uint32_t out_img = out_addr / 8, word0 = 0;
store_images:
    for (uint32_t i = 0; i < images; ++i) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
        cycles += store_output<Cfg>(act_mem, out_img, g, d, out_buf, word0);
        out_img += d.out_stride / 8;
        word0 += g.img_out;
    }
    return cycles;
}

// Cycles of a max-pool descriptor that pools the previous conv's output buffer (the conv carries FLAG_POOL_NEXT,
// accel_top.cpp runs the pair image by image): no input load, the pool over the buffer, the pooled map's store.
template <class Cfg>
uint64_t run_pool_on_chip(uint64_t* act_mem, const LayerDesc& conv, const LayerDesc& d, const LayerGeom& g,
                          uint32_t out_addr, typename Buffers<Cfg>::Out& out_buf) {
    const uint64_t cycles = maxpool_on_chip<Cfg>(conv, d, g, out_buf);
    return cycles + store_output<Cfg>(act_mem, out_addr / 8, g, d, out_buf);
}

}  // namespace resilq
