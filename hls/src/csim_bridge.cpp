// C-simulation bridge: the accelerator's AXI-Lite register file and its DDR, around the real top
// function, behind a C ABI that Python drives through ctypes with integers only.
//
// The host sees exactly what a board exposes: 32-bit register reads and writes at the offsets of
// resilq/regmap.hpp (pointer registers hold DDR addresses), a block of "DDR" at a physical base
// address, ap_ctrl_hs semantics (writing AP_START runs the kernel; AP_DONE and every output's ap_vld
// are clear-on-read). One device per process, like one IP instance: the kernel's buffers and its
// one-shot fault register are static, as on the chip; resilq_csim_reset() is the power-on reset.
// Not synthesized.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "accel_config.hpp"
#include "resilq/accel.hpp"
#include "resilq/imageformat.hpp"
#include "resilq/probe.hpp"
#include "resilq/regmap.hpp"

namespace {

namespace rm = resilq::regmap;

struct Device {
    uint32_t regs[rm::ADDRESS_SPACE / 4];
    uint8_t* host = nullptr;  // host memory standing in for DDR
    uint64_t phys = 0;        // its physical base address as the pointer registers see it
    uint64_t size = 0;
    bool done = false;
    uint32_t isr = 0;
    char error[256] = {0};
};

Device dev;

uint64_t pointer_reg(uint32_t offset) {
    return uint64_t(dev.regs[offset / 4]) | (uint64_t(dev.regs[offset / 4 + 1]) << 32);
}

// Translate a DDR address to host memory; null (and an error message) if it is outside the block.
uint8_t* translate(const char* name, uint64_t address, uint64_t align) {
    if (dev.host == nullptr) {
        std::snprintf(dev.error, sizeof dev.error, "no memory attached (resilq_csim_attach)");
        return nullptr;
    }
    if (address < dev.phys || address >= dev.phys + dev.size || (address % align) != 0) {
        std::snprintf(dev.error, sizeof dev.error,
                      "%s = 0x%llx is not a %llu-byte aligned address inside the attached memory 0x%llx..0x%llx",
                      name, (unsigned long long)address, (unsigned long long)align, (unsigned long long)dev.phys,
                      (unsigned long long)(dev.phys + dev.size));
        return nullptr;
    }
    return dev.host + (address - dev.phys);
}

bool is_output(uint32_t offset) {
    return offset == rm::VERSION || offset == rm::HW_CONFIG || offset == rm::CONFIG_ID || offset == rm::STATUS ||
           offset == rm::MODEL_CYCLES_LO || offset == rm::MODEL_CYCLES_HI || offset == rm::CORRECTIONS || offset == rm::FI_HITS;
}

bool is_valid_word(uint32_t offset) {
    return offset == rm::VERSION_VLD || offset == rm::HW_CONFIG_VLD || offset == rm::CONFIG_ID_VLD ||
           offset == rm::STATUS_VLD || offset == rm::MODEL_CYCLES_LO_VLD || offset == rm::MODEL_CYCLES_HI_VLD ||
           offset == rm::CORRECTIONS_VLD || offset == rm::FI_HITS_VLD;
}

void start() {
    dev.error[0] = '\0';
    uint8_t *ctrl = nullptr, *weights = nullptr, *act = nullptr;
    if (dev.regs[rm::N_IMAGES / 4] != 0) {  // a probe run (0 images) touches no memory
        ctrl = translate("CTRL_MEM", pointer_reg(rm::CTRL_MEM), 4);
        weights = ctrl ? translate("WEIGHT_MEM", pointer_reg(rm::WEIGHT_MEM), 8) : nullptr;
        act = weights ? translate("ACT_MEM", pointer_reg(rm::ACT_MEM), 8) : nullptr;
        if (act == nullptr) return;  // a bus error on the board: the kernel never finishes
        // The host's memory is not the board's: refuse an image that claims more bytes than are attached
        // (the kernel would read past the block), instead of crashing the Python process.
        const uint32_t* hdr = reinterpret_cast<const uint32_t*>(ctrl);
        const uint64_t room = dev.phys + dev.size - pointer_reg(rm::CTRL_MEM);
        if (room >= 4 * resilq::image::HEADER_WORDS && hdr[resilq::image::HDR_MAGIC] == resilq::image::MAGIC &&
            hdr[resilq::image::HDR_IMAGE_BYTES] > room) {
            std::snprintf(dev.error, sizeof dev.error, "the memory image claims %u bytes, only %llu are attached",
                          hdr[resilq::image::HDR_IMAGE_BYTES], (unsigned long long)room);
            return;
        }
    }
    uint32_t out[8];
    resilq::probe::reset();
    resilq_accel(reinterpret_cast<uint32_t*>(ctrl), reinterpret_cast<const uint64_t*>(weights),
                 reinterpret_cast<uint64_t*>(act), dev.regs[rm::N_IMAGES / 4], dev.regs[rm::FI_CTRL / 4],
                 dev.regs[rm::FI_LAYER / 4], dev.regs[rm::FI_SLOT / 4], dev.regs[rm::FI_MASK / 4],
                 dev.regs[rm::FI_MODE / 4], dev.regs[rm::FI_LIST / 4], dev.regs[rm::FI_COUNT / 4],
                 &dev.regs[rm::CRIT_TABLE / 4], &out[0], &out[1], &out[2], &out[3],
                 &out[4], &out[5], &out[6], &out[7]);
    const uint32_t offsets[8] = {rm::VERSION, rm::HW_CONFIG, rm::CONFIG_ID, rm::STATUS,
                                 rm::MODEL_CYCLES_LO, rm::MODEL_CYCLES_HI, rm::CORRECTIONS, rm::FI_HITS};
    for (int i = 0; i < 8; ++i) {
        dev.regs[offsets[i] / 4] = out[i];
        dev.regs[offsets[i] / 4 + 1] = 1u;  // ap_vld
    }
    dev.done = true;
    if ((dev.regs[rm::IER / 4] & 1u) != 0) dev.isr |= 1u;
}

}  // namespace

extern "C" {

// Attach `size` bytes of host memory as DDR at physical address `phys` (the address the host writes
// into the pointer registers). Returns 0, or -1 if the block is unusable.
int resilq_csim_attach(uint8_t* host, uint64_t phys, uint64_t size) {
    if (host == nullptr || size == 0 || (phys % 64) != 0) return -1;
    dev.host = host;
    dev.phys = phys;
    dev.size = size;
    return 0;
}

// Power-on reset: every register 0, no memory attached, the one-shot fault state cleared.
void resilq_csim_reset(void) {
    std::memset(dev.regs, 0, sizeof dev.regs);
    dev.host = nullptr;
    dev.phys = dev.size = 0;
    dev.done = false;
    dev.isr = 0;
    dev.error[0] = '\0';
    resilq::state::fi_last_token = resilq::state::NO_TOKEN;
    resilq::state::kept_tag = 0;
}

void resilq_csim_write(uint32_t offset, uint32_t value) {
    if (offset % 4 != 0 || offset >= rm::ADDRESS_SPACE) return;
    if (offset == rm::AP_CTRL) {
        if (value & rm::AP_CTRL_AP_START_MASK) start();
        dev.regs[0] = value & rm::AP_CTRL_AUTO_RESTART_MASK;
        return;
    }
    if (offset == rm::ISR) {
        dev.isr ^= value;  // toggle on write
        return;
    }
    if (is_output(offset) || is_valid_word(offset)) return;  // read-only
    dev.regs[offset / 4] = value;
}

uint32_t resilq_csim_read(uint32_t offset) {
    if (offset % 4 != 0 || offset >= rm::ADDRESS_SPACE) return 0;
    if (offset == rm::AP_CTRL) {
        uint32_t v = rm::AP_CTRL_AP_IDLE_MASK | rm::AP_CTRL_AP_READY_MASK | (dev.regs[0] & rm::AP_CTRL_AUTO_RESTART_MASK);
        if (dev.done) v |= rm::AP_CTRL_AP_DONE_MASK;
        dev.done = false;  // clear on read
        return v;
    }
    if (offset == rm::ISR) return dev.isr;
    const uint32_t v = dev.regs[offset / 4];
    if (is_valid_word(offset)) dev.regs[offset / 4] = 0;  // clear on read
    return v;
}

// The highest element index + 1 that m_axi port `port` (resilq::probe::Port) read and wrote during the last
// run (0 when untouched); returns -1 for an unknown port.
int resilq_csim_extent(uint32_t port, uint64_t* reads, uint64_t* writes) {
    if (port >= resilq::probe::PORTS || reads == nullptr || writes == nullptr) return -1;
    *reads = resilq::probe::extents()[port].reads;
    *writes = resilq::probe::extents()[port].writes;
    return 0;
}

// The reason the last AP_START did not run the kernel ("" if it ran).
const char* resilq_csim_error(void) { return dev.error; }

// The configuration this library was built for, to check the Python side loaded the right one.
uint32_t resilq_csim_config_id(void) { return resilq::AccelConfig::CONFIG_ID; }

}  // extern "C"
