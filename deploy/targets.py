"""Where the driver runs: ``board`` (a PYNQ-Z2 overlay), ``emulator`` (bit-true executor), ``csim`` (HLS C++).

:func:`open_device` returns a :class:`resilq.deploy.memory.Device` for a target; the driver code that
follows is the same for all three. ``emulator`` is numpy only; ``csim`` compiles the accelerator's C++
with g++ (:mod:`resilq.hls.csim`); ``board`` imports pynq and downloads the overlay's bitstream.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from resilq.errors import ParameterError
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig

from .memory import Device, DeviceBuffer, HostMemory
from .timer import DeviceClocks, EmulatedGlobalTimer, GlobalTimer


class Target(Enum):
    BOARD = "board"
    EMULATOR = "emulator"
    CSIM = "csim"

    @classmethod
    def parse(cls, text: str) -> Target:
        for t in cls:
            if t.value == text.strip().lower():
                return t
        raise ParameterError(f"unknown target {text!r}; expected one of {', '.join(t.value for t in cls)}")


class CsimTarget:
    """The C-simulated IP (:class:`resilq.hls.csim.CsimDevice`) as a :class:`Device`.

    The C-sim bridge maps one DDR block at a time: each :meth:`allocate` attaches the new block (the
    driver allocates one per loaded network and re-attaches it before running that network). Its global
    timer advances by the MODEL_CYCLES the C-simulated kernel counted in each run.
    """

    name = "csim"
    _instances: dict[int, CsimTarget] = {}

    def __init__(self, config: AccelConfig = DEFAULT_CONFIG, clocks: DeviceClocks | None = None):
        from resilq.hls.csim import CsimDevice

        from .emulator import default_clocks

        self.csim = CsimDevice.open(config)
        self.csim.reset()
        self.memory = HostMemory()
        self.global_timer = EmulatedGlobalTimer(clocks or default_clocks())

    @classmethod
    def open(cls, config: AccelConfig = DEFAULT_CONFIG) -> CsimTarget:
        """The process's C-simulated IP for ``config`` (one instance, like one IP on a chip)."""
        if config.config_id not in cls._instances:
            cls._instances[config.config_id] = cls(config)
        return cls._instances[config.config_id]

    def allocate(self, nbytes: int) -> DeviceBuffer:
        buf = self.memory.allocate(nbytes)
        buf.flush = lambda: self._attach(buf)  # "cache flush" = make this block the attached DDR
        self._attach(buf)
        return buf

    def _attach(self, buf: DeviceBuffer) -> None:
        mem = self.csim.memory
        if mem is None or mem.array is not buf.array:
            self.csim.attach(buf.array, buf.physical_address)

    def read(self, offset: int) -> int:
        return self.csim.read(offset)

    def write(self, offset: int, value: int) -> None:
        self.csim.write(offset, value)
        if offset == rm.AP_CTRL.offset and value & rm.AP_CTRL.field("AP_START").mask:  # the run has finished
            self.global_timer.advance(self.csim.read(rm.MODEL_CYCLES_LO.offset) |
                                      (self.csim.read(rm.MODEL_CYCLES_HI.offset) << 32))

    def timer(self) -> GlobalTimer:
        return self.global_timer.timer("emulated global timer (the C-sim kernel's cycle count)")


def open_device(target: Target | str, config: AccelConfig = DEFAULT_CONFIG, overlay: str | Path | None = None,
                clocks: DeviceClocks | None = None) -> Device:
    """The device of ``target`` (a new emulator; the process's C-sim IP); ``overlay`` is the ``.bit`` (with its
    ``.hwh``) for ``board``; ``clocks`` the board's CPU and PL clocks (the timer's and the cycle model's)."""
    target = Target.parse(target) if isinstance(target, str) else target
    if target is Target.EMULATOR:
        from .emulator import EmulatedAccelerator

        return EmulatedAccelerator(config, clocks=clocks)
    if target is Target.CSIM:
        from resilq.hls import SRC_DIR

        if not (SRC_DIR / "accel_top.cpp").is_file():
            raise ParameterError("the csim target compiles the accelerator's C++ sources, which a deployment package "
                                 "does not carry: run `resilq run PACKAGE --target csim` where resilq is installed "
                                 "from source (with g++)")
        return CsimTarget.open(config)
    if overlay is None:
        raise ParameterError("the board target needs the overlay's .bit file (its .hwh beside it)")
    from .pynq_ip import open_overlay

    return open_overlay(overlay, clocks=clocks)
