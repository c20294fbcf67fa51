// The controller: runs one layer descriptor for one image (load, tiles of PE channels with their
// critical-table walk and shadow passes, corrector, store) and returns the cycles it took.
#pragma once
#include <cstdint>

#include "resilq/conv.hpp"
#include "resilq/descriptor.hpp"
#include "resilq/io.hpp"
#include "resilq/lcu.hpp"
#include "resilq/pool.hpp"
#include "resilq/types.hpp"

namespace resilq {

template <class Cfg>
uint64_t run_layer(uint32_t* ctrl_mem, const uint64_t* weight_mem, int8_t* act_mem, const uint32_t* crit_table,
                   const LayerDesc& d, const LayerGeom& g, uint32_t in_addr, uint32_t out_addr,
                   typename Buffers<Cfg>::In& in_buf, typename Buffers<Cfg>::Weights& w_buf,
                   typename Buffers<Cfg>::Out& out_buf, typename Buffers<Cfg>::Raw& raw_buf,
                   typename Buffers<Cfg>::Shadow& sh_buf, typename Buffers<Cfg>::Marks& marks, const FaultSite& fault,
                   RunCounters& ctr) {
    uint64_t cycles = load_input<Cfg>(act_mem, in_addr, g.n_in, g.hw_in, g.cg, in_buf);
    if (d.op == image::OP_MAXPOOL) {
        cycles += maxpool<Cfg>(d, g, in_buf, out_buf);
        return cycles + store_output<Cfg>(act_mem, out_addr, g.n_out, g.hw_out, out_buf);
    }
    int32_t bias[Cfg::PE];
    uint32_t shift[Cfg::PE], first[Cfg::PE], lane_count[Cfg::PE];
#pragma HLS ARRAY_PARTITION variable=bias complete
#pragma HLS ARRAY_PARTITION variable=shift complete
#pragma HLS ARRAY_PARTITION variable=first complete
#pragma HLS ARRAY_PARTITION variable=lane_count complete
init_lanes:
    for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
        bias[p] = 0;
        shift[p] = 0;
        first[p] = 0;
        lane_count[p] = 0;
    }
    constexpr uint32_t GROUPS = Cfg::OUT_BANKS / Cfg::PE;  // tiles sharing one output-buffer row
    const uint32_t param_beat = d.w_addr / 8;
    const uint32_t row_beats = g.ft * (Cfg::SIMD / 8);
    uint32_t weight_beat = param_beat + d.out_c;
    uint32_t table_ptr = d.crit_start, table_last = 0;
    const uint32_t table_end = d.crit_start + d.crit_count;
    Tile tile = {0u, 0u, 0u, 0u, 0u, 0u};
tiles:  // sequential: each tile runs the pipelined loops below one after the other
    for (uint32_t t = 0; t < g.tiles; ++t) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
        tile.rows = (d.out_c - tile.c0 < Cfg::PE) ? d.out_c - tile.c0 : Cfg::PE;
        cycles += load_params<Cfg>(weight_mem, param_beat + tile.c0, tile.rows, bias, shift);
        cycles += load_weights<Cfg>(weight_mem, weight_beat, tile.rows, g.ft, w_buf);
        if (d.crit_count > 0) {
            cycles += mark_tile<Cfg>(crit_table, table_ptr, table_last, table_end, d.crit_start, tile.c0, tile.rows,
                                     g.hw_out, marks, first, ctr.error);
        }
        cycles += conv_tile<Cfg>(d, g, tile, bias, shift, in_buf, w_buf, marks, out_buf, raw_buf, sh_buf, first,
                                 lane_count, fault, ctr);
        // the next tile's place, counted (PE is a power of two: the products by PE are shifts)
        tile.c0 += Cfg::PE;
        tile.slot_base += g.hw_out * Cfg::PE;
        weight_beat += row_beats * Cfg::PE;
        if (tile.group + 1 == GROUPS) {
            tile.group = 0;
            tile.row_base += g.hw_out;
            ++tile.raw_row;
        } else {
            ++tile.group;
        }
    }
    if (d.crit_count > 0) cycles += correct_layer<Cfg>(crit_table, d, g, out_buf, sh_buf, ctr);
    if (d.flags & image::FLAG_RAW) return cycles + store_raw<Cfg>(ctrl_mem, out_addr / 4, g.n_out, raw_buf);
    return cycles + store_output<Cfg>(act_mem, out_addr, g.n_out, g.hw_out, out_buf);
}

}  // namespace resilq
