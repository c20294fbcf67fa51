// Output upsets (FI_CTRL.UPSETS): a list of slots, each with the XOR mask of its 8 bits, flips the values the
// PE lanes and the shadow lanes computed before the corrector sees them -- output-site bit errors at a rate (a
// BER draw, resilq.fault_kinds.BerFault) on the device. The host writes the list into the memory image
// (resilq.hls.upset_list, items as resilq/hls/regmap.py's UPSET_LO / UPSET_HI): layer by layer in IR order, in
// a layer the original slots by (channel, position) -- the order the tiles compute them -- then one item per
// critical entry with shadow copies to flip, by entry. Per neuron layer the kernel
//   1. loads the layer's items into the upset buffer (load_upsets, checking order and range: STATUS_UPSETS),
//   2. after each tile XORs the tile's original slots in the output buffer (apply_tile_upsets),
//   3. in the corrector XORs each entry's shadow copies as it reads them (correct_entries, lcu.hpp).
// A flip applied after the write equals one applied at it: nothing reads a slot between its write and the
// corrector (the output buffer is stored, or pooled, after the corrector). Only with N_IMAGES = 1, so a layer
// runs one image and every slot is written once.
#pragma once
#include <cstdint>

#include "resilq/imageformat.hpp"
#include "resilq/ops.hpp"
#include "resilq/probe.hpp"
#include "resilq/regmap.hpp"
#include "resilq/types.hpp"

namespace resilq {

typedef uint64_t UpsetBuffer[regmap::UPSET_CAPACITY];

// The current layer's items in the upset buffer: originals [0, orig), shadow items [orig, count); `at` the next
// original to apply, `sh` the next shadow item and `cur` its word (read ahead, so the corrector compares a register
// and its next read address never waits for a compare); `next` the list index of the next layer's first item.
struct UpsetRange {
    bool active;  // FI_CTRL.EN with UPSETS, armed for this inference
    uint32_t list_word, list_count, next;
    uint32_t orig, count, at, sh;
    uint64_t cur;
};

inline uint32_t upset_lo(uint64_t item, uint32_t mask, uint32_t lsb) { return (uint32_t(item) & mask) >> lsb; }
inline uint32_t upset_hi(uint64_t item, uint32_t mask, uint32_t lsb) {
    return (uint32_t(item >> 32) & mask) >> lsb;
}

// Items a layer's load reads: the rest of the list, at most one past the capacity (the one that tells a full layer
// from an overfull one) -- a count known before the loop, every iteration reading the next word unconditionally, so
// the reads can be one burst of variable length (UG1399 "Examples of Recommended Coding Styles": a sequential loop of
// variable trip count infers a variable-length burst; UG1448 "Burst Inference Failure 10": a conditional access
// prevents it), not one round trip per item.
inline uint32_t upset_span(uint32_t left) { return left < regmap::UPSET_CAPACITY + 1 ? left : regmap::UPSET_CAPACITY + 1; }

// Loads neuron layer d's items from the list (activation master) into `buf`; the cycles: the read's start-up and
// one per item read (upset_span: items past the layer's are read and left for the next layer's load). A bad item
// of the layer -- over the capacity, a slot outside the layer, keys not increasing, an empty mask, a second copy
// where the scheme has one -- or an item of an earlier layer before the layer's last sets `error`.
template <class Cfg>
uint64_t load_upsets(const uint64_t* act_mem, const LayerDesc& d, const LayerGeom& g, UpsetBuffer& buf,
                     UpsetRange& u, uint32_t& error) {
    u.orig = u.count = u.at = u.sh = 0;
    u.cur = 0;
    const uint32_t extra = g.copies - 1;
    const uint32_t span = upset_span(u.list_count - u.next);
    uint32_t last_key = 0, n = 0;
    bool any = false, shadows = false, taking = true, bad = false;
load_upsets:
    for (uint32_t i = 0; i < span; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=1025
        const uint64_t item = probe::load<probe::ACT>(act_mem, u.list_word + u.next + i);
        const uint32_t layer = upset_hi(item, regmap::UPSET_HI_LAYER_MASK, regmap::UPSET_HI_LAYER_LSB);
        if (layer > d.ir_layer) taking = false;  // the next layer's, and everything after it
        if (!taking || bad) continue;
        const uint32_t mask = upset_lo(item, regmap::UPSET_LO_MASK_MASK, regmap::UPSET_LO_MASK_LSB);
        const uint32_t mask2 = upset_lo(item, regmap::UPSET_LO_MASK2_MASK, regmap::UPSET_LO_MASK2_LSB);
        const uint32_t index = upset_lo(item, regmap::UPSET_LO_INDEX_MASK, regmap::UPSET_LO_INDEX_LSB);
        const uint32_t channel = upset_hi(item, regmap::UPSET_HI_CHANNEL_MASK, regmap::UPSET_HI_CHANNEL_LSB);
        const bool shadow = upset_hi(item, regmap::UPSET_HI_SHADOW_MASK, regmap::UPSET_HI_SHADOW_LSB) != 0;
        // shadow items key by entry after every original; originals by channel, then position
        const uint32_t key = shadow ? index : (channel << 16) | index;
        const bool ordered = !any || (shadow && !shadows) || key > last_key;
        const bool in_range = shadow ? (index < d.crit_count && channel == 0 && (mask | mask2) != 0 &&
                                        (extra > 1 || mask2 == 0))
                                     : (!shadows && channel < d.out_c && index < g.slot_hw && mask != 0 && mask2 == 0);
        if (layer < d.ir_layer || n >= regmap::UPSET_CAPACITY || !ordered || !in_range) {
            bad = true;
            continue;
        }
        buf[n] = item;
        ++n;
        if (!shadow) u.orig = n;
        shadows = shadows || shadow;
        any = true;
        last_key = key;
    }
    if (bad) error = image::STATUS_UPSETS;
    u.next += n;
    u.count = n;
    u.sh = u.orig;
    if (u.orig < n) u.cur = buf[u.orig];
    return uint64_t(span) + Cfg::Latency::LOAD_INPUT;
}

// After a tile: XOR its original slots (channels c0 .. c0 + rows - 1 of the one image) in the output buffer, at the
// place the corrector and the store read them; one cycle per item.
template <class Cfg>
uint64_t apply_tile_upsets(const UpsetBuffer& buf, UpsetRange& u, const Tile& tile,
                           typename Buffers<Cfg>::Out& out_buf, RunCounters& ctr) {
    uint32_t n = 0;
apply_upsets:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=1024
#pragma HLS DEPENDENCE variable=out_buf inter false
        if (u.at >= u.orig) break;
        const uint64_t item = buf[u.at];
        const uint32_t c = upset_hi(item, regmap::UPSET_HI_CHANNEL_MASK, regmap::UPSET_HI_CHANNEL_LSB);
        if (c >= tile.c0 + tile.rows) break;  // a later tile's
        const uint32_t pos = upset_lo(item, regmap::UPSET_LO_INDEX_MASK, regmap::UPSET_LO_INDEX_LSB);
        // channel c of tile t sits in output-buffer row t / GROUPS = c / OUT_BANKS, at tile.row_base (no multiplier)
        const uint32_t addr = tile.row_base + pos;
        const uint8_t mask = upset_lo(item, regmap::UPSET_LO_MASK_MASK, regmap::UPSET_LO_MASK_LSB);
        out_buf[c % Cfg::OUT_BANKS][addr] = static_cast<int8_t>(static_cast<uint8_t>(out_buf[c % Cfg::OUT_BANKS][addr]) ^ mask);
        ++ctr.fi_hits;
        ++u.at;
        ++n;
    }
    return n;
}

// The corrector's look-up: the masks of layer-local critical entry `entry`'s copies (0 when the list has none),
// consuming its item. The compare is on `cur`, read one item ahead: the buffer read of this call (the item after
// `sh`) has an address that depends on the previous calls only, never on this call's compare.
inline void shadow_upsets(const UpsetBuffer& buf, UpsetRange& u, uint32_t entry, uint8_t& m1, uint8_t& m2,
                          RunCounters& ctr) {
#pragma HLS INLINE
    m1 = m2 = 0;
    const uint64_t ahead = buf[u.sh + 1 < regmap::UPSET_CAPACITY ? u.sh + 1 : 0u];
    if (!u.active || u.sh >= u.count) return;
    if (upset_lo(u.cur, regmap::UPSET_LO_INDEX_MASK, regmap::UPSET_LO_INDEX_LSB) != entry) return;
    m1 = upset_lo(u.cur, regmap::UPSET_LO_MASK_MASK, regmap::UPSET_LO_MASK_LSB);
    m2 = upset_lo(u.cur, regmap::UPSET_LO_MASK2_MASK, regmap::UPSET_LO_MASK2_LSB);
    ctr.fi_hits += (m1 != 0 ? 1u : 0u) + (m2 != 0 ? 1u : 0u);
    ++u.sh;
    u.cur = ahead;
}

}  // namespace resilq
