// The Lightweight Correction Unit / corrector block (SPEC §4, paper Fig. 1 and 3): after a layer, the
// controller walks the layer's critical-table entries, reads each protected neuron's original slot
// from the output buffer and its shadows from the lane's shadow buffer, and writes the corrected value
// back into the output buffer. `split` ANDs the halves and resets bit 6, `tmr` votes, `dup-and` ANDs,
// `dup-min` takes the minimum (resilq::arith). CORRECTIONS counts invocations whose slots disagreed.
#pragma once
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/ops.hpp"
#include "resilq/types.hpp"

namespace resilq {

template <class Cfg>
uint64_t correct_layer(const uint32_t* crit_table, const LayerDesc& d, const LayerGeom& g,
                       typename Buffers<Cfg>::Out& out_buf, const typename Buffers<Cfg>::Shadow& sh_buf,
                       RunCounters& ctr) {
    const uint32_t extra = g.copies - 1;
    uint32_t taken[Cfg::PE];  // protected neurons of each lane corrected so far (its shadow read index)
#pragma HLS ARRAY_PARTITION variable=taken complete
init_taken:
    for (uint32_t p = 0; p < Cfg::PE; ++p) {
#pragma HLS UNROLL
        taken[p] = 0;
    }
    // every entry once per position of its channel that is protected: one (unbatched), or every image of the
    // chunk (batched: the layer's positions are images, written to the shadow buffer image after image)
    const uint32_t reps = g.batched ? g.hw_out : 1u;
    uint32_t e = 0, rep = 0, n = 0;
correct:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=8192
#pragma HLS DEPENDENCE variable=out_buf inter false
        if (e >= d.crit_count) break;
        const uint32_t entry = crit_table[d.crit_start + e];
        const uint32_t c = entry >> 16;
        const uint32_t entry_pos = entry & 0xFFFFu;
        const uint32_t pos = g.batched ? rep : entry_pos;
        const uint32_t lane = c % Cfg::PE;
        const uint32_t idx = ops::times_shadows(taken[lane], extra);
        ++taken[lane];
        ++n;
        if (rep + 1 == reps) {
            rep = 0;
            ++e;
        } else {
            ++rep;
        }
        if (c >= d.out_c || entry_pos >= g.slot_hw || idx + extra > Cfg::SHADOW_LANE) {
            ctr.error = image::STATUS_TABLE_RANGE;
            continue;
        }
        // row of channel c times the row length: one DSP48E1 (hw_out <= MAX_POS <= 2^16, c / OUT_BANKS < 2^16)
        const uint32_t addr = static_cast<uint32_t>(ops::index_product(g.hw_out, c / Cfg::OUT_BANKS)) + pos;
        const int8_t a = out_buf[c % Cfg::OUT_BANKS][addr];
        const int8_t b = sh_buf[lane][idx];
        const int8_t s = (extra > 1) ? sh_buf[lane][idx + 1] : b;
        if (arith::slots_disagree(d.scheme, a, b, s)) ++ctr.corrections;
        out_buf[c % Cfg::OUT_BANKS][addr] = arith::correct(d.scheme, a, b, s);
    }
    return uint64_t(n) + Cfg::Latency::LCU;
}

}  // namespace resilq
