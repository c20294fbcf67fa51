"""The host side of the register map: the run sequence, for any device with 32-bit ``read``/``write``.

The same functions drive the C-simulated accelerator (:class:`.csim.CsimDevice`) and, in the PYNQ
driver, a board's ``pynq.MMIO``/``DefaultIP`` -- nothing here knows which. Offsets and fields come from
:mod:`.regmap` only. numpy only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from resilq.arith import FaultMode
from resilq.errors import MismatchError, ParameterError, ResilqError
from resilq.validation import check_int, check_timeout

from . import regmap as rm
from .config import AccelConfig
from .imageformat import Status
from .packing import MemoryImage


class MMIO(Protocol):
    def read(self, offset: int) -> int: ...

    def write(self, offset: int, value: int) -> None: ...


class AcceleratorError(ResilqError):
    """The accelerator reported an error in STATUS, or did not finish in time."""


@dataclass(frozen=True)
class HardwareInfo:
    version: int
    pe: int
    simd: int
    config_id: int
    shadow: int = 0  # dedicated shadow lanes (HW_CONFIG.SHADOW)


@dataclass(frozen=True)
class RunStatus:
    """The read-only registers after a run."""

    code: Status
    descriptor: int  # the descriptor STATUS.LAYER names (meaningful when code != OK)
    cycles: int  # MODEL_CYCLES: the kernel's cycle model (resilq.hls.cycles), not a measurement
    corrections: int
    fi_hits: int

    def check(self, image: MemoryImage | None = None) -> RunStatus:
        if self.code is not Status.OK:
            where = f"descriptor {self.descriptor}"
            if image is not None and self.descriptor < len(image.plans):
                where += f" (layer {image.plans[self.descriptor].name!r})"
            raise AcceleratorError(f"accelerator run failed at {where}: {self.code.name}: {self.code.meaning}")
        return self


def write_pointers(mmio: MMIO, address: int) -> None:
    """Point the three AXI masters at the memory image at DDR ``address``."""
    for reg in rm.POINTERS:
        mmio.write(reg.offset, address & 0xFFFFFFFF)
        mmio.write(reg.offset + 4, (address >> 32) & 0xFFFFFFFF)


def write_table(mmio: MMIO, table: np.ndarray) -> None:
    """Write the critical-neuron table into the AXI-Lite RAM."""
    if table.size > rm.CRIT_TABLE.capacity:
        raise ParameterError(f"{table.size} critical-table entries exceed the capacity {rm.CRIT_TABLE.capacity}")
    for k, word in enumerate(np.asarray(table, dtype=np.uint32).tolist()):
        mmio.write(rm.CRIT_TABLE.offset + 4 * k, word)


def set_fault(mmio: MMIO, fault=None, once: bool = False, token: int = 0) -> None:
    """Program the fault-injection registers with a :class:`resilq.faults.Fault` (one slot) or a
    :class:`resilq.fault_kinds.LaneFault` (every value one PE lane writes: FI_CTRL.KIND 1, the lane in FI_SLOT,
    ALL_LAYERS for a lane fault in every neuron layer); None disables.

    ``once`` makes it a one-shot: it hits only the first inference that starts after ``token`` changed.
    """
    if fault is None:
        mmio.write(rm.FI_CTRL.offset, 0)
        return
    if not 0 < fault.mask <= 0xFF:
        raise ParameterError(f"fault mask must be a non-zero 8-bit value, got {fault.mask:#x}")
    kind = getattr(fault, "kind", "output")
    if kind not in ("output", "lane"):
        raise ParameterError(f"{fault}: the fault-injection registers hold one slot or one PE lane; a {kind} fault "
                             "is a stored-word upset (resilq.deploy.upsets) or needs the Python engines")
    ctrl = rm.FI_CTRL.field("EN").put(1) | rm.FI_CTRL.field("ONCE").put(int(once)) | rm.FI_CTRL.field("TOKEN").put(token)
    if kind == "lane":
        every = fault.layer is None
        ctrl |= rm.FI_CTRL.field("KIND").put(1) | rm.FI_CTRL.field("ALL_LAYERS").put(int(every))
        mmio.write(rm.FI_LAYER.offset, 0 if every else int(fault.layer))
        mmio.write(rm.FI_SLOT.offset, int(fault.lane))
    else:
        mmio.write(rm.FI_LAYER.offset, fault.layer)
        mmio.write(rm.FI_SLOT.offset, fault.slot)
    mmio.write(rm.FI_MASK.offset, fault.mask)
    mmio.write(rm.FI_MODE.offset, int(FaultMode(fault.mode)))
    mmio.write(rm.FI_CTRL.offset, ctrl)


def set_upsets(mmio: MMIO, list_offset: int, count: int, once: bool = False, token: int = 0) -> None:
    """Program output upsets: the ``count`` items of the upset list at byte ``list_offset`` of the memory image
    (:mod:`.upset_list`) flip their slots' bits (FI_CTRL.UPSETS; the run must have one image)."""
    check_int(list_offset, "upset list offset", 0, 0xFFFFFFFF)  # 32-bit registers
    check_int(count, "upset list items", 0, 0xFFFFFFFF)
    if list_offset % 8:
        raise ParameterError(f"an upset list at byte {list_offset}: the offset must be a multiple of 8")
    ctrl = (rm.FI_CTRL.field("EN").put(1) | rm.FI_CTRL.field("UPSETS").put(1) | rm.FI_CTRL.field("ONCE").put(int(once))
            | rm.FI_CTRL.field("TOKEN").put(token))
    mmio.write(rm.FI_LIST.offset, list_offset)
    mmio.write(rm.FI_COUNT.offset, count)
    mmio.write(rm.FI_CTRL.offset, ctrl)


def next_token(mmio: MMIO) -> int:
    """A fresh one-shot TOKEN for this device, counted on the device object so that every host object driving
    it (several networks, several campaigns) takes a new one. The kernel fires a one-shot when TOKEN differs
    from the last one it fired, a register the host cannot read: a process that reattaches to a running
    bitstream may repeat it, which a run shows as FI_HITS = 0 -- the callers then re-arm with the next token
    (:class:`resilq.deploy.driver.Accelerator`, :class:`resilq.hls.simulate.CsimAccelerator`)."""
    token = (int(getattr(mmio, "_resilq_fi_token", 0)) + 1) & 0xFF
    mmio._resilq_fi_token = token
    return token


def set_images(mmio: MMIO, n_images: int) -> None:
    mmio.write(rm.N_IMAGES.offset, n_images)


def go(mmio: MMIO) -> None:
    """Write AP_START (ap_ctrl_hs: the kernel starts; AP_DONE rises when it returns)."""
    mmio.write(rm.AP_CTRL.offset, rm.AP_CTRL.field("AP_START").put(1))


def start(mmio: MMIO, n_images: int) -> None:
    set_images(mmio, n_images)
    go(mmio)


def wait(mmio: MMIO, timeout: float = 60.0) -> None:
    """Busy-poll AP_CTRL until AP_DONE (clear on read) or raise after ``timeout`` seconds.

    No sleep between polls: a sleeping loop adds up to its period (the operating system's sleep
    granularity, tens of microseconds and more) to a run of a few hundred microseconds, and the driver's
    timed interval ends at the poll that sees AP_DONE.
    """
    timeout = check_timeout(timeout)  # nan or inf would poll a stuck device forever
    deadline = time.monotonic() + timeout
    done = rm.AP_CTRL.field("AP_DONE").mask
    while not mmio.read(rm.AP_CTRL.offset) & done:
        if time.monotonic() > deadline:
            raise AcceleratorError(f"the accelerator did not finish within {timeout} s")


def read_status(mmio: MMIO) -> RunStatus:
    status = mmio.read(rm.STATUS.offset)
    cycles = mmio.read(rm.MODEL_CYCLES_LO.offset) | (mmio.read(rm.MODEL_CYCLES_HI.offset) << 32)
    return RunStatus(Status(rm.STATUS.field("CODE").get(status)), rm.STATUS.field("LAYER").get(status), cycles,
                     mmio.read(rm.CORRECTIONS.offset), mmio.read(rm.FI_HITS.offset))


def run(mmio: MMIO, n_images: int, timeout: float = 60.0) -> RunStatus:
    start(mmio, n_images)
    wait(mmio, timeout)
    return read_status(mmio)


def probe(mmio: MMIO, timeout: float = 60.0) -> HardwareInfo:
    """A zero-image run: fills VERSION, HW_CONFIG and CONFIG_ID without touching memory."""
    run(mmio, 0, timeout)
    hw = mmio.read(rm.HW_CONFIG.offset)
    return HardwareInfo(mmio.read(rm.VERSION_REG.offset), rm.HW_CONFIG.field("PE").get(hw),
                        rm.HW_CONFIG.field("SIMD").get(hw), mmio.read(rm.CONFIG_ID.offset),
                        rm.HW_CONFIG.field("SHADOW").get(hw))


def check_hardware(info: HardwareInfo, config: AccelConfig) -> None:
    """Refuse a bitstream whose register map or configuration differs from what the host packs for."""
    if info.version != rm.VERSION:
        raise MismatchError(f"the accelerator implements register map v{info.version}, this resilq speaks v{rm.VERSION}")
    if info.config_id != config.config_id:
        raise MismatchError(f"the accelerator was built as PE={info.pe} SIMD={info.simd} with {info.shadow} shadow "
                            f"lanes (config {info.config_id:#010x}), the image is packed for PE={config.pe} "
                            f"SIMD={config.simd} with {config.shadow_units} (config {config.config_id:#010x})")
