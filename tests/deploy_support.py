"""Helpers of the deployment tests: an overlay description as Vivado writes it, register-level probes.

Nothing here stands in for code under test: :func:`write_hwh` produces the input the driver's overlay
check reads (no Vivado here to produce a real one), :class:`RecordingDevice` forwards every access to a
real device and remembers it, and :class:`IdleRegisters` is an AXI-Lite slave with no kernel behind it
(what a board shows when the IP's clock or reset is not running): its AP_DONE never rises.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from resilq.deploy.emulator import default_clocks
from resilq.deploy.hwh import LITE_INTERFACE, VLNV, expected_registers
from resilq.deploy.memory import DeviceBuffer, HostMemory
from resilq.deploy.timer import EmulatedGlobalTimer, GlobalTimer
from resilq.hls import regmap as rm


def _prop(parent: ET.Element, name: str, value) -> None:
    ET.SubElement(parent, "PROPERTY", NAME=name, VALUE=str(value))


def hwh_registers(moved: dict[str, int] | None = None) -> list[tuple[str, int, str]]:
    """``(name, offset, access)`` of the accelerator's registers as Vitis HLS exports them."""
    moved = moved or {}
    out = []
    for name, offset, reg in expected_registers():
        access = {rm.Access.RO: "read-only", rm.Access.RW: "write-only"}.get(reg.access, "read-write")
        out.append((name, moved.get(name, offset), access))
    return out


def write_hwh(path: Path, vlnv: str = VLNV, instance: str = "resilq_accel_0", base: int = 0x4000_0000,
              registers: list[tuple[str, int, str]] | None = None, range_bytes: int = rm.ADDRESS_SPACE) -> Path:
    """A ``.hwh`` holding a PS7 and the accelerator, in the structure of Vivado 2022.1's hardware handoff."""
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", VIVADOVERSION="2022.1")
    ET.SubElement(root, "SYSTEMINFO", ARCH="zynq", DEVICE="7z020", PACKAGE="clg400", SPEEDGRADE="-1")
    modules = ET.SubElement(root, "MODULES")
    ps = ET.SubElement(modules, "MODULE", FULLNAME="/processing_system7_0", INSTANCE="processing_system7_0",
                       MODTYPE="processing_system7", VLNV="xilinx.com:ip:processing_system7:5.5")
    mmap = ET.SubElement(ps, "MEMORYMAP")
    ET.SubElement(mmap, "MEMRANGE", ADDRESSBLOCK="Reg", BASENAME="C_S_AXI_CONTROL_BASEADDR", BASEVALUE=hex(base),
                  HIGHNAME="C_S_AXI_CONTROL_HIGHADDR", HIGHVALUE=hex(base + range_bytes - 1), INSTANCE=instance,
                  INTERFACE=LITE_INTERFACE, IS_DATA="TRUE", IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE="M_AXI_GP0",
                  MEMTYPE="REGISTER")
    ip = ET.SubElement(modules, "MODULE", FULLNAME=f"/{instance}", INSTANCE=instance, IPTYPE="PERIPHERAL",
                       MODTYPE=vlnv.split(":")[2], VLNV=vlnv)
    block = ET.SubElement(ET.SubElement(ip, "ADDRESSBLOCKS"), "ADDRESSBLOCK", ACCESS="read-write",
                          INTERFACE=LITE_INTERFACE, NAME="Reg", RANGE=str(range_bytes), USAGE="register")
    regs = ET.SubElement(block, "REGISTERS")
    for name, offset, access in (hwh_registers() if registers is None else registers):
        reg = ET.SubElement(regs, "REGISTER", NAME=name)
        _prop(reg, "DESCRIPTION", f"Data signal of {name}")
        _prop(reg, "ADDRESS_OFFSET", offset)
        _prop(reg, "SIZE", 32)
        _prop(reg, "ACCESS", access)
    params = ET.SubElement(ip, "PARAMETERS")
    ET.SubElement(params, "PARAMETER", NAME="C_S_AXI_CONTROL_BASEADDR", VALUE=f"0x{base:08X}")
    ET.SubElement(params, "PARAMETER", NAME="C_S_AXI_CONTROL_HIGHADDR", VALUE=f"0x{base + range_bytes - 1:08X}")
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


class RecordingDevice:
    """Forwards every access to ``device`` and records it: ``writes`` as (offset, value)."""

    def __init__(self, device):
        self.device = device
        self.name = device.name
        self.writes: list[tuple[int, int]] = []
        self.reads: list[int] = []

    def read(self, offset: int) -> int:
        self.reads.append(offset)
        return self.device.read(offset)

    def write(self, offset: int, value: int) -> None:
        self.writes.append((offset, int(value)))
        self.device.write(offset, value)

    def allocate(self, nbytes: int) -> DeviceBuffer:
        return self.device.allocate(nbytes)

    def timer(self) -> GlobalTimer:
        return self.device.timer()


class IdleRegisters:
    """An AXI-Lite register file with no kernel behind it: writes are stored, nothing ever runs."""

    name = "idle"

    def __init__(self):
        self.regs = np.zeros(rm.ADDRESS_SPACE // 4, dtype=np.uint32)
        self.memory = HostMemory()

    def read(self, offset: int) -> int:
        return int(self.regs[offset // 4])

    def write(self, offset: int, value: int) -> None:
        self.regs[offset // 4] = value

    def allocate(self, nbytes: int) -> DeviceBuffer:
        return self.memory.allocate(nbytes)

    def timer(self) -> GlobalTimer:
        return EmulatedGlobalTimer(default_clocks()).timer("a global timer nothing advances (no kernel)")


def writable_words() -> set[int]:
    """Every word offset the host may write: block control, the data words of RW registers, the table."""
    words = set()
    for reg in rm.REGISTERS:
        if reg.access is rm.Access.CTRL:
            words.add(reg.offset)
        elif reg.access is rm.Access.RW:
            words.update(reg.offset + 4 * w for w in range(reg.bits // 32))
    words.update(range(rm.CRIT_TABLE.offset, rm.CRIT_TABLE.end, 4))
    return words
