"""The accelerator's AXI-Lite register map: the one description of every register, field and table.

The C header ``hls/include/resilq/regmap.hpp`` is rendered from this module (:mod:`.codegen`), the
``offset=`` of every ``s_axilite`` pragma in ``hls/src/accel_top.cpp`` is checked against it by a test,
and the host side (:mod:`.host`, the C-sim device, the PYNQ driver) uses these objects instead of raw
offsets. Layout rules are Vitis HLS's (UG1399 "S_AXILITE Offset Option"): 0x00-0x0C are the block
control registers; a 32-bit argument reserves two words (data + one for its protocol), a 64-bit pointer
three; an output register's second word holds its ``ap_vld`` bit (clear-on-read); an array sits at an
offset aligned to its size.

Bump :data:`VERSION` whenever anything here changes meaning: every run writes it to the VERSION register
and the driver refuses a bitstream whose version differs from its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: Register-map version (the VERSION register and the IP's major version). 1 = first release;
#: 2 = CYCLES_LO/HI renamed MODEL_CYCLES_LO/HI (the kernel's cycle model, not a measurement; issue #13);
#: 3 = FI_CTRL.KIND / ALL_LAYERS: persistent PE-lane faults (FI_SLOT holds the lane), lane-diverse shadows (#15).
#: 4 = dedicated shadow lanes: HW_CONFIG.SHADOW, FI_SLOT with FI_CTRL.KIND 1 names lanes 0..PE+SHADOW-1 (#14).
#: 5 = output upsets: FI_CTRL.UPSETS with FI_LIST / FI_COUNT, a list of per-slot XOR masks in the image (output-site
#:     BER on the device, #15).
VERSION = 5
#: Upset-list items (UPSET_LO/UPSET_HI) the kernel holds for one layer (its on-chip upset buffer).
UPSET_CAPACITY = 1024
#: Size of the AXI-Lite address space (bytes).
ADDRESS_SPACE = 0x10000


class Access(Enum):
    RW = "rw"  # host writes, kernel reads (an input argument)
    RO = "ro"  # kernel writes at the end of a run, host reads (an output argument with ap_vld)
    CTRL = "ctrl"  # HLS block-control registers (ap_ctrl_hs)


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, word: int) -> int:
        return (word >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int) -> int:
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"field {self.name} is {self.width} bits wide, cannot hold {value}")
        return value << self.lsb


@dataclass(frozen=True)
class Register:
    """One register. ``arg`` is the top-function argument it belongs to (None for block control)."""

    name: str
    offset: int
    access: Access
    doc: str
    arg: str | None = None
    bits: int = 32  # 32, or 64 for a pointer (two data words: lo at offset, hi at offset + 4)
    fields: tuple[Field, ...] = ()

    @property
    def words(self) -> int:
        """32-bit words reserved in the map, data plus the protocol word (HLS's reservation rule)."""
        if self.access is Access.CTRL:
            return 1
        return self.bits // 32 + 1

    @property
    def valid_offset(self) -> int | None:
        """Offset of the ``ap_vld`` word of an output register (bit 0, clear on read)."""
        return self.offset + 4 if self.access is Access.RO else None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name}")


@dataclass(frozen=True)
class Record:
    """A 32-bit word of a data structure in memory (not in the AXI-Lite space), described field by field."""

    name: str
    doc: str
    fields: tuple[Field, ...] = ()

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"record {self.name} has no field {name}")


@dataclass(frozen=True)
class Table:
    """A 32-bit-word array argument in the AXI-Lite space (implemented as a RAM behind the adapter)."""

    name: str
    offset: int
    capacity: int  # words
    arg: str
    doc: str
    fields: tuple[Field, ...] = ()

    @property
    def end(self) -> int:
        return self.offset + 4 * self.capacity

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"table {self.name} has no field {name}")


AP_CTRL = Register("AP_CTRL", 0x00, Access.CTRL, "block control (ap_ctrl_hs)", fields=(
    Field("AP_START", 0, 1, "write 1 to start a run; reads 1 until the kernel accepts it"),
    Field("AP_DONE", 1, 1, "the run finished (clear on read)"),
    Field("AP_IDLE", 2, 1, "the kernel is idle"),
    Field("AP_READY", 3, 1, "the kernel can accept a new start"),
    Field("AUTO_RESTART", 7, 1, "restart automatically when done"),
))
GIE = Register("GIE", 0x04, Access.CTRL, "global interrupt enable")
IER = Register("IER", 0x08, Access.CTRL, "interrupt enable: bit 0 ap_done, bit 1 ap_ready")
ISR = Register("ISR", 0x0C, Access.CTRL, "interrupt status (toggle on write)")

CTRL_MEM = Register("CTRL_MEM", 0x10, Access.RW, "DDR address of the memory image, seen by the 32-bit "
                    "control master (header, descriptors, profile, int32 logits)", arg="ctrl_mem", bits=64)
WEIGHT_MEM = Register("WEIGHT_MEM", 0x1C, Access.RW, "DDR address of the memory image, seen by the 64-bit "
                      "weight master (bias/shift beats, weight rows)", arg="weight_mem", bits=64)
ACT_MEM = Register("ACT_MEM", 0x28, Access.RW, "DDR address of the memory image, seen by the 64-bit "
                   "activation master (inputs, every layer's int8 outputs)", arg="act_mem", bits=64)

N_IMAGES = Register("N_IMAGES", 0x40, Access.RW, "images to run from the image's input batch; 0 = probe run "
                    "(only VERSION, HW_CONFIG, CONFIG_ID and STATUS are written)", arg="n_images")
FI_CTRL = Register("FI_CTRL", 0x48, Access.RW, "fault-injection control", arg="fi_ctrl", fields=(
    Field("EN", 0, 1, "inject the fault described by FI_LAYER/FI_SLOT/FI_MASK/FI_MODE"),
    Field("ONCE", 1, 1, "0: every inference while EN; 1: only the first inference that starts after the "
          "host armed a new TOKEN (a one-shot transient)"),
    Field("KIND", 2, 1, "0: the slot FI_SLOT (an output fault); 1: every value PE lane FI_SLOT writes (a "
          "persistent lane fault, resilq.fault_kinds.LaneFault)"),
    Field("ALL_LAYERS", 3, 1, "with KIND 1: in every neuron layer (FI_LAYER ignored)"),
    Field("UPSETS", 4, 1, "with KIND 0: the slots of the upset list (FI_LIST, FI_COUNT) flip by their masks "
          "instead of FI_SLOT (output-site BER, resilq.hls.upset_list); N_IMAGES must be 1"),
    Field("TOKEN", 8, 8, "arming token for ONCE: change it to re-arm"),
))
FI_LAYER = Register("FI_LAYER", 0x50, Access.RW, "index of the faulty layer in Model.layers (a neuron layer)",
                    arg="fi_layer")
FI_SLOT = Register("FI_SLOT", 0x58, Access.RW, "faulty slot, numbered as resilq.faults: 0..n_out-1 the "
                   "neurons (flat C-H-W), n_out + p*(copies-1) + j the shadows; with FI_CTRL.KIND 1 the faulty "
                   "lane: 0..PE-1 the PE array's, PE..PE+SHADOW-1 the dedicated shadow lanes", arg="fi_slot")
FI_MASK = Register("FI_MASK", 0x60, Access.RW, "8-bit fault mask (1 << k for a flip of bit k)", arg="fi_mask")
FI_MODE = Register("FI_MODE", 0x68, Access.RW, "fault mode: resilq.arith.FaultMode codes", arg="fi_mode",
                   fields=(Field("MODE", 0, 2, "0 FLIP (xor), 1 STUCK_AT_0 (clear), 2 STUCK_AT_1 (set)"),))

VERSION_REG = Register("VERSION", 0x70, Access.RO, "register-map version (resilq.hls.regmap.VERSION)",
                       arg="version")
HW_CONFIG = Register("HW_CONFIG", 0x78, Access.RO, "build parallelism", arg="hw_config", fields=(
    Field("PE", 0, 8, "output lanes"), Field("SIMD", 8, 8, "input lanes"),
    Field("SHADOW", 16, 8, "dedicated shadow lanes (AccelConfig.shadow_units): lane faults PE..PE+SHADOW-1"),
))
CONFIG_ID = Register("CONFIG_ID", 0x80, Access.RO, "CRC-32 of the AccelConfig of this build", arg="config_id")
STATUS = Register("STATUS", 0x88, Access.RO, "outcome of the last run", arg="status", fields=(
    Field("CODE", 0, 8, "resilq.hls.imageformat.Status code (0 = OK)"),
    Field("LAYER", 8, 8, "descriptor index the error refers to"),
))
MODEL_CYCLES_LO = Register("MODEL_CYCLES_LO", 0x90, Access.RO, "modelled cycles of the last run, bits 0-31: the "
                           "kernel adds each loop's trip count and modelled pipeline depth (resilq.hls.cycles), "
                           "a model, not a measurement", arg="model_cycles_lo")
MODEL_CYCLES_HI = Register("MODEL_CYCLES_HI", 0x98, Access.RO, "modelled cycles of the last run, bits 32-63",
                           arg="model_cycles_hi")
CORRECTIONS = Register("CORRECTIONS", 0xA0, Access.RO, "corrector invocations of the last run whose slots "
                       "disagreed (the LCU/voter resolved a difference between a neuron's copies)",
                       arg="corrections")
FI_HITS = Register("FI_HITS", 0xA8, Access.RO, "slot values the fault was applied to in the last run (one per "
                   "inference that carried the fault)", arg="fi_hits")
FI_LIST = Register("FI_LIST", 0xB0, Access.RW, "with FI_CTRL.UPSETS: byte offset of the upset list in the memory "
                   "image (a multiple of 8, read by the activation master)", arg="fi_list")
FI_COUNT = Register("FI_COUNT", 0xB8, Access.RW, "with FI_CTRL.UPSETS: items in the upset list", arg="fi_count")

#: One upset-list item, a 64-bit word of the image (UPSET_LO its low 32 bits, UPSET_HI the high): a slot of one neuron
#: layer and the XOR mask of its 8 bits. Items run layer by layer in IR order; in a layer the originals by channel
#: (the order the tiles compute them), then the shadow items by critical entry, strictly increasing.
UPSET_LO = Record("UPSET_LO", "upset item, bits 0-31", fields=(
    Field("MASK", 0, 8, "XOR mask of the original slot, or of a shadow item's first copy"),
    Field("MASK2", 8, 8, "a shadow item's second copy (TMR); 0 otherwise"),
    Field("INDEX", 16, 16, "original: output position y*W + x; shadow: the layer-local critical entry"),
))
UPSET_HI = Record("UPSET_HI", "upset item, bits 32-63", fields=(
    Field("CHANNEL", 0, 16, "original: output channel (the neuron of a Linear layer); shadow: 0"),
    Field("LAYER", 16, 8, "the neuron layer (index in Model.layers)"),
    Field("SHADOW", 31, 1, "1: the item holds the shadow copies of a critical entry"),
))
RECORDS = (UPSET_LO, UPSET_HI)

CRIT_TABLE = Table("CRIT_TABLE", 0x8000, 8192, "crit_table", "critical-neuron table: the protected neurons of "
                   "every layer, each layer's entries contiguous (descriptor CRIT_START/CRIT_COUNT) and in the "
                   "order of Protection.neurons", fields=(
                       Field("POS", 0, 16, "output position y*W + x (0 for a Linear layer)"),
                       Field("CHANNEL", 16, 16, "output channel (the neuron index of a Linear layer)"),
                   ))

REGISTERS: tuple[Register, ...] = (
    AP_CTRL, GIE, IER, ISR, CTRL_MEM, WEIGHT_MEM, ACT_MEM, N_IMAGES, FI_CTRL, FI_LAYER, FI_SLOT, FI_MASK,
    FI_MODE, VERSION_REG, HW_CONFIG, CONFIG_ID, STATUS, MODEL_CYCLES_LO, MODEL_CYCLES_HI, CORRECTIONS, FI_HITS,
    FI_LIST, FI_COUNT,
)
TABLES: tuple[Table, ...] = (CRIT_TABLE,)
BY_NAME: dict[str, Register] = {r.name: r for r in REGISTERS}
POINTERS: tuple[Register, ...] = (CTRL_MEM, WEIGHT_MEM, ACT_MEM)
INPUTS: tuple[Register, ...] = tuple(r for r in REGISTERS if r.access is Access.RW)
OUTPUTS: tuple[Register, ...] = tuple(r for r in REGISTERS if r.access is Access.RO)


def encode_entry(channel: int, pos: int) -> int:
    """A critical-table word for the neuron at output ``channel``, position ``pos``."""
    return CRIT_TABLE.field("CHANNEL").put(channel) | CRIT_TABLE.field("POS").put(pos)


def check_layout() -> None:
    """Raise ``AssertionError`` if two registers overlap, a word is misaligned or the table is misplaced."""
    used: dict[int, str] = {}
    for reg in REGISTERS:
        assert reg.offset % 4 == 0, f"{reg.name} is not word aligned"
        for w in range(reg.words):
            addr = reg.offset + 4 * w
            assert addr not in used, f"{reg.name} overlaps {used[addr]} at {addr:#x}"
            used[addr] = reg.name
        if reg.access is not Access.CTRL:
            assert reg.offset >= 0x10, f"{reg.name} sits in the block-control range"
    for table in TABLES:
        size = 4 * table.capacity
        assert size & (size - 1) == 0 and table.offset % size == 0, f"{table.name} is not aligned to its size"
        assert all(not table.offset <= a < table.end for a in used), f"{table.name} overlaps a register"
        assert table.end <= ADDRESS_SPACE, f"{table.name} ends outside the address space"
