// The accelerator's top function: its arguments are the AXI-Lite registers (resilq/regmap.hpp) and
// the three AXI masters into the DDR memory image (resilq/imageformat.hpp).
#pragma once
#include <cstdint>

#include "resilq/regmap.hpp"

void resilq_accel(uint32_t* ctrl_mem, const uint64_t* weight_mem, uint64_t* act_mem, uint32_t n_images,
                  uint32_t fi_ctrl, uint32_t fi_layer, uint32_t fi_slot, uint32_t fi_mask, uint32_t fi_mode,
                  uint32_t fi_list, uint32_t fi_count, const uint32_t crit_table[resilq::regmap::CRIT_TABLE_CAPACITY],
                  uint32_t* version, uint32_t* hw_config, uint32_t* config_id, uint32_t* status,
                  uint32_t* model_cycles_lo, uint32_t* model_cycles_hi, uint32_t* corrections, uint32_t* fi_hits);

namespace resilq {
namespace state {
// Kernel registers that survive between runs (cleared by reset): the token of the last one-shot
// fault that fired. NO_TOKEN is outside the 8-bit TOKEN field, so the first armed token always fires.
constexpr uint32_t NO_TOKEN = 0x100u;
extern uint32_t fi_last_token;
extern uint32_t kept_tag;  // WEIGHTS_TAG whose weights are on chip (0: none)
}  // namespace state
}  // namespace resilq
