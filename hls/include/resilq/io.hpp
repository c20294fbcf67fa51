// DDR <-> on-chip transfers of one layer: input map, parameter beats, weight rows, outputs.
// Each returns the modelled cycles it took: its trip count plus the modelled latency of its pipeline.
// Trip counts come from plan_descriptor (descriptor.hpp) or from counters: no run-time multiplier here.
#pragma once
#include <cstdint>

#include "resilq/probe.hpp"
#include "resilq/types.hpp"

namespace resilq {

// C-H-W int8 map from DDR into the input buffer: element (c, pixel) is e = pixel * pitch + c, in bank
// e % SIMD, word e / SIMD (LayerGeom::pitch: channels padded to whole SIMD words per pixel, or dense pixels
// for a packed conv), so the conv engine reads SIMD consecutive elements per cycle. e is counted.
template <class Cfg>
uint64_t load_input(const int8_t* act_mem, uint32_t addr, uint32_t n, uint32_t hw, uint32_t pitch,
                    typename Buffers<Cfg>::In& in_buf) {
    uint32_t c = 0, pix = 0, e = 0;
load_input:
    for (uint32_t i = 0; i < n; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=65536
        in_buf[e % Cfg::SIMD][e / Cfg::SIMD] = probe::load<probe::ACT>(act_mem, addr + i);
        if (pix + 1 == hw) {
            pix = 0;
            ++c;
            e = c;
        } else {
            ++pix;
            e += pitch;
        }
    }
    return uint64_t(n) + Cfg::Latency::LOAD_INPUT;
}

// Bias and shift of all `n` output channels of a layer, once per layer: one 64-bit beat each (int32 bias,
// uint8 shift), channel r into bank r % PE, word r / PE (the tile number), counted.
template <class Cfg>
uint64_t load_params(const uint64_t* weight_mem, uint32_t beat, uint32_t n, typename Buffers<Cfg>::Bias& bias,
                     typename Buffers<Cfg>::Shift& shift) {
    uint32_t lane = 0, word = 0;
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
// of a row is on-chip word f. Packed (LayerGeom::packed, in_c * kernel <= SIMD), the `kernel` DDR words
// (ky, kx = 0..kernel-1) of one kernel row merge into on-chip word ky: lanes kx * in_c .. kx * in_c + in_c - 1
// take DDR word (ky, kx)'s channels 0..in_c-1 (the others are zero), the order of the input buffer's dense
// pixels (load_input), so one on-chip word meets one window row.
template <class Cfg>
uint64_t load_weights(const uint64_t* weight_mem, uint32_t beat, uint32_t rows, uint32_t ft, bool packed,
                      uint32_t kernel, uint32_t in_c, typename Buffers<Cfg>::Weights& w_buf) {
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
    uint32_t kx = 0, off = 0, wf = 0;  // packed: kernel column, its first lane (kx * in_c), on-chip word
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
                w_buf[r][f] = word;
            } else {
            merge_lanes:
                for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
                    if (s >= off && s < off + in_c) merged.v[s] = word.v[(s - off) % Cfg::SIMD];
                }
                if (kx + 1 == kernel) {
                    w_buf[r][wf] = merged;
                clear_lanes:
                    for (uint32_t s = 0; s < Cfg::SIMD; ++s) {
#pragma HLS UNROLL
                        merged.v[s] = 0;
                    }
                    kx = 0;
                    off = 0;
                    ++wf;
                } else {
                    ++kx;
                    off += in_c;
                }
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

// Output buffer -> DDR in C-H-W order (the IR's flat order).
template <class Cfg>
uint64_t store_output(int8_t* act_mem, uint32_t addr, uint32_t n, uint32_t hw,
                      const typename Buffers<Cfg>::Out& out_buf) {
    uint32_t c = 0, pos = 0, row = 0;
store_output:
    for (uint32_t i = 0; i < n; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=65536
        probe::store<probe::ACT>(act_mem, addr + i, out_buf[c % Cfg::OUT_BANKS][row + pos]);
        if (pos + 1 == hw) {
            pos = 0;
            ++c;
            if (c % Cfg::OUT_BANKS == 0) row += hw;
        } else {
            ++pos;
        }
    }
    return uint64_t(n) + Cfg::Latency::STORE;
}

// int32 classifier outputs -> DDR through the 32-bit control master.
template <class Cfg>
uint64_t store_raw(uint32_t* ctrl_mem, uint32_t word, uint32_t n, const typename Buffers<Cfg>::Raw& raw_buf) {
store_raw:
    for (uint32_t i = 0; i < n; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=1024
        probe::store<probe::CTRL>(ctrl_mem, word + i, static_cast<uint32_t>(raw_buf[i % Cfg::OUT_BANKS][i / Cfg::OUT_BANKS]));
    }
    return uint64_t(n) + Cfg::Latency::STORE;
}

}  // namespace resilq
