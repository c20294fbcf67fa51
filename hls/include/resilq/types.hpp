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
    typedef Pack<Cfg::SIMD> Weights[Cfg::PE][Cfg::MAX_FANIN / Cfg::SIMD];   // bank = PE lane
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
    uint32_t in_addr, in_stride, out_addr, out_stride, w_addr;
    uint32_t crit_start, crit_count;
};

// Sizes derived from a descriptor, computed once per layer.
struct LayerGeom {
    uint32_t cg;      // SIMD groups of input channels: ceil(in_c / SIMD)
    uint32_t ft;      // SIMD words per weight row: kernel * kernel * cg
    uint32_t hw_in;   // input positions
    uint32_t hw_out;  // output positions
    uint32_t n_out;   // neurons (= original slots) of the layer
    uint32_t tiles;   // PE tiles of output channels
    uint32_t copies;  // slots per protected neuron (1 unprotected)
};

// The fault-injection registers as seen by one layer of one inference.
struct FaultSite {
    bool active;   // enabled, armed for this inference, and this is the faulty layer
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
