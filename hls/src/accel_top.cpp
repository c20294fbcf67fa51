// resilq accelerator top level: AXI-Lite control (ap_ctrl_hs) and registers, three AXI masters into the
// DDR memory image, the on-chip buffers, and the controller loop over images and layer descriptors.
//
// Build configuration: accel_config.hpp (generated per build by resilq.hls.project from AccelConfig).
// Every s_axilite offset below is checked against resilq/hls/regmap.py by tests/test_hls_regmap.py.
#include "accel_config.hpp"
#include "resilq/accel.hpp"
#include "resilq/engine.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/probe.hpp"
#include "resilq/regmap.hpp"
#include "resilq/upsets.hpp"

namespace resilq {
namespace state {
uint32_t fi_last_token = NO_TOKEN;
uint32_t kept_tag = 0;  // WEIGHTS_TAG of the last run that completed with kept weights (0: none on chip)
}  // namespace state
}  // namespace resilq

using Cfg = resilq::AccelConfig;
namespace image = resilq::image;
namespace probe = resilq::probe;
namespace regmap = resilq::regmap;

// C/RTL co-simulation depth of each m_axi port, in elements of the port's type: the adapter Vitis HLS builds
// for co-simulation holds this many elements per port (UG1399 "pragma HLS interface", depth), and the
// testbench gives each port its own buffer of at least that size. Generated per build from the golden
// vectors the testbench runs (resilq.hls.vectors.cosim_depths); depth does not change the synthesized IP.
// UG1399 "Using Constants with Pragmas": a constexpr may stand for a pragma value.
constexpr unsigned CTRL_MEM_DEPTH = Cfg::CosimDepth::CTRL;
constexpr unsigned WEIGHT_MEM_DEPTH = Cfg::CosimDepth::WEIGHTS;
constexpr unsigned ACT_MEM_DEPTH = Cfg::CosimDepth::ACT;

void resilq_accel(uint32_t* ctrl_mem, const uint64_t* weight_mem, uint64_t* act_mem, uint32_t n_images,
                  uint32_t fi_ctrl, uint32_t fi_layer, uint32_t fi_slot, uint32_t fi_mask, uint32_t fi_mode,
                  uint32_t fi_list, uint32_t fi_count, const uint32_t crit_table[resilq::regmap::CRIT_TABLE_CAPACITY],
                  uint32_t* version, uint32_t* hw_config, uint32_t* config_id, uint32_t* status,
                  uint32_t* model_cycles_lo, uint32_t* model_cycles_hi, uint32_t* corrections, uint32_t* fi_hits) {
#pragma HLS INTERFACE mode=s_axilite port=return bundle=control
#pragma HLS INTERFACE mode=ap_ctrl_hs port=return bundle=control
#pragma HLS INTERFACE mode=m_axi port=ctrl_mem bundle=gmem_ctrl offset=slave depth=CTRL_MEM_DEPTH max_read_burst_length=16
#pragma HLS INTERFACE mode=m_axi port=weight_mem bundle=gmem_w offset=slave depth=WEIGHT_MEM_DEPTH max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=act_mem bundle=gmem_a offset=slave depth=ACT_MEM_DEPTH max_read_burst_length=64 max_write_burst_length=64
#pragma HLS INTERFACE mode=s_axilite port=ctrl_mem bundle=control offset=0x10
#pragma HLS INTERFACE mode=s_axilite port=weight_mem bundle=control offset=0x1C
#pragma HLS INTERFACE mode=s_axilite port=act_mem bundle=control offset=0x28
#pragma HLS INTERFACE mode=s_axilite port=n_images bundle=control offset=0x40
#pragma HLS INTERFACE mode=s_axilite port=fi_ctrl bundle=control offset=0x48
#pragma HLS INTERFACE mode=s_axilite port=fi_layer bundle=control offset=0x50
#pragma HLS INTERFACE mode=s_axilite port=fi_slot bundle=control offset=0x58
#pragma HLS INTERFACE mode=s_axilite port=fi_mask bundle=control offset=0x60
#pragma HLS INTERFACE mode=s_axilite port=fi_mode bundle=control offset=0x68
#pragma HLS INTERFACE mode=s_axilite port=version bundle=control offset=0x70
#pragma HLS INTERFACE mode=s_axilite port=hw_config bundle=control offset=0x78
#pragma HLS INTERFACE mode=s_axilite port=config_id bundle=control offset=0x80
#pragma HLS INTERFACE mode=s_axilite port=status bundle=control offset=0x88
#pragma HLS INTERFACE mode=s_axilite port=model_cycles_lo bundle=control offset=0x90
#pragma HLS INTERFACE mode=s_axilite port=model_cycles_hi bundle=control offset=0x98
#pragma HLS INTERFACE mode=s_axilite port=corrections bundle=control offset=0xA0
#pragma HLS INTERFACE mode=s_axilite port=fi_hits bundle=control offset=0xA8
#pragma HLS INTERFACE mode=s_axilite port=fi_list bundle=control offset=0xB0
#pragma HLS INTERFACE mode=s_axilite port=fi_count bundle=control offset=0xB8
#pragma HLS INTERFACE mode=s_axilite port=crit_table bundle=control offset=0x8000

    // On-chip buffers (paper Fig. 1): banks partitioned so every lane has its own port each cycle.
    static resilq::Buffers<Cfg>::In in_buf;
    static resilq::Buffers<Cfg>::Weights w_ping, w_pong;  // tile t computes on one while tile t+1 loads the other
    static resilq::Buffers<Cfg>::Bias bias_buf;
    static resilq::Buffers<Cfg>::Shift shift_buf;
    static resilq::Buffers<Cfg>::Out out_buf;
    static resilq::Buffers<Cfg>::Raw raw_buf;
    static resilq::Buffers<Cfg>::Shadow sh_buf;
    static resilq::Buffers<Cfg>::Marks marks;
    static uint64_t profile[Cfg::MAX_LAYERS];
    // One layer's output upsets (FI_CTRL.UPSETS, upsets.hpp): 1024 x 64 bits, two BRAM36 (resilq.hls.resources)
    static resilq::UpsetBuffer upset_buf;
#pragma HLS ARRAY_PARTITION variable=in_buf dim=1 complete
#pragma HLS ARRAY_PARTITION variable=w_ping dim=1 complete
#pragma HLS AGGREGATE variable=w_ping
#pragma HLS ARRAY_PARTITION variable=w_pong dim=1 complete
#pragma HLS AGGREGATE variable=w_pong
#pragma HLS ARRAY_PARTITION variable=bias_buf dim=1 complete
#pragma HLS ARRAY_PARTITION variable=shift_buf dim=1 complete
#pragma HLS ARRAY_PARTITION variable=out_buf dim=1 complete
#pragma HLS ARRAY_PARTITION variable=raw_buf dim=1 complete
#pragma HLS ARRAY_PARTITION variable=sh_buf dim=1 complete
#pragma HLS ARRAY_PARTITION variable=marks dim=1 complete
    // A few kbit per bank: distributed RAM instead of one BRAM18 per PE lane each (UG1399 "pragma HLS
    // bind_storage": ram_s2p = one read and one write port; resilq.hls.resources.buffers pins the same four)
#pragma HLS BIND_STORAGE variable=bias_buf type=ram_s2p impl=lutram
#pragma HLS BIND_STORAGE variable=shift_buf type=ram_s2p impl=lutram
#pragma HLS BIND_STORAGE variable=raw_buf type=ram_s2p impl=lutram
#pragma HLS BIND_STORAGE variable=marks type=ram_s2p impl=lutram
    // A shadow bank takes TMR's two copies in one cycle where the shadow lanes computed them, and the corrector
    // reads both in one cycle: a true dual-port BRAM (UG1399 "pragma HLS bind_storage": ram_t2p, both ports
    // read and write)
#pragma HLS BIND_STORAGE variable=sh_buf type=ram_t2p impl=bram
    // plan_descriptor runs for a descriptor and for each chunk of a batched one, never at the same time: one
    // instance (UG1399 "pragma HLS allocation": limits the instances of a function), so its index multipliers
    // are counted once (resilq.hls.resources.INDEX_MULTIPLIERS)
#pragma HLS ALLOCATION function instances=resilq::plan_descriptor<Cfg> limit=1

    *version = regmap::MAP_VERSION;
    *hw_config = Cfg::HW_CONFIG;
    *config_id = Cfg::CONFIG_ID;
    resilq::RunCounters ctr = {0u, 0u, 0u};
    uint32_t code = image::STATUS_OK, bad_layer = 0;
    uint64_t cycles = 0;

    if (n_images > 0) {
        uint32_t hdr[image::HEADER_WORDS];
#pragma HLS ARRAY_PARTITION variable=hdr complete
    read_header:
        for (uint32_t i = 0; i < image::HEADER_WORDS; ++i) {
#pragma HLS PIPELINE II=1
            hdr[i] = probe::load<probe::CTRL>(ctrl_mem, i);
        }
        cycles = image::HEADER_WORDS + Cfg::Latency::RUN;
        const uint32_t n_desc = hdr[image::HDR_N_DESC];
        const uint32_t image_bytes = hdr[image::HDR_IMAGE_BYTES];
        const uint32_t desc_word = hdr[image::HDR_DESC_OFFSET] / 4;
        const uint32_t profile_word = hdr[image::HDR_PROFILE_OFFSET] / 4;
        const bool fi_en = (fi_ctrl & regmap::FI_CTRL_EN_MASK) != 0;
        const bool fi_once = (fi_ctrl & regmap::FI_CTRL_ONCE_MASK) != 0;
        const uint32_t token = (fi_ctrl & regmap::FI_CTRL_TOKEN_MASK) >> regmap::FI_CTRL_TOKEN_LSB;
        if (hdr[image::HDR_MAGIC] != image::MAGIC) code = image::STATUS_BAD_MAGIC;
        else if (hdr[image::HDR_FORMAT] != image::FORMAT_VERSION) code = image::STATUS_BAD_FORMAT;
        else if (hdr[image::HDR_SIMD] != Cfg::SIMD) code = image::STATUS_SIMD_MISMATCH;
        else if (n_desc > Cfg::MAX_LAYERS) code = image::STATUS_CAPACITY;
        else if (n_images > hdr[image::HDR_BATCH]) code = image::STATUS_BATCH_RANGE;
        const bool lane_mode = (fi_ctrl & regmap::FI_CTRL_KIND_MASK) != 0;
        // output upsets (upsets.hpp): KIND 0, one image, a list of 8-byte items inside the image
        const bool upsets = fi_en && (fi_ctrl & regmap::FI_CTRL_UPSETS_MASK) != 0;
        const bool bad_upsets = upsets && (lane_mode || n_images != 1 || (fi_list & 7u) != 0 ||
                                           uint64_t(fi_list) + 8 * uint64_t(fi_count) > image_bytes);
        const bool bad_fault = !upsets && fi_en && ((fi_mask & 0xFFu) == 0 || fi_mode > resilq::arith::STUCK_AT_1);
        if (code == image::STATUS_OK && (bad_upsets || bad_fault)) code = image::STATUS_FAULT_CONFIG;
        const bool all_layers = lane_mode && (fi_ctrl & regmap::FI_CTRL_ALL_LAYERS_MASK) != 0;
        if (code == image::STATUS_OK && fi_en && lane_mode && fi_slot >= Cfg::PE + Cfg::SHADOW_UNITS) code = image::STATUS_FAULT_CONFIG;

        // Layer-major: each descriptor is fetched once per run and runs over every image of the batch before
        // the next one starts (every layer's outputs have a region per image). A FLAG_BATCH layer takes the images
        // MAX_BATCH at a time, so one weight load serves the chunk: a vector layer as the positions of one map, a
        // conv over a map (LayerGeom::map_batch) image after image on each tile's weights. A conv of at most two
        // tiles keeps its parameters in the buffers from one image (or chunk) to the next: only the first loads them.
        // The fault is armed for image 0 (a fresh one-shot TOKEN, or every inference) and for images 1.. only
        // when it hits every inference.
        // Kept weights (a nonzero WEIGHTS_TAG): every conv layer has its own words in the weight, bias and shift
        // buffers (WeightPlace, types.hpp), laid out descriptor after descriptor; when the previous run completed
        // with the same tag, they are all still on chip and this run loads no parameter at all ("warm"). The host
        // writes a new tag whenever it rewrites the image's weights (resilq.hls.packing, resilq.deploy.upsets).
        const uint32_t tag = hdr[image::HDR_WEIGHTS_TAG];
        const bool keep = tag != 0;
        const bool warm = keep && tag == resilq::state::kept_tag;
        constexpr uint32_t W_WORDS = Cfg::MAX_FANIN / Cfg::SIMD, P_WORDS = (Cfg::MAX_CHANNELS + Cfg::PE - 1) / Cfg::PE;
        resilq::WeightPlace place = {0u, 0u, 0u, keep};
        const bool armed_first = fi_en && (!fi_once || token != resilq::state::fi_last_token);
        const bool armed_rest = fi_en && !fi_once;
        if (code == image::STATUS_OK && fi_en && fi_once && armed_first) resilq::state::fi_last_token = token;
        resilq::UpsetRange ups = {upsets && armed_first, fi_list / 8, fi_count, 0u, 0u, 0u, 0u, 0u, 0u};
    layers:  // sequential: one layer descriptor per iteration
        for (uint32_t l = 0; l < n_desc && code == image::STATUS_OK; ++l) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
            resilq::LayerDesc d;
            uint64_t lc = resilq::fetch_descriptor<Cfg>(ctrl_mem, desc_word + l * image::DESC_WORDS, d);
            resilq::LayerGeom g;
            uint32_t bad = resilq::plan_descriptor<Cfg>(d, g);
            if (bad == image::STATUS_OK) bad = resilq::check_extents<Cfg>(d, g, image_bytes, hdr[image::HDR_BATCH]);
            if (bad != image::STATUS_OK) {
                code = bad;
                bad_layer = l;
            }
            // FLAG_POOL_NEXT: the next descriptor, a max-pool, pools this conv's output buffer; the pair runs image
            // by image (conv, then its pool), the pool's cycles going to its own profile word
            const bool pool_next = code == image::STATUS_OK && (d.flags & image::FLAG_POOL_NEXT) != 0;
            resilq::LayerDesc pd = d;
            resilq::LayerGeom pg = g;
            uint64_t pc = 0;
            if (pool_next && l + 1 == n_desc) {
                code = image::STATUS_LAYOUT;
                bad_layer = l;
            } else if (pool_next) {
                pc = resilq::fetch_descriptor<Cfg>(ctrl_mem, desc_word + (l + 1) * image::DESC_WORDS, pd);
                uint32_t bad_pool = resilq::plan_descriptor<Cfg>(pd, pg);
                if (bad_pool == image::STATUS_OK)
                    bad_pool = resilq::check_extents<Cfg>(pd, pg, image_bytes, hdr[image::HDR_BATCH]);
                if (bad_pool != image::STATUS_OK || !resilq::pools_on_chip(d, pd)) {
                    code = bad_pool != image::STATUS_OK ? bad_pool : image::STATUS_LAYOUT;
                    bad_layer = l + 1;
                }
            }
            // this conv's kept words: every layer's even tiles after the previous layers' in w_ping, odd ones in
            // w_pong, its tiles' bias/shift after theirs -- refused (CAPACITY) where they would not fit
            // (mac_words < 2^24 and tiles < 2^17 once plan_descriptor accepted d: one index_product, a DSP48E1)
            const uint64_t even_words = resilq::ops::index_product(g.mac_words, (g.tiles + 1) / 2);
            const uint64_t odd_words = (g.tiles & 1u) ? even_words - g.mac_words : even_words;
            if (code == image::STATUS_OK && keep && d.op == image::OP_CONV &&
                (uint64_t(place.ping) + even_words > W_WORDS || uint64_t(place.pong) + odd_words > W_WORDS ||
                 uint64_t(place.tile) + g.tiles > P_WORDS)) {
                code = image::STATUS_CAPACITY;
                bad_layer = l;
            }
            const bool batched = (d.flags & image::FLAG_BATCH) != 0 && n_images > 1;
            const bool fault_layer = (d.flags & image::FLAG_NEURONS) != 0 && (all_layers || d.ir_layer == fi_layer);
            // image * IN_STRIDE / OUT_STRIDE, advanced chunk by chunk (no multiplier: MAX_BATCH is a power of two)
            uint32_t in_off = 0, out_off = 0, pool_off = 0;
        images:  // sequential: one image (or one chunk of a batched layer) per iteration
            for (uint32_t img = 0; img < n_images && code == image::STATUS_OK;) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1024
                const uint32_t left = n_images - img;
                const uint32_t chunk = !batched ? 1u : (left < Cfg::MAX_BATCH ? left : Cfg::MAX_BATCH);
                resilq::LayerDesc dc = d;
                resilq::LayerGeom gc = g;
                if (chunk > 1 && !g.map_batch) {  // a vector layer: the chunk as a 1 x chunk map
                    const uint32_t bad_chunk = resilq::plan_batch<Cfg>(d, chunk, dc, gc);
                    if (bad_chunk != image::STATUS_OK) {
                        code = bad_chunk;
                        bad_layer = l;
                        break;
                    }
                }
                resilq::FaultSite site;
                site.active = !upsets && fault_layer && (img == 0 ? armed_first : armed_rest);
                site.active_rest = fault_layer && (chunk > 1 ? armed_rest : site.active);
                site.slot = fi_slot;
                site.lane_mode = lane_mode;
                site.lane = fi_slot;
                site.mask = static_cast<uint8_t>(fi_mask & 0xFFu);
                site.mode = fi_mode & regmap::FI_MODE_MODE_MASK;
                // this layer's upset items (one image: upsets need N_IMAGES = 1)
                resilq::UpsetRange u = ups;
                u.active = ups.active && (d.flags & image::FLAG_NEURONS) != 0;
                if (u.active) lc += resilq::load_upsets<Cfg>(act_mem, dc, gc, upset_buf, u, code);
                if (code != image::STATUS_OK) {
                    bad_layer = l;
                    break;
                }
                lc += resilq::run_layer<Cfg>(ctrl_mem, weight_mem, act_mem, crit_table, dc, gc, d.in_addr + in_off,
                                             d.out_addr + out_off, in_buf, w_ping, w_pong, bias_buf, shift_buf, out_buf,
                                             raw_buf, sh_buf, marks, site, ctr, upset_buf, u, g.map_batch ? chunk : 1u,
                                             d.op == image::OP_CONV && (warm || (img > 0 && (keep || g.tiles <= 2))),
                                             place);
                if (ctr.error != image::STATUS_OK) {
                    code = ctr.error;
                    bad_layer = l;
                } else if (u.active && (u.at != u.orig || u.sh != u.count)) {  // an item no slot took
                    code = image::STATUS_UPSETS;
                    bad_layer = l;
                }
                ups.next = u.next;
                if (pool_next && code == image::STATUS_OK) {
                    pc += resilq::run_pool_on_chip<Cfg>(act_mem, d, pd, pg, pd.out_addr + pool_off, out_buf);
                    pool_off += pd.out_stride;
                }
                img += chunk;
                in_off += batched ? (d.in_stride << Cfg::MAX_BATCH_LOG2) : d.in_stride;
                out_off += batched ? (d.out_stride << Cfg::MAX_BATCH_LOG2) : d.out_stride;
            }
            profile[l] = lc;
            cycles += lc + pc;
            if (keep && d.op == image::OP_CONV) {  // the next conv's kept words follow this one's
                place.ping += static_cast<uint32_t>(even_words);
                place.pong += static_cast<uint32_t>(odd_words);
                place.tile += g.tiles;
            }
            if (pool_next && l + 1 < n_desc) {  // the pool's own profile word (none when POOL_NEXT was on the last)
                ++l;
                profile[l] = pc;
            }
        }
        if (code == image::STATUS_OK && ups.active && ups.next != fi_count) {  // items of no neuron layer
            code = image::STATUS_UPSETS;
            bad_layer = n_desc - 1;
        }
        if (code == image::STATUS_OK) {  // the per-layer profile of a complete run
        write_profile:
            for (uint32_t l = 0; l < n_desc; ++l) {
#pragma HLS PIPELINE II=2
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
                probe::store<probe::CTRL>(ctrl_mem, profile_word + 2 * l, static_cast<uint32_t>(profile[l]));
                probe::store<probe::CTRL>(ctrl_mem, profile_word + 2 * l + 1, static_cast<uint32_t>(profile[l] >> 32));
            }
            cycles += uint64_t(image::PROFILE_WORDS) * n_desc + Cfg::Latency::STORE;
        }
        // what is on chip now: this run's weights if it completed with kept weights; after any other run (it loaded
        // over the buffers, or stopped part way) nothing the next run may trust
        resilq::state::kept_tag = (code == image::STATUS_OK) ? tag : 0u;
    }
    *status = code | (bad_layer << 8);
    *model_cycles_lo = static_cast<uint32_t>(cycles);
    *model_cycles_hi = static_cast<uint32_t>(cycles >> 32);
    *corrections = ctr.corrections;
    *fi_hits = ctr.fi_hits;
}
