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
#include "resilq/upsets.hpp"

namespace resilq {

// Corrects `count` table entries from `start` (a layer's, or for a map-batched chunk one tile's), `images` times:
// in the order the tiles wrote their shadows. `taken[p]` is lane p's shadow read index, carried from call to call.
// * unbatched (images = 1): each entry once, at its position;
// * a batched vector layer (LayerGeom::batched: positions are images): each entry `images` times in a row, at
//   position = image (a tile holds at most one entry per lane, recomputed image after image);
// * a map-batched chunk (LayerGeom::map_batch): the tile's entries once per image, image i's map at output-buffer
//   word i * img_out (the tile computed image after image).
// Only counters decide the next entry: the table read of an iteration never steers the loop. With output upsets
// (`u.active`, one image) each entry's shadow copies are XORed with its upset item's masks as they are read.
template <class Cfg>
uint64_t correct_entries(const uint32_t* crit_table, uint32_t start, uint32_t count, uint32_t images,
                         const LayerDesc& d, const LayerGeom& g, typename Buffers<Cfg>::Out& out_buf,
                         const typename Buffers<Cfg>::Shadow& sh_buf, uint32_t taken[Cfg::PE], RunCounters& ctr,
                         const UpsetBuffer& upsets, UpsetRange& u) {
    const uint32_t extra = g.copies - 1;
    const uint32_t step = g.map_batch ? g.img_out : 0u;  // output-buffer words from one image's map to the next
    uint32_t e = 0, rep = 0, base = 0, n = 0;
correct:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=524288
#pragma HLS DEPENDENCE variable=out_buf inter false
        if (e >= count || rep >= images) break;
        const uint32_t entry = crit_table[start + e];
        const uint32_t local = start - d.crit_start + e;  // the entry's index in the layer (upset items key by it)
        const uint32_t c = entry >> 16;
        const uint32_t entry_pos = entry & 0xFFFFu;
        const uint32_t pos = g.batched ? rep : entry_pos;
        const uint32_t lane = c % Cfg::PE;
        const uint32_t idx = ops::times_shadows(taken[lane], extra);
        const uint32_t row_base = base;
        ++taken[lane];
        ++n;
        if (g.batched) {  // entry-major: this entry for every image first
            if (rep + 1 == images) {
                rep = 0;
                ++e;
            } else {
                ++rep;
            }
        } else if (e + 1 == count) {  // image-major: the range again for the next image
            e = 0;
            ++rep;
            base += step;
        } else {
            ++e;
        }
        if (c >= d.out_c || entry_pos >= g.slot_hw || idx + extra > Cfg::SHADOW_LANE) {
            // skipped; the run is flagged unless the compute already flagged it (a shadow overflow comes first)
            if (ctr.error == image::STATUS_OK) ctr.error = image::STATUS_TABLE_RANGE;
            continue;
        }
        // row of channel c times the row length: one DSP48E1 (hw_out <= MAX_POS <= 2^16, c / OUT_BANKS < 2^16)
        const uint32_t addr = row_base + static_cast<uint32_t>(ops::index_product(g.hw_out, c / Cfg::OUT_BANKS)) + pos;
        const int8_t a = out_buf[c % Cfg::OUT_BANKS][addr];
        uint8_t m1, m2;
        shadow_upsets(upsets, u, local, m1, m2, ctr);
        const int8_t b = static_cast<int8_t>(static_cast<uint8_t>(sh_buf[lane][idx]) ^ m1);
        const int8_t s = (extra > 1) ? static_cast<int8_t>(static_cast<uint8_t>(sh_buf[lane][idx + 1]) ^ m2) : b;
        if (arith::slots_disagree(d.scheme, a, b, s)) ++ctr.corrections;
        out_buf[c % Cfg::OUT_BANKS][addr] = arith::correct(d.scheme, a, b, s);
    }
    return uint64_t(n) + Cfg::Latency::LCU;
}

}  // namespace resilq
