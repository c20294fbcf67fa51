"""Resource estimate of an accelerator build, checked against a board's budget before any build.

An analytic estimate from the buffer shapes and the PE x SIMD datapath -- not a synthesis result (the
``make -C hls ip`` report replaces it). Block RAM is counted bank by bank from the partitioned buffers
(each bank mapped to the cheapest BRAM18 aspect ratio, small banks to LUTRAM); DSPs are counted from
what the sources instantiate (:func:`mac_dsps`, :data:`INDEX_MULTIPLIERS`: every multiplication of
the C++ is an ``ops::mac_pair`` or ``ops::index_product`` call, tests/test_hls_resources.py ties the
count to the source); LUT/FF use per-lane coefficients of the adder tree, requantizer, fault and
corrector logic plus fixed costs of the AXI adapters and the controller. The coefficients are engineering
guesses, not yet calibrated against a Vitis HLS report (none can be produced without the tool): BRAM and
DSP are counted from the buffer and datapath shapes and should be close; read LUT/FF as order of magnitude.
numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from resilq.boards import Board
from resilq.errors import ParameterError

from . import regmap
from .config import AccelConfig

#: BRAM18 aspect ratios (depth, width).
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: Banks of at most this many bits go to distributed RAM (LUTRAM) instead of a BRAM18 (the tool's own choice).
LUTRAM_BITS = 1024
#: Distributed RAM: a 64 x 1 simple dual-port RAM (one write, one read port) is a RAM64X1D, two LUT6 of a SLICEM
#: (UG953 RAM64X1D; UG474 distributed RAM); a bank deeper than 64 adds a depth/64 : 1 read multiplexer per bit
#: (~1 LUT6 per 4 inputs).
LUTRAM_DEPTH, LUTS_PER_RAM64X1D = 64, 2
#: Fixed costs (estimates): one AXI4 master adapter with burst FIFOs, the AXI-Lite adapter, the
#: controller (descriptor decode, address generation, loop FSMs).
M_AXI_PORTS = 3
M_AXI_LUT, M_AXI_FF, M_AXI_BRAM18 = 1200, 1600, 2
S_AXILITE_LUT, S_AXILITE_FF = 450, 500
CONTROL_LUT, CONTROL_FF = 2600, 3200
#: int8 x int8 products per DSP48E1 in the PE x SIMD array: resilq/ops.hpp mac_pair computes the products of
#: PE lanes q and q + PE/2, which share their activation, in one DSP48E1 (pre-adder wb * 2^16 + wa, 25 x 18
#: multiplier; UG953 DSP48E1 ports, UG1399 BIND_OP impl=dsp and "DSP Multi-Operation Matching"); with PE = 1 the
#: pair's second weight is 0 (one product per DSP).
MACS_PER_DSP = 2
#: Per DSP pair: splitting P into its two products (the sign-extended low half; the high half plus the borrow,
#: a 16-bit incrementer on the carry chain).
LUT_PER_PAIR_SPLIT = 20
#: ops::index_product call sites in the synthesized sources (descriptor.hpp: 16 sizes and tests derived once
#: per descriptor; lcu.hpp: 1 output-buffer row address; accel_top.cpp: 1 kept-weights layout size per
#: descriptor; descriptor.hpp check_extents: 3 region ends per descriptor): 24 x 17-bit unsigned products, one
#: DSP48E1 each.
#: An upper bound -- HLS may share the per-descriptor ones across control steps; csynth reports the truth.
#: Every other index is a counter, a shift or a multiplexer (no multiplier).
INDEX_MULTIPLIERS = 21
DSP_PER_INDEX_MULTIPLIER = 1
#: Per PE lane: an int8 product feeds an adder tree of SIMD-1 ~18-bit adders and a 32-bit
#: accumulator; the lane's requantizer (5-bit barrel shifter, round, clamp), fault unit and write port.
LUT_PER_ADDER, LANE_LUT, LANE_FF_BASE, FF_PER_PRODUCT = 18, 190, 120, 16
LCU_LUT, LCU_FF = 80, 60


class Storage(Enum):
    """Where a buffer's banks live: the tool's choice (BRAM18, or LUTRAM when tiny) or pinned to LUTRAM by
    ``#pragma HLS BIND_STORAGE variable=... type=ram_s2p impl=lutram`` in accel_top.cpp (UG1399 "pragma HLS
    bind_storage"; tests/test_hls_resources.py ties the two)."""

    AUTO = "auto"
    LUTRAM = "lutram"


def bram18_for(depth: int, width: int) -> int:
    """BRAM18s for one bank of ``depth`` x ``width`` bits (0 if it fits in LUTRAM)."""
    if depth * width <= LUTRAM_BITS:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def lutram_luts(depth: int, width: int) -> int:
    """LUT6s of one simple dual-port distributed-RAM bank of ``depth`` x ``width`` bits."""
    words = math.ceil(depth / LUTRAM_DEPTH)
    mux = math.ceil(words / 4) if words > 1 else 0
    return width * (words * LUTS_PER_RAM64X1D + mux)


@dataclass(frozen=True)
class BufferCost:
    name: str
    banks: int
    depth: int
    width: int
    variable: str  # the array in hls/src/accel_top.cpp
    storage: Storage = Storage.AUTO

    @property
    def bram18(self) -> int:
        return 0 if self.storage is Storage.LUTRAM else self.banks * bram18_for(self.depth, self.width)

    @property
    def lut(self) -> int:
        """LUT6s the banks take as distributed RAM (pinned, or small enough for the tool to pick it)."""
        if self.storage is Storage.LUTRAM or bram18_for(self.depth, self.width) == 0:
            return self.banks * lutram_luts(self.depth, self.width)
        return 0


@dataclass(frozen=True)
class ResourceEstimate:
    lut: int
    ff: int
    dsp: int
    bram18: int
    buffers: tuple[BufferCost, ...]

    @property
    def bram36(self) -> int:
        return math.ceil(self.bram18 / 2)

    def as_dict(self) -> dict[str, int]:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM36": self.bram36}


def buffers(config: AccelConfig) -> tuple[BufferCost, ...]:
    """The on-chip arrays of accel_top.cpp, bank by bank. Bias, shift, classifier words and protected-position
    marks are pinned to LUTRAM: a few kbit per bank, which would otherwise take a whole BRAM18 per lane each."""
    c = config
    lutram = Storage.LUTRAM
    return (
        BufferCost("input buffer", c.simd, c.max_in // c.simd, 8, "in_buf"),
        BufferCost("weight buffer (ping)", c.pe, c.max_fanin // c.simd, 8 * c.simd, "w_ping"),
        BufferCost("weight buffer (pong)", c.pe, c.max_fanin // c.simd, 8 * c.simd, "w_pong"),
        BufferCost("bias buffer", c.pe, -(-c.max_channels // c.pe), 32, "bias_buf", lutram),
        BufferCost("shift buffer", c.pe, -(-c.max_channels // c.pe), 8, "shift_buf", lutram),
        BufferCost("output buffer", c.out_banks, c.max_out // c.out_banks, 8, "out_buf"),
        BufferCost("shadow buffer", c.pe, c.shadow_lane, 8, "sh_buf"),
        BufferCost("classifier buffer", c.out_banks, c.max_raw // c.out_banks, 32, "raw_buf", lutram),
        BufferCost("protected-position marks", c.pe, c.max_pos, 1, "marks", lutram),
        BufferCost("cycle profile", 1, c.max_layers, 64, "profile"),
        BufferCost("upset buffer", 1, regmap.UPSET_CAPACITY, 64, "upset_buf"),
        BufferCost("critical table (AXI-Lite RAM)", 1, regmap.CRIT_TABLE.capacity, 32, "crit_table"),
    )


def mac_dsps(config: AccelConfig) -> int:
    """DSP48E1s of the PE x SIMD array: one per lane pair (ops::mac_pair) and SIMD input."""
    return -(-config.pe // MACS_PER_DSP) * config.simd


def shadow_dsps(config: AccelConfig) -> int:
    """DSP48E1s of the dedicated shadow lanes: one per lane and SIMD input (ops::mac_single, unpaired)."""
    return config.shadow_units * config.simd


def shadow_lane_lut(config: AccelConfig) -> int:
    """LUT6s of the dedicated shadow lanes (conv.hpp ``assign_shadow_lanes``, ``shadow_macs``, ``shadow_copies``).

    Per shadow lane: a PE:1 multiplexer of the SIMD-byte weight row, the 32-bit bias and the 5-bit shift (~PE/4 LUT6
    per bit), the adder tree and requantizer of a PE lane, and its select logic (a priority match over the PE
    lanes' ranks, ~8 LUT6 per lane). Per PE lane and shadow copy: a K:1 byte multiplexer of the shadow results
    (~K/4 LUT6 per bit), the rank adder and the second fault unit's compare (~40 LUT6)."""
    k, pe, simd = config.shadow_units, config.pe, config.simd
    if k == 0:
        return 0
    per_lane = -(-pe // 4) * (8 * simd + 32 + 5) + LUT_PER_ADDER * (simd - 1) + 32 + LANE_LUT + 8 * pe
    per_copy = 8 * -(-k // 4) + 40
    return k * per_lane + 2 * pe * per_copy


def estimate(config: AccelConfig) -> ResourceEstimate:
    pe, simd = config.pe, config.simd
    lane_lut = LUT_PER_ADDER * (simd - 1) + 32 + LANE_LUT
    lane_ff = FF_PER_PRODUCT * simd + LANE_FF_BASE
    # the SIMD-wide input read: per-bank word select, the rotation of the banks into lanes (SIMD lanes x a
    # SIMD:1 byte mux, ~2 LUT6 per 4:1 byte slice) and the per-lane zero padding
    patch_lut = 8 * simd + 2 * simd * simd
    # stacked kernel rows (conv.hpp lane_skip / lane_ky): per bank the skip of the lane it serves (a SIMD:1 mux of a
    # 12-bit word offset, ~SIMD/4 LUT6 per bit, and a 12-bit add), per lane the row bound of its kernel row
    stack_lut = simd * (3 * simd + 12) + 10 * simd
    # 64-bit activation beats (io.hpp): load_input's scatter (each of the SIMD banks takes one of a beat's 8 bytes,
    # an 8:1 byte mux, ~2 LUT6 per bit), store_output's gather (each of the 8 bytes takes one of OUT_BANKS / 8
    # banks) and its range restriction (8 x an 8-bit compare and a 2:1 byte mux, ~10 LUT6)
    beat_lut = 16 * simd + 64 * max(1, config.out_banks // 16) + 8 * 10
    # the on-chip max-pool (pool.hpp maxpool_on_chip): per output-buffer bank an 8-bit compare and 2:1 byte mux for
    # the running max, the conv's range restriction (compare + mux) and the write-back enable, ~30 LUT6
    pool_lut = 30 * config.out_banks
    bufs = buffers(config)
    lut = (pe * lane_lut + mac_dsps(config) * LUT_PER_PAIR_SPLIT + patch_lut + stack_lut + beat_lut + pool_lut + LCU_LUT
           + shadow_lane_lut(config) + M_AXI_PORTS * M_AXI_LUT + S_AXILITE_LUT + CONTROL_LUT + sum(b.lut for b in bufs))
    ff = ((pe + config.shadow_units) * lane_ff + 8 * simd + LCU_FF + M_AXI_PORTS * M_AXI_FF + S_AXILITE_FF
          + CONTROL_FF)
    dsp = mac_dsps(config) + shadow_dsps(config) + INDEX_MULTIPLIERS * DSP_PER_INDEX_MULTIPLIER
    bram18 = sum(b.bram18 for b in bufs) + M_AXI_PORTS * M_AXI_BRAM18
    return ResourceEstimate(lut, ff, dsp, bram18, bufs)


def check_budget(config: AccelConfig, board: Board) -> ResourceEstimate:
    """The estimate, or a ``ParameterError`` naming every resource the build would exceed on ``board``."""
    est = estimate(config)
    over = [f"{name}: {used:,} estimated > {board.budget.as_dict()[name]:,} available"
            for name, used in est.as_dict().items() if used > board.budget.as_dict()[name]]
    if over:
        raise ParameterError(f"PE={config.pe} x SIMD={config.simd} does not fit the {board.name} "
                             f"({board.part}): " + "; ".join(over))
    return est


def utilisation_rows(est: ResourceEstimate, board: Board) -> list[tuple[str, int, int, str]]:
    """(resource, estimated, available, percent) rows for a table."""
    budget = board.budget.as_dict()
    return [(name, used, budget[name], f"{100 * used / budget[name]:.1f} %") for name, used in est.as_dict().items()]
