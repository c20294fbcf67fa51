// The PE x SIMD layer engine: one tile of PE output channels of a Conv2d (a Linear layer is a 1x1 conv
// over a 1x1 map), over every output position, with the shadow passes of protected neurons.
//
// Each cycle, PE lanes each multiply SIMD input channels of one pixel of the receptive field by their
// own weights and add them into an int32 accumulator. At the last SIMD word of a position the lanes
// requantize (a split neuron's slots use split_half), the fault-injection registers act on the value
// (SPEC §2: the int8 written to the output buffer), and the value goes to the output buffer (pass 0,
// the original slots) or to the owner lane's shadow buffer (the shadow slots: the same inputs and weights).
//
// Who computes the shadows (resilq.hls.mapping.slot_lanes): Cfg::SHADOW_UNITS = K dedicated shadow lanes beside
// the array take the same activation. At a position where the tile's protected neurons need at most K shadow
// values (n * (copies - 1) <= K), shadow lane k computes, during the position's one pass, copy j of the i-th
// protected lane (k = i * (copies - 1) + j - 1) through a PE:1 multiplexer of weight rows, bias and shift: no extra
// cycle. A position needing more (a dense one) is recomputed copies-1 more times by the rotated array instead
// (pass j: lane p computes lane (p - j) mod PE's channel). Either way no lane computes two copies of a neuron.
//
// Every array index inside the pipelined loops is either a compile-time bank per lane (each lane writes
// only its own banks, so several lanes never compete for one BRAM port in an iteration: II = 1 needs no
// proof from the tool) or an incremental counter (no run-time multiplier, resilq/ops.hpp).
#pragma once
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/ops.hpp"
#include "resilq/types.hpp"

namespace resilq {

// Walk the critical-table entries of the tile's channels (entries sorted by channel, then position):
// mark each protected (lane, position) and remember the layer-local index of each lane's first entry.
// `ptr` and `last` (the previous entry) carry over from tile to tile; entries must strictly increase.
// The word deciding whether the loop goes on is read one iteration ahead (`next_entry`), so the exit of
// iteration i+1 depends on a register loaded in iteration i, not on a table read of the same iteration;
// each lane's marks and first-entry registers are written through its own compile-time index.
template <class Cfg>
uint64_t mark_tile(const uint32_t* crit_table, uint32_t& ptr, uint32_t& last, uint32_t end, uint32_t layer_start,
                   uint32_t c0, uint32_t rows, uint32_t hw_out, typename Buffers<Cfg>::Marks& marks,
                   uint32_t first[Cfg::PE], uint32_t& error) {
    bool seen[Cfg::PE];
#pragma HLS ARRAY_PARTITION variable=seen complete
init_seen:
    for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
        seen[p] = false;
    }
    uint32_t n = 0;
    uint32_t next_entry = (ptr < end) ? crit_table[ptr] : 0u;
mark_tile:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=8192
        if (ptr >= end) break;
        const uint32_t entry = next_entry;
        const uint32_t c = entry >> 16;
        const uint32_t pos = entry & 0xFFFFu;
        if (c >= c0 + rows) break;
        next_entry = crit_table[(ptr + 1 < end) ? ptr + 1 : ptr];
        const bool bad = c < c0 || pos >= hw_out || (ptr > layer_start && entry <= last);
        if (bad) error = image::STATUS_TABLE_RANGE;  // unsorted or outside the layer: skipped, run flagged
        const uint32_t lane = c - c0;
    mark_lanes:
        for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
            if (!bad && lane == p) {
                if (!seen[p]) {
                    seen[p] = true;
                    first[p] = ptr - layer_start;
                }
                marks[p][pos] = true;
            }
        }
        last = entry;
        ++ptr;
        ++n;
    }
    return uint64_t(n) + Cfg::Latency::TABLE;
}

// Compute one tile (tile.rows <= PE output channels from tile.c0), every output position, shadow passes, for
// one image: its input map from element `in_base` of the input buffer, its outputs from word `out_base` of each
// output-buffer bank (both 0 but for image i > 0 of a map-batched chunk, LayerGeom::map_batch). lane_count[p]
// counts the protected neurons lane p has produced in this layer so far (its shadow buffer fill); first[p] is the
// layer-local table index of lane p's first entry in this tile. The tile's protected-position marks are cleared
// as they are read on `last_image` (a map-batched chunk reads them once per image).
template <class Cfg>
uint64_t conv_tile(const LayerDesc& d, const LayerGeom& g, const Tile& tile, const int32_t bias[Cfg::PE],
                   const uint32_t shift[Cfg::PE], const typename Buffers<Cfg>::In& in_buf,
                   const typename Buffers<Cfg>::Weights& w_buf, typename Buffers<Cfg>::Marks& marks,
                   typename Buffers<Cfg>::Out& out_buf, typename Buffers<Cfg>::Raw& raw_buf,
                   typename Buffers<Cfg>::Shadow& sh_buf, const uint32_t first[Cfg::PE], uint32_t lane_count[Cfg::PE],
                   const FaultSite& fault, RunCounters& ctr, uint32_t in_base = 0, uint32_t out_base = 0,
                   bool last_image = true, uint32_t w_base = 0) {  // w_base: the tile's first weight word
    const bool raw = (d.flags & image::FLAG_RAW) != 0;
    const int32_t lo = (d.flags & image::FLAG_RELU) ? 0 : arith::INT8_LO;
    const bool split = d.scheme == arith::SPLIT;
    const uint32_t extra = g.copies - 1;  // shadow passes of a protected position
    const int32_t stride = static_cast<int32_t>(d.stride), pad = static_cast<int32_t>(d.pad);
    const int32_t in_h = static_cast<int32_t>(d.in_h), in_w = static_cast<int32_t>(d.in_w);

    int32_t acc[Cfg::PE];
    int8_t val[Cfg::PE];         // the lanes' int8 results of the position (after the fault unit)
    bool prot[Cfg::PE];
    uint32_t seen[Cfg::PE];      // protected neurons of each lane met in this tile
    uint32_t slot0[Cfg::PE];     // original slot of the lane's neuron at position 0: (c0 + p) * hw_out
    uint32_t rank[Cfg::PE];      // spare position: the shadow lane of the lane's first shadow copy
    // the dedicated shadow lanes (SK = 0 builds none; the arrays keep one element for the compiler)
    constexpr uint32_t SK = Cfg::SHADOW_UNITS;
    constexpr uint32_t SKA = Cfg::SHADOW_ARRAY;  // max(1, SK): an array of the C++ never has zero elements
    int32_t sacc[Cfg::SHADOW_ARRAY];  // shadow lane k's accumulator
    uint32_t sel[Cfg::SHADOW_ARRAY];  // the PE lane (channel) whose neuron shadow lane k recomputes at this position
#pragma HLS ARRAY_PARTITION variable=rank complete
#pragma HLS ARRAY_PARTITION variable=sacc complete
#pragma HLS ARRAY_PARTITION variable=sel complete
#pragma HLS ARRAY_PARTITION variable=acc complete
#pragma HLS ARRAY_PARTITION variable=val complete
#pragma HLS ARRAY_PARTITION variable=prot complete
#pragma HLS ARRAY_PARTITION variable=seen complete
#pragma HLS ARRAY_PARTITION variable=slot0 complete
    // Packed (2 * in_c <= SIMD): lane s of a word is kernel column lane_kx[s] of the window row (the element
    // offset s = kx * in_c + c); unpacked every lane sits at the word's pixel (lane_kx = 0). Stacked
    // (LayerGeom::stack), lane s = i * tap_elems + kx * in_c + c is row lane_ky[s] = i of the word's kernel rows,
    // lane_skip[s] = i * (line - tap_elems) elements further on than s (a multiple of SIMD: the same bank).
    uint32_t lane_kx[Cfg::SIMD], lane_ky[Cfg::SIMD], lane_skip[Cfg::SIMD];
#pragma HLS ARRAY_PARTITION variable=lane_kx complete
#pragma HLS ARRAY_PARTITION variable=lane_ky complete
#pragma HLS ARRAY_PARTITION variable=lane_skip complete
    const uint32_t row_skip = (g.stack > 1) ? g.line - g.tap_elems : 0u;
    uint32_t col = 0, chan = 0, lrow = 0, skip = 0;
init_columns:
    for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
        lane_kx[s] = g.packed ? col : 0u;
        lane_ky[s] = lrow;
        lane_skip[s] = skip;
        if (chan + 1 == d.in_c) {
            chan = 0;
            if (g.stack > 1 && col + 1 == d.kernel) {
                col = 0;
                ++lrow;
                skip += row_skip;
            } else {
                ++col;
            }
        } else {
            ++chan;
        }
    }
    uint32_t lane_slot = tile.slot_base;
init_lanes:
    for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
        acc[p] = 0;
        val[p] = 0;
        prot[p] = false;
        seen[p] = 0;
        rank[p] = 0;
        slot0[p] = lane_slot;
        lane_slot += g.slot_hw;
    }
init_shadow_lanes:
    for (uint32_t k = 0; k < SKA; ++k) {
#pragma HLS UNROLL
        sacc[k] = 0;
        sel[k] = 0;
    }
    bool spare = false;  // this position's shadows come from the shadow lanes (in pass 0)
    // protected lanes a position's shadow lanes take: K / (copies - 1), a per-layer constant (a shift, no divider)
    const uint32_t cap = extra == 2u ? SK >> 1 : (extra == 1u ? SK : 0u);

    uint32_t pos = 0, ox = 0, pass = 0, npass = 1;
    uint32_t raw_base = 0;  // classifier-buffer word of the position: pos * raw_rows, counted
    uint32_t f = 0, cg = 0, kx = 0, ky = 0, wx = 0;  // wx: packed, the word within the kernel row
    // The receptive field, counted instead of multiplied: (iy0, ix0) = (oy, ox) * stride - pad; the input
    // buffer element of window pixel (ky, kx), channel group cg is window + inner, with (LayerGeom::pitch)
    // window = ((oy * stride - pad) * in_w + ox * stride - pad) * pitch and
    // inner = ky * line + kx * pitch + cg * SIMD (unpacked; packed, kx and cg stay 0: inner = ky * line).
    int32_t iy0 = -pad, ix0 = -pad;
    int32_t row_window = static_cast<int32_t>(in_base) - static_cast<int32_t>(g.pad_offset), window = row_window;
    uint32_t inner = 0, ky_off = 0;
    uint64_t iters = 0;
compute:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=1048576
#pragma HLS DEPENDENCE variable=marks inter false
        if (f == 0 && pass == 0) {  // a new position: which lanes hold a protected neuron here?
            bool any = false;
            uint32_t n = 0;  // protected lanes of the position so far (at most PE: a narrow counter)
            // batched, every position (image) of a protected channel is protected: the marks of position 0
            // hold for the whole chunk and are cleared at its last image
            const uint32_t mpos = g.batched ? 0u : pos;
            const bool clear = g.batched ? pos + 1 == g.hw_out : last_image;
        read_marks:
            for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
                prot[p] = marks[p][mpos];
                if (clear) marks[p][mpos] = false;
                any = any || prot[p];
                rank[p] = ops::times_shadows(n, extra);
                if (prot[p]) ++n;
            }
            spare = any && n <= cap;  // n * (copies - 1) <= K; cap = 0 without shadow lanes: never spare
            npass = (any && !spare) ? g.copies : 1;
        assign_shadow_lanes:  // shadow lane k: copy (k - rank[p]) + 1 of protected lane p's neuron
            for (uint32_t k = 0; k < SKA; ++k) {
#pragma HLS UNROLL
                sel[k] = 0;
            match_lanes:
                for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
                    if (prot[p] && k >= rank[p] && k < rank[p] + extra) sel[k] = p;
                }
            }
        }
        // SIMD consecutive input elements from element e (zero outside the padded input): bank b holds the
        // elements == b (mod SIMD), so bank b serves lane (b - e) % SIMD at its own word, and the lanes are the
        // banks rotated by e % SIMD (0 unpacked: e is a whole word). Each bank is read once per cycle.
        const int32_t iy = iy0 + static_cast<int32_t>(ky);
        const int32_t ix = ix0 + static_cast<int32_t>(kx);
        const int32_t e = window + static_cast<int32_t>(inner);
        const uint32_t rot = static_cast<uint32_t>(e) % Cfg::SIMD;
        int8_t banks[Cfg::SIMD], x[Cfg::SIMD];
#pragma HLS ARRAY_PARTITION variable=banks complete
#pragma HLS ARRAY_PARTITION variable=x complete
    read_banks:
        for (uint32_t b = 0; b < Cfg::SIMD; ++b) {
#pragma HLS UNROLL
            const uint32_t sb = (b - rot) % Cfg::SIMD;  // the lane this bank serves
            const int32_t eb = e + static_cast<int32_t>(sb + lane_skip[sb]);
            const uint32_t word = eb < 0 ? 0u : static_cast<uint32_t>(eb) / Cfg::SIMD;
            banks[b] = in_buf[b][word < Cfg::MAX_IN / Cfg::SIMD ? word : 0u];
        }
    read_patch:
        for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
            const int32_t xs = ix + static_cast<int32_t>(lane_kx[s]);
            const int32_t ys = iy + static_cast<int32_t>(lane_ky[s]);
            const bool inside = ys >= 0 && ys < in_h && xs >= 0 && xs < in_w;
            x[s] = inside ? banks[(s + rot) % Cfg::SIMD] : static_cast<int8_t>(0);
        }
        // Lane-diverse shadows: in pass j lane p computes the channel of lane (p - j) mod PE (its weights, bias
        // and shift), so shadow j of lane q's neuron comes from lane (q + j) mod PE: no lane computes two copies
        // of one protected neuron when PE >= copies (resilq.hls.mapping.slot_lanes). Pass 0 is the identity.
        const uint32_t turn = pass % Cfg::PE;
        Pack<Cfg::SIMD> wrow[Cfg::PE];
#pragma HLS ARRAY_PARTITION variable=wrow complete
    read_weights:  // every lane's bank at the same word: one read per bank, then the rotation
        for (uint32_t b = 0; b < Cfg::PE; ++b) {
#pragma HLS UNROLL
            wrow[b] = w_buf[b][w_base + f];
        }
    // Lanes q and q + PE/2 share each x[s]: one DSP48E1 computes both products (ops::mac_pair). The partners
    // are PE/2 lanes apart, so the lane-diverse copies of a protected neuron (lanes q, q+1, q+2) never share a
    // DSP when PE >= 2 * copies (resilq.hls.mapping.dsp_partner).
    mac_pairs:
        for (uint32_t q = 0; q < (Cfg::PE + 1) / 2; ++q) {
#pragma HLS UNROLL
            const uint32_t pa = q, pb = q + Cfg::PE / 2;
            const bool has_b = Cfg::PE >= 2;  // PE = 1: the pair's second weight is 0
            const uint32_t src_a = (pa + Cfg::PE - turn) % Cfg::PE;
            const uint32_t src_b = has_b ? (pb + Cfg::PE - turn) % Cfg::PE : src_a;
            int32_t sum_a = (f == 0) ? bias[src_a] : acc[pa];
            int32_t sum_b = (f == 0) ? bias[src_b] : acc[has_b ? pb : pa];
        mac_simd:
            for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
                const ops::ProductPair two = ops::mac_pair(wrow[src_a].v[s], has_b ? wrow[src_b].v[s] : int8_t(0), x[s]);
                sum_a += two.a;
                sum_b += two.b;
            }
            acc[pa] = sum_a;
            if (has_b) acc[pb] = sum_b;
        }
    // The shadow lanes: each takes the weight row and bias of the lane it serves (pass 0: no rotation) and
    // multiplies on its own DSP48E1s (ops::mac_single: a shadow never shares a DSP with another copy).
    shadow_macs:
        for (uint32_t k = 0; k < SK; ++k) {
#pragma HLS UNROLL
            const uint32_t src = sel[k];
            int32_t sum = (f == 0) ? bias[src] : sacc[k];
        shadow_simd:
            for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
                sum += ops::mac_single(wrow[src].v[s], x[s]);
            }
            sacc[k] = sum;
        }
        ++iters;
        if (f + 1 < g.mac_words) {  // next SIMD word of the receptive field: channel group, then kx, then ky
            ++f;
            if (cg + 1 < g.cg) {
                ++cg;
                inner += Cfg::SIMD;
            } else {
                cg = 0;
                if (!g.packed && kx + 1 < d.kernel) {
                    ++kx;
                    inner += Cfg::SIMD;
                } else if (g.packed && wx + 1 < g.row_words) {  // the next `taps` columns of the row
                    ++wx;
                    kx += g.taps;
                    inner += g.tap_elems;
                } else {
                    wx = 0;
                    kx = 0;
                    ky += g.stack;  // the next word's kernel rows (stacked: `stack` rows a word)
                    ky_off += g.word_line;
                    inner = ky_off;
                }
            }
            continue;
        }
        int8_t res[Cfg::PE];  // each computing lane's int8 result (its channel: lane (p - turn) mod PE's)
#pragma HLS ARRAY_PARTITION variable=res complete
    lane_results:
        for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
            const uint32_t src = (p + Cfg::PE - turn) % Cfg::PE;
            res[p] = (prot[src] && split) ? arith::split_half(acc[p], shift[src])
                                          : arith::requantize(acc[p], shift[src], lo, arith::INT8_HI);
        }
    int8_t sres[Cfg::SHADOW_ARRAY];  // each shadow lane's int8 result (a protected neuron's: split_half under split)
#pragma HLS ARRAY_PARTITION variable=sres complete
    shadow_results:
        for (uint32_t k = 0; k < SKA; ++k) {
#pragma HLS UNROLL
            sres[k] = split ? arith::split_half(sacc[k], shift[sel[k]])
                            : arith::requantize(sacc[k], shift[sel[k]], lo, arith::INT8_HI);
        }
    lane_values:  // per owner lane p: its original (pass 0), its shadow copies, the fault units, its shadow bank
        for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
            if (p < tile.rows && !raw) {
                const bool armed = (pos == 0) ? fault.active : fault.active_rest;  // batched: pos = image
                if (pass == 0) {  // the original: lane p's own value (no rotation in pass 0)
                    int8_t v = res[p];
                    if (armed && !fault.lane_mode && fault.slot == slot0[p] + (g.batched ? 0u : pos)) {
                        v = arith::apply_fault(v, fault.mask, fault.mode);
                        ++ctr.fi_hits;
                    }
                    // a persistent lane fault (FI_CTRL.KIND 1) hits every value its lane writes
                    if (armed && fault.lane_mode && fault.lane == p) {
                        v = arith::apply_fault(v, fault.mask, fault.mode);
                        ++ctr.fi_hits;
                    }
                    val[p] = v;
                }
            shadow_copies:  // copy j: from shadow lane rank[p] + j - 1 (a spare position) or from pass j's array
                for (uint32_t j = 1; j <= 2; ++j) {
#pragma HLS UNROLL
                    const bool lanes = spare && pass == 0;
                    if (j <= extra && prot[p] && (lanes || pass == j)) {
                        const uint32_t k = rank[p] + j - 1;
                        // the lane that computed this copy: shadow lane k is lane PE + k of the fault registers
                        const uint32_t maker = lanes ? Cfg::PE + k : (p + turn) % Cfg::PE;
                        int8_t v = lanes ? sres[k < SKA ? k : 0u] : res[(p + turn) % Cfg::PE];
                        const uint32_t entry = first[p] + seen[p];
                        const uint32_t slot = g.slot_n_out + ops::times_shadows(entry, extra) + (j - 1);
                        if ((armed && !fault.lane_mode && fault.slot == slot) ||
                            (armed && fault.lane_mode && maker == fault.lane)) {
                            v = arith::apply_fault(v, fault.mask, fault.mode);
                            ++ctr.fi_hits;
                        }
                        const uint32_t idx = ops::times_shadows(lane_count[p], extra) + (j - 1);
                        if (idx < Cfg::SHADOW_LANE) sh_buf[p][idx] = v;
                        else ctr.error = image::STATUS_SHADOW_OVERFLOW;
                    }
                }
            }
        }
    write_banks:  // bank b holds lane b % PE of the tiles in group b / PE: a compile-time bank per lane
        for (uint32_t b = 0; b < Cfg::OUT_BANKS; ++b) {
#pragma HLS UNROLL
            const uint32_t p = b % Cfg::PE;
            if (b / Cfg::PE == tile.group && p < tile.rows) {
                if (raw) raw_buf[b][raw_base + tile.raw_row] = acc[p];  // pass 0 only: no rotation
                else if (pass == 0) out_buf[b][out_base + tile.row_base + pos] = val[p];
            }
        }
        f = 0;
        cg = 0;
        kx = 0;
        wx = 0;
        ky = 0;
        inner = 0;
        ky_off = 0;
        if (pass + 1 < npass) {
            ++pass;
            continue;
        }
        pass = 0;
    count_protected:
        for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
            if (prot[p]) {
                if (!g.batched) ++seen[p];  // batched: one table entry per lane and tile serves every image
                ++lane_count[p];
            }
        }
        if (pos + 1 == g.hw_out) break;
        ++pos;
        raw_base += g.raw_rows;
        if (ox + 1 < d.out_w) {
            ++ox;
            ix0 += stride;
            window += static_cast<int32_t>(g.step_x);
        } else {
            ox = 0;
            ix0 = -pad;
            iy0 += stride;
            row_window += static_cast<int32_t>(g.step_y);
            window = row_window;
        }
    }
    return iters + Cfg::Latency::MAC;
}

}  // namespace resilq
