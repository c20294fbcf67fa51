"""The board side: the accelerator's ``pynq.DefaultIP`` driver and opening an overlay. Imports pynq.

Importing this module registers :class:`ResilqAccelIP` for the accelerator's VLNV, so
``pynq.Overlay("resilq.bit").resilq_accel_0`` is a ``ResilqAccelIP``: a :class:`resilq.deploy.memory.Device`
(32-bit ``read``/``write`` through pynq's MMIO, DDR blocks from ``pynq.allocate``) that
:class:`resilq.deploy.driver.Accelerator` drives exactly as it drives the emulator. Its constructor
refuses an IP whose VLNV or register layout (from the overlay's ``.hwh``, as pynq parsed it) differs
from :mod:`resilq.hls.regmap`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pynq

from resilq.errors import FormatError, MismatchError

from .hwh import VLNV, accelerator_in_hwh, check_ip, ip_from_description
from .memory import DeviceBuffer
from .timer import GTC_BASE, GTC_SPAN, DeviceClocks, GlobalTimer


class ResilqAccelIP(pynq.DefaultIP):
    """pynq driver of the resilq accelerator (bound by VLNV when an overlay is loaded)."""

    bindto = [VLNV]
    name = "board"
    #: The board's CPU and PL clocks; open_overlay sets them from the package's board file.
    clocks: DeviceClocks | None = None

    def __init__(self, description: dict):
        check_ip(ip_from_description(description))
        super().__init__(description)
        self.description = description

    def read(self, offset: int = 0) -> int:
        return int(self.mmio.read(offset))

    def write(self, offset: int, value: int) -> None:
        self.mmio.write(offset, int(value) & 0xFFFFFFFF)  # pynq's MMIO takes a Python int only

    def allocate(self, nbytes: int) -> DeviceBuffer:
        """A physically contiguous DDR block (``pynq.allocate`` on this IP's device)."""
        buf = pynq.allocate(shape=(nbytes,), dtype=np.uint8, target=self.device)
        return DeviceBuffer(buf, int(buf.physical_address), buf.flush, buf.invalidate)

    def timer(self) -> GlobalTimer:
        """The Zynq global timer, read through pynq's MMIO on this IP's device (pynq.ps reads the SLCR the same way)."""
        from .emulator import default_clocks

        return GlobalTimer(pynq.MMIO(GTC_BASE, GTC_SPAN, device=self.device), self.clocks or default_clocks(),
                           "Zynq global timer (UG585), read by the driver around AP_START .. AP_DONE")


def open_overlay(bitfile: str | Path, download: bool = True, clocks: DeviceClocks | None = None) -> ResilqAccelIP:
    """Load the overlay ``bitfile`` (its ``.hwh`` beside it) and return its accelerator.

    The ``.hwh`` is checked first, with this driver's own parser, so a wrong overlay is refused before
    its bitstream is downloaded.
    """
    bitfile = Path(bitfile)
    hwh = bitfile.with_suffix(".hwh")
    if not bitfile.is_file() or not hwh.is_file():
        raise FormatError(f"the overlay needs {bitfile} and {hwh} (make -C overlays BOARD=pynq-z2 builds both)")
    expected = accelerator_in_hwh(hwh)
    overlay = pynq.Overlay(str(bitfile), download=download)
    ip = getattr(overlay, expected.instance, None)
    if not isinstance(ip, ResilqAccelIP):
        raise MismatchError(f"pynq did not bind {expected.instance!r} of {bitfile} to the resilq driver "
                            f"(got {type(ip).__name__}); is its VLNV {VLNV}?")
    ip.clocks = clocks
    return ip
