"""The hardware timer the driver reads around every run: the Zynq-7000's global timer (GTC).

The accelerator's MODEL_CYCLES register is its cycle model; the latency on the board is measured with the
Cortex-A9 MPCore's 64-bit global timer, which needs no logic in the overlay:

* registers at ``0xF8F00200`` (UG585, Appendix B "mpcore": Global_Timer_Counter_Register0/1 and
  Global_Timer_Control_Register; Xilinx's standalone BSP has ``XPAR_GLOBAL_TMR_BASEADDR =
  XPS_SCU_PERIPH_BASE (0xF8F00000) + 0x200`` and offsets 0x00 / 0x04 / 0x08 in ``xtime_l.h``; Linux's
  ``zynq-7000.dtsi`` declares ``timer@f8f00200``, reg 0x20 bytes, ``arm,cortex-a9-global-timer``);
* counting at CPU_3x2x, half the CPU clock ("Global Timer is always clocked at half of the CPU
  frequency", ``xtime_l.h``: ``COUNTS_PER_SECOND = XPAR_CPU_CORTEXA9_CORE_CLOCK_FREQ_HZ / 2``), divided by
  PRESCALER + 1 (Global_Timer_Control_Register bits 15:8, UG585); 650 MHz / 2 = 325 MHz on the PYNQ-Z2
  (PCW_APU_PERIPHERAL_FREQMHZ 650 in PYNQ's base design, board.toml ``ps_mhz``);
* enabled and owned by Linux (its ``arm_global_timer`` clocksource; bit 0 of the control register): the
  driver only reads it, through ``/dev/mem`` like pynq's own ``pynq.ps`` reads the SLCR;
* read as upper, lower, upper again until the two upper words agree (``XTime_GetTime`` in ``xtime_l.c``),
  so a carry between the two 32-bit reads is never mixed in.

The driver reads the timer just before it writes AP_START and again as soon as its busy-poll sees
AP_DONE: the interval is the device's latency plus one AXI-Lite write and one poll of software overhead
(a few microseconds of Python per MMIO access). The emulated devices implement the same registers,
advanced by the cycle model (:class:`EmulatedGlobalTimer`), so the driver code path is the same everywhere.
numpy not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from resilq.errors import ResilqError

GTC_BASE = 0xF8F00200
GTC_SPAN = 0x20
COUNTER_LO = 0x00
COUNTER_HI = 0x04
CONTROL = 0x08
CONTROL_TIMER_ENABLE = 1 << 0
CONTROL_PRESCALER_LSB = 8
CONTROL_PRESCALER_MASK = 0xFF << CONTROL_PRESCALER_LSB


class TimerError(ResilqError):
    """The hardware timer is not running or cannot be read."""


class TimerRegisters(Protocol):
    """32-bit reads at offsets from the timer's base address (``pynq.MMIO`` and the emulated timers)."""

    def read(self, offset: int) -> int: ...


@dataclass(frozen=True)
class DeviceClocks:
    """The clocks a latency is converted with: the Cortex-A9 (the timer's source) and the PL (the accelerator)."""

    cpu_mhz: float
    pl_mhz: float

    @classmethod
    def of_board(cls, board) -> DeviceClocks:
        return cls(float(board.ps_mhz), float(board.pl_mhz))


class GlobalTimer:
    """The global timer, read-only: :meth:`ticks` and its frequency ``hz``."""

    def __init__(self, registers: TimerRegisters, clocks: DeviceClocks, source: str):
        self.registers = registers
        self.source = source
        control = int(registers.read(CONTROL))
        if not control & CONTROL_TIMER_ENABLE:
            raise TimerError(f"the global timer at {GTC_BASE:#x} is not running (control {control:#x}): Linux's "
                             "arm_global_timer normally enables it; no latency can be measured")
        prescaler = (control & CONTROL_PRESCALER_MASK) >> CONTROL_PRESCALER_LSB
        self.hz = clocks.cpu_mhz * 1e6 / 2 / (prescaler + 1)

    def ticks(self) -> int:
        for _ in range(8):
            hi = int(self.registers.read(COUNTER_HI))
            lo = int(self.registers.read(COUNTER_LO))
            if int(self.registers.read(COUNTER_HI)) == hi:
                return (hi << 32) | lo
        raise TimerError("the global timer's upper word kept changing between reads")

    def seconds(self, start: int, end: int) -> float:
        return (end - start) / self.hz


class EmulatedGlobalTimer:
    """The global timer's registers in an emulated device: it counts the device's modelled time only.

    ``advance(cycles)`` adds PL cycles (the cycle model's count of a run); the counter is
    ``floor(total_cycles * (cpu_hz / 2) / pl_hz)``, exactly, like the hardware counter would have moved.
    """

    def __init__(self, clocks: DeviceClocks):
        self.clocks = clocks
        self._ratio = Fraction(str(clocks.cpu_mhz)) / 2 / Fraction(str(clocks.pl_mhz))
        self._cycles = 0

    def advance(self, pl_cycles: int) -> None:
        self._cycles += int(pl_cycles)

    def read(self, offset: int) -> int:
        ticks = int(self._cycles * self._ratio)
        if offset == COUNTER_LO:
            return ticks & 0xFFFFFFFF
        if offset == COUNTER_HI:
            return (ticks >> 32) & 0xFFFFFFFF
        if offset == CONTROL:
            return CONTROL_TIMER_ENABLE  # enabled, prescaler 0 (as Linux leaves it)
        if 0 <= offset < GTC_SPAN and offset % 4 == 0:
            return 0
        raise TimerError(f"global timer access at {offset:#x}: not a word of its {GTC_SPAN:#x}-byte block")

    def timer(self, source: str = "emulated global timer (the cycle model)") -> GlobalTimer:
        return GlobalTimer(self, self.clocks, source)
