// DDR <-> on-chip transfers of one layer: input map, parameter beats, weight rows, outputs.
// Each returns the modelled cycles it took: its trip count plus the modelled latency of its pipeline.
// Trip counts come from plan_descriptor (descriptor.hpp) or from counters: no run-time multiplier here.
#pragma once
#include <cstdint>

#include "resilq/arith.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/probe.hpp"
#include "resilq/types.hpp"

namespace resilq {

// An int8 map from DDR into the input buffer, one 64-bit beat per cycle. DDR holds maps pixel-major
// (resilq/hls/imageformat.py, FORMAT 2): either every pixel's channels padded with zeros to whole beats
// (LayerGeom::in_dense == 0, the layout store_output writes: beat j of pixel q holds channels 8j .. 8j+7), or,
// for the network input a dense or vector layer reads (in_dense == 1), the bytes pixel * in_c + c in one run.
// The buffer holds element e = y * line + x * pitch + c (pixel (y, x)) in bank e % SIMD, word e / SIMD: the DDR
// order, but for the row_gap unused elements a stacked conv leaves after every row (LayerGeom::stack). A beat's
// (up to) 8 bytes go to consecutive elements from `base`, so they land in 8 different banks: bank b takes byte
// `first` + (b - base) % SIMD of the beat when that is < `valid` (the bytes of this pixel or row; padding is
// dropped). Dense and stacked, a beat holding the end of one row and the start of the next is read once for
// each (in_trips). `base` and the counters are counted, not multiplied.
// A map-batched chunk loads image i's map from element `elem0` = i * img_in (a multiple of SIMD).
template <class Cfg>
uint64_t load_input(const uint64_t* act_mem, uint32_t beat, const LayerGeom& g, uint32_t in_c, uint32_t in_w,
                    typename Buffers<Cfg>::In& in_buf, uint32_t elem0 = 0) {
    uint32_t base = elem0, pixel_base = elem0, j = 0, chan = 0, px = 0;  // element of the next byte; pixel's element 0
    uint32_t addr = beat, pixel_addr = beat;               // DDR beat; first beat of the pixel's record
    const uint32_t run = (g.stack > 1) ? g.row_elems : g.n_in;  // dense: elements of one run (a row, or the map)
    uint32_t left = run, boff = 0;                          // dense: elements left in the run; its next byte in the beat
load_input:
    for (uint32_t i = 0; i < g.in_trips; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=8192
        const uint64_t bits = probe::load<probe::ACT>(act_mem, addr);
        // dense: the run's bytes left in this beat; padded: the pixel's channels left (at most one beat)
        const uint32_t room = g.in_dense ? 8u - boff : 8u;
        const uint32_t have = g.in_dense ? left : in_c - chan;
        const uint32_t valid = have < room ? have : room;
        const uint32_t first = g.in_dense ? boff : 0u;
        const uint32_t rot = base % Cfg::SIMD;
    scatter:
        for (uint32_t b = 0; b < Cfg::SIMD; ++b) {
#pragma HLS UNROLL
            const uint32_t k = (b + Cfg::SIMD - rot) % Cfg::SIMD;  // the element (from base) bank b receives
            if (k < valid) {
                const uint32_t e = base + k;
                in_buf[b][e / Cfg::SIMD] = static_cast<int8_t>(static_cast<uint8_t>(bits >> (8 * ((first + k) % 8))));
            }
        }
        if (g.in_dense) {
            base += valid;
            left -= valid;
            boff += valid;
            if (boff == 8) {
                boff = 0;
                ++addr;
            }
            if (left == 0) {  // the next row (stacked): after the row's unused elements
                left = run;
                base += g.row_gap;
            }
        } else if (j + 1 == g.in_pixel_beats) {  // next pixel (batched: the next image's record)
            j = 0;
            chan = 0;
            pixel_base += g.pitch;
            if (px + 1 == in_w) {  // the next row, after its unused elements (stacked)
                px = 0;
                pixel_base += g.row_gap;
            } else {
                ++px;
            }
            base = pixel_base;
            pixel_addr += g.in_pixel_stride;
            addr = pixel_addr;
        } else {
            ++j;
            chan += 8;
            base += 8;
            ++addr;
        }
    }
    return uint64_t(g.in_trips) + Cfg::Latency::LOAD_INPUT;
}

// Bias and shift of all `n` output channels of a layer, once per layer: one 64-bit beat each (int32 bias,
// uint8 shift), channel r into bank r % PE, word r / PE (the tile number), counted.
template <class Cfg>
uint64_t load_params(const uint64_t* weight_mem, uint32_t beat, uint32_t n, typename Buffers<Cfg>::Bias& bias,
                     typename Buffers<Cfg>::Shift& shift, uint32_t word0 = 0) {  // word0: the layer's first tile
    uint32_t lane = 0, word = word0;
load_params:
    for (uint32_t r = 0; r < n; ++r) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
        const uint64_t bits = probe::load<probe::WEIGHTS>(weight_mem, beat + r);
        bias[lane][word] = static_cast<int32_t>(static_cast<uint32_t>(bits & 0xFFFFFFFFu));
        shift[lane][word] = static_cast<uint8_t>((bits >> 32) & 0x1Fu);
        if (lane + 1 == Cfg::PE) {
            lane = 0;
            ++word;
        } else {
            ++lane;
        }
    }
    return uint64_t(n) + Cfg::Latency::PARAMS;
}

// `rows` (>= 1) weight rows of `ft` SIMD words each from DDR; a SIMD word is SIMD/8 consecutive 64-bit beats.
// The loop ends on its row counter: rows * ft * SIMD/8 beats, counted, not multiplied. Unpacked, DDR word f
// of a row is on-chip word f. Packed (LayerGeom::packed: 2 * in_c <= SIMD), `taps` consecutive DDR words
// (ky, kx .. kx + taps - 1) of one kernel row merge into one on-chip word, ky * row_words + kx / taps: lanes
// t * in_c .. t * in_c + in_c - 1 take DDR word (ky, kx + t)'s channels 0..in_c-1 (the others are zero), the
// order of the input buffer's dense pixels (load_input), so one on-chip word meets `taps` window pixels.
// Stacked (LayerGeom::stack > 1, taps == kernel), the `stack` kernel rows ky = g * stack + i of word g follow one
// another: row i at lanes i * kernel * in_c .. (the rows of the last word that the kernel lacks stay zero).
template <class Cfg>
uint64_t load_weights(const uint64_t* weight_mem, uint32_t beat, uint32_t rows, uint32_t ft, bool packed,
                      uint32_t kernel, uint32_t in_c, uint32_t taps, uint32_t stack,
                      typename Buffers<Cfg>::Weights& w_buf,
                      uint32_t base = 0) {  // base: the tile's first word (kept weights, engine.hpp)
    constexpr uint32_t BEATS = Cfg::SIMD / 8;
    Pack<Cfg::SIMD> word, merged;
#pragma HLS AGGREGATE variable=word
#pragma HLS AGGREGATE variable=merged
clear_merged:
    for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
        merged.v[s] = 0;
    }
    uint32_t r = 0, f = 0, b = 0, n = 0;
    uint32_t kx = 0, tap = 0, off = 0, wf = 0;  // packed: kernel column, its tap in the word, first lane, word
    uint32_t krow = 0;                          // stacked: the kernel row's place in its word
load_weights:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=32768
        const uint64_t beat_bits = probe::load<probe::WEIGHTS>(weight_mem, beat + n);
        ++n;
    unpack:
        for (uint32_t k = 0; k < 8; ++k) {
#pragma HLS UNROLL
            word.v[b * 8 + k] = static_cast<int8_t>(static_cast<uint8_t>(beat_bits >> (8 * k)));
        }
        if (b + 1 == BEATS) {
            b = 0;
            if (!packed) {
                w_buf[r][base + f] = word;
            } else {
            merge_lanes:
                for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
                    if (s >= off && s < off + in_c) merged.v[s] = word.v[(s - off) % Cfg::SIMD];
                }
                const bool row_end = kx + 1 == kernel;
                const bool word_end = row_end ? (krow + 1 == stack || f + 1 == ft) : tap + 1 == taps;
                if (word_end) {  // the word is full (or its kernel rows end): write it
                    w_buf[r][base + wf] = merged;
                clear_lanes:
                    for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
                        merged.v[s] = 0;
                    }
                    tap = 0;
                    off = 0;
                    krow = 0;
                    ++wf;
                } else if (row_end) {  // stacked: the next kernel row continues the word
                    tap = 0;
                    off += in_c;
                    ++krow;
                } else {
                    ++tap;
                    off += in_c;
                }
                kx = row_end ? 0u : kx + 1;
            }
            if (f + 1 == ft) {
                f = 0;
                wf = 0;
                if (r + 1 == rows) break;
                ++r;
            } else {
                ++f;
            }
        } else {
            ++b;
        }
    }
    return uint64_t(n) + Cfg::Latency::WEIGHTS;
}

// Output buffer -> DDR, pixel-major with each pixel's channels padded with zeros to whole 64-bit beats (the
// layout load_input reads), after the layer's range restriction (FLAG_CLIP: arith::clip_range on each value, the
// last step before the next layer reads it, after the corrector): beat j of position pos holds channels 8j .. 8j+7, which sit in the output buffer's
// banks (8j % OUT_BANKS) .. +7 at word (8j / OUT_BANKS) * hw + pos (types.hpp): one word of 8 banks chosen by a
// counted group, so the gather is a compile-time bank per byte with a run-time enable. One beat per cycle.
// A map-batched chunk stores image i's map from word `word0` = i * img_out of every bank.
template <class Cfg>
uint64_t store_output(uint64_t* act_mem, uint32_t beat, const LayerGeom& g, const LayerDesc& d,
                      const typename Buffers<Cfg>::Out& out_buf, uint32_t word0 = 0) {
    const uint32_t out_c = d.out_c;
    const bool clip = (d.flags & image::FLAG_CLIP) != 0, zero = (d.flags & image::FLAG_CLIP_ZERO) != 0;
    const int8_t bound = static_cast<int8_t>(d.clip_bound);
    constexpr uint32_t GROUPS = Cfg::OUT_BANKS / 8;  // beats of channels sharing one output-buffer row
    uint32_t pos = word0, j = 0, group = 0, row = 0, chan = 0;
    uint32_t addr = beat, pixel_addr = beat;  // DDR beat; first beat of the position's record
store_output:
    for (uint32_t i = 0; i < g.out_beats; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=8192
        uint64_t bits = 0;
    gather:
        for (uint32_t b = 0; b < Cfg::OUT_BANKS; ++b) {
#pragma HLS UNROLL
            const uint32_t k = b % 8;
            if (b / 8 == group && chan + k < out_c) {
                const int8_t v = out_buf[b][row + pos];
                const int8_t out = clip ? arith::clip_range(v, bound, zero) : v;  // the layer's range restriction
                bits |= uint64_t(static_cast<uint8_t>(out)) << (8 * k);
            }
        }
        probe::store<probe::ACT>(act_mem, addr, bits);
        if (j + 1 == g.out_pixel_beats) {  // next position (batched: the next image's record), channel 0
            j = 0;
            chan = 0;
            group = 0;
            row = 0;
            ++pos;
            pixel_addr += g.out_pixel_stride;
            addr = pixel_addr;
        } else {
            ++addr;
            ++j;
            chan += 8;
            if (group + 1 == GROUPS) {
                group = 0;
                row += g.hw_out;
            } else {
                ++group;
            }
        }
    }
    return uint64_t(g.out_beats) + Cfg::Latency::STORE;
}

// int32 classifier outputs -> DDR through the 32-bit control master: class c of position (image) pos is
// classifier-buffer bank c % OUT_BANKS, word pos * raw_rows + c / OUT_BANKS (conv.hpp); a batched layer writes
// each image's classes into its own region (OUT_STRIDE / 4 words apart).
template <class Cfg>
uint64_t store_raw(uint32_t* ctrl_mem, uint32_t word, uint32_t out_c, uint32_t positions, uint32_t stride_words,
                   uint32_t raw_rows, const typename Buffers<Cfg>::Raw& raw_buf) {
    uint32_t c = 0, bank = 0, row = 0, pos = 0, pos_row = 0, addr = word, pos_addr = word, n = 0;
store_raw:
    for (;;) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=1024
        probe::store<probe::CTRL>(ctrl_mem, addr, static_cast<uint32_t>(raw_buf[bank][pos_row + row]));
        ++n;
        if (c + 1 < out_c) {
            ++c;
            ++addr;
            if (bank + 1 == Cfg::OUT_BANKS) {
                bank = 0;
                ++row;
            } else {
                ++bank;
            }
            continue;
        }
        if (pos + 1 == positions) break;
        ++pos;
        c = 0;
        bank = 0;
        row = 0;
        pos_row += raw_rows;
        pos_addr += stride_words;
        addr = pos_addr;
    }
    return uint64_t(n) + Cfg::Latency::STORE;
}

}  // namespace resilq
