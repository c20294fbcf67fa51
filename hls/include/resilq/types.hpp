// Buffer shapes and small value types shared by the accelerator's kernels, templated on the build
// configuration `Cfg` (a generated resilq::AccelConfig: PE, SIMD, capacities, latencies).
#pragma once
#include <cstdint>

namespace resilq {

// SIMD int8 lanes stored as one wide word (aggregated into a single BRAM word by HLS).
template <unsigned N>
struct Pack {
    int8_t v[N];
};

// The on-chip buffers, by role (paper Fig. 1): inputs, weights, outputs, plus the shadow slots of the
// protected neurons, the int32 classifier outputs and the per-lane marks of protected positions.
template <class Cfg>
struct Buffers {
    typedef int8_t In[Cfg::SIMD][Cfg::MAX_IN / Cfg::SIMD];                   // bank = channel % SIMD
    typedef Pack<Cfg::SIMD> Weights[Cfg::PE][Cfg::MAX_FANIN / Cfg::SIMD];   // bank = PE lane (one of two: ping-pong)
    typedef int32_t Bias[Cfg::PE][(Cfg::MAX_CHANNELS + Cfg::PE - 1) / Cfg::PE];              // bank = channel % PE, word = tile
    typedef uint8_t Shift[Cfg::PE][(Cfg::MAX_CHANNELS + Cfg::PE - 1) / Cfg::PE];             // bank = channel % PE, word = tile
    typedef int8_t Out[Cfg::OUT_BANKS][Cfg::MAX_OUT / Cfg::OUT_BANKS];      // bank = channel % OUT_BANKS
    typedef int32_t Raw[Cfg::OUT_BANKS][Cfg::MAX_RAW / Cfg::OUT_BANKS];     // bank = class % OUT_BANKS
    typedef int8_t Shadow[Cfg::PE][Cfg::SHADOW_LANE];                       // bank = channel % PE
    typedef bool Marks[Cfg::PE][Cfg::MAX_POS];                              // bank = PE lane
};

// A decoded layer descriptor (resilq/hls/imageformat.py documents every word).
struct LayerDesc {
    uint32_t op, flags, scheme, ir_layer;
    uint32_t in_c, in_h, in_w, out_c, out_h, out_w;
    uint32_t kernel, stride, pad;
    uint32_t clip_bound;  // with FLAG_CLIP: outputs above it are restricted (to it, or to 0 with FLAG_CLIP_ZERO)
    uint32_t in_addr, in_stride, out_addr, out_stride, w_addr;
    uint32_t crit_start, crit_count;
};

// Sizes derived from a descriptor, computed once per layer by plan_descriptor (descriptor.hpp), so the
// pipelined loops only add (no run-time multiplier, resilq/ops.hpp).
struct LayerGeom {
    uint32_t cg;          // SIMD groups of input channels: ceil(in_c / SIMD)
    uint32_t ft;          // SIMD words per weight row in DDR: kernel * kernel * cg
    uint32_t mac_words;   // SIMD words per output position and pass: ft, or ceil(kernel / stack) * row_words when packed
    uint32_t packed;      // 1: a conv with 2 * in_c <= SIMD packs `taps` kernel columns (kx, c) into the SIMD lanes
    uint32_t taps;        // packed: kernel columns per SIMD word, min(kernel, floor(SIMD / in_c))
    uint32_t row_words;   // packed: SIMD words per kernel row, ceil(kernel / taps)
    uint32_t tap_elems;   // packed: input elements one word covers, taps * in_c
    uint32_t stack;       // kernel rows per SIMD word: 1, or (a whole kernel row in a word, taps == kernel, and
                          // 2 * tap_elems <= SIMD) min(kernel, floor(SIMD / tap_elems)): row stacking
    uint32_t hw_in;       // input positions
    uint32_t hw_out;      // output positions
    uint32_t n_in;        // input values: in_c * hw_in
    uint32_t n_out;       // neurons (= original slots) of the layer
    uint32_t tiles;       // PE tiles of output channels
    uint32_t copies;      // slots per protected neuron (1 unprotected)
    // The input buffer holds element e = pixel * pitch + c in bank e % SIMD, word e / SIMD; every size below
    // is in elements. pitch = cg * SIMD (each pixel's channels padded to whole SIMD words), or in_c when packed
    // (pixels dense, so the kernel row (kx, c) of one window row is in_c * kernel consecutive elements).
    uint32_t pitch;
    uint32_t row_elems;   // elements of one input row's pixels: in_w * pitch
    uint32_t row_gap;     // unused elements after each row: 0, or (stacked) (tap_elems - row_elems) mod SIMD, so that
                          // line = tap_elems (mod SIMD) and the `stack` rows of a word sit in disjoint banks
    uint32_t line;        // elements from one input row to the next: row_elems + row_gap
    uint32_t word_line;   // elements from one word's first kernel row to the next word's: stack * line
    uint32_t step_x;      // elements between horizontally adjacent windows: stride * pitch
    uint32_t step_y;      // elements between vertically adjacent windows: stride * line
    uint32_t pad_offset;  // pad * (line + pitch): how far the padded window (0, 0) starts before element 0
    // DDR side (64-bit beats, FORMAT 2): maps are pixel-major, each pixel's channels padded to whole beats, or
    // dense (the network input of a packed conv or a vector layer, FLAG_DENSE_IN: bytes pixel * in_c + c).
    uint32_t in_dense;         // 1: the input is one dense run of n_in bytes
    uint32_t in_pixel_beats;   // beats per input pixel when padded: ceil(in_c / 8)
    uint32_t in_beats;         // beats of the input map: ceil(n_in / 8) dense, hw_in * in_pixel_beats padded
    uint32_t in_trips;         // iterations of the input load: in_beats, plus (dense and stacked) one per row that
                               // starts inside a beat (that beat is read once for each of its two rows)
    uint32_t out_pixel_beats;  // beats per output position: ceil(out_c / 8)
    uint32_t out_beats;        // beats of the output map: hw_out * out_pixel_beats
    uint32_t in_pixel_stride;  // beats from one input pixel record to the next (in_pixel_beats; batched: IN_STRIDE/8)
    uint32_t out_pixel_stride; // beats from one output position record to the next (out_pixel_beats; batched: OUT_STRIDE/8)
    uint32_t raw_rows;         // classifier-buffer words per position: ceil(out_c / OUT_BANKS)
    // Batched (FLAG_BATCH, engine.hpp): a vector layer over a chunk of images runs as a 1 x chunk map whose
    // positions are the images, so one weight load serves them all. Slots keep the IR's numbering per image.
    uint32_t batched;     // 1: positions are images
    uint32_t slot_hw;     // slot positions per channel: hw_out, or 1 when batched
    uint32_t slot_n_out;  // original slots of the IR layer (the first shadow slot): n_out, or out_c when batched
    // Map-batched (FLAG_BATCH on a conv over a map, engine.hpp): a chunk of images shares each tile's weight load;
    // image i's input map sits at element i * img_in of the input buffer, its output map at row i * img_out of the
    // output buffer, and each image keeps its own positions, slots and DDR regions.
    uint32_t map_batch;   // 1: a conv over a map that takes its images a chunk at a time
    uint32_t img_in;      // input-buffer elements per image: hw_in * cg * SIMD
    uint32_t img_out;     // output-buffer words per bank and image: hw_out * ceil(out_c / OUT_BANKS)
};

// Where a layer's parameters sit on chip. Loaded every run: everything at 0 (tile t's rows at word 0 of w_ping for
// even t, w_pong for odd t). Kept (a nonzero WEIGHTS_TAG, engine.hpp): every layer has its own words, so the whole
// network's rows stay on chip from run to run -- tile t of the layer at word ping + (t / 2) * mac_words of w_ping
// (even t) or pong + (t / 2) * mac_words of w_pong (odd t), its bias/shift at words tile + t of their buffers.
struct WeightPlace {
    uint32_t ping;  // first word of the layer's even tiles in w_ping
    uint32_t pong;  // first word of the layer's odd tiles in w_pong
    uint32_t tile;  // the layer's first word of the bias and shift buffers
    bool kept;      // the layer has words of its own (else everything at 0)
};

// Where one tile of PE output channels goes (counted tile by tile by the controller, engine.hpp).
// Channel c0 + p of the tile lives in output-buffer bank group * PE + p, row row_base / hw_out:
// OUT_BANKS / PE consecutive tiles share a row, each in its own group of PE banks.
struct Tile {
    uint32_t index;      // tile number: the bias/shift word of its lanes
    uint32_t c0;         // first output channel
    uint32_t rows;       // channels in the tile (<= PE)
    uint32_t group;      // tile % (OUT_BANKS / PE)
    uint32_t row_base;   // (tile / (OUT_BANKS / PE)) * hw_out: output-buffer word of position 0
    uint32_t raw_row;    // tile / (OUT_BANKS / PE): classifier-buffer word
    uint32_t slot_base;  // c0 * hw_out: slot number of the tile's first neuron
};

// The fault-injection registers as seen by one layer of one inference.
struct FaultSite {
    bool active;       // enabled, armed for this inference (a batched call: its first image), the faulty layer
    bool active_rest;  // the same for the call's other images (batched: positions 1..); = active otherwise
    bool lane_mode;    // FI_CTRL.KIND 1: every value PE lane `lane` writes (else the one slot `slot`)
    uint32_t lane;
    uint32_t slot;
    uint8_t mask;
    uint32_t mode;
};

// Per-run counters and sticky run-time errors.
struct RunCounters {
    uint32_t corrections;
    uint32_t fi_hits;
    uint32_t error;  // resilq::image STATUS code of a run-time error (0 = none)
};

}  // namespace resilq
