// Every access of the three m_axi ports goes through load/store here. In C simulation they record the
// highest element index each port reads and writes, so the testbench and the tests can check it against
// the port's declared co-simulation depth (the depth= of accel_top.cpp's INTERFACE pragmas) and against
// the buffer the testbench gives the port: an access beyond the depth makes C/RTL co-simulation fail or
// crash ("Read request address ... exceed AXI master ... array depth", or SIGSEGV with "insufficient depth
// of array argument" -- the tool messages quoted in Xilinx/BNN-PYNQ#61 and dhm2013724/yolov2_xilinx_fpga#16).
// In synthesis they are the plain access: __SYNTHESIS__ is defined only while Vitis HLS synthesizes
// (UG1399 "System Calls": "Vitis HLS defines the macro __SYNTHESIS__ when synthesis is performed").
#pragma once
#include <cstdint>

namespace resilq {
namespace probe {

enum Port : uint32_t { CTRL = 0, WEIGHTS = 1, ACT = 2 };
constexpr uint32_t PORTS = 3;

// One past the highest element index read / written in the current run (0: none).
struct Extent {
    uint64_t reads;
    uint64_t writes;
};

#ifndef __SYNTHESIS__
inline Extent* extents() {
    static Extent table[3] = {{0, 0}, {0, 0}, {0, 0}};
    return table;
}

inline void reset() {
    extents()[CTRL] = Extent{0, 0};
    extents()[WEIGHTS] = Extent{0, 0};
    extents()[ACT] = Extent{0, 0};
}
#endif

template <Port P, class T>
inline T load(const T* mem, uint32_t index) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    if (uint64_t(index) + 1 > extents()[P].reads) extents()[P].reads = uint64_t(index) + 1;
#endif
    const T value = mem[index];
    return value;
}

template <Port P, class T>
inline void store(T* mem, uint32_t index, T value) {
#pragma HLS INLINE
#ifndef __SYNTHESIS__
    if (uint64_t(index) + 1 > extents()[P].writes) extents()[P].writes = uint64_t(index) + 1;
#endif
    mem[index] = value;
}

}  // namespace probe
}  // namespace resilq
