"""Device memory: what the driver needs from DDR, on the board and in emulation alike.

The driver asks its device for one contiguous block (:meth:`Device.allocate`), packs the network into
it (:func:`resilq.hls.packing.pack` with ``allocate=``), writes the block's *physical* address into the
pointer registers, and brackets every run with :meth:`DeviceBuffer.flush` (CPU caches -> DDR) and
:meth:`DeviceBuffer.invalidate` (DDR -> CPU). On a board the block is a ``pynq.allocate`` buffer;
in emulation it is host memory that a :class:`HostMemory` maps at made-up physical addresses, so the
emulated accelerator reads and writes it exactly where the pointer registers say. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from resilq.errors import ResilqError
from resilq.hls import imageformat as fmt

from .timer import GlobalTimer


class AddressError(ResilqError):
    """An address the accelerator was given lies outside the memory the host allocated."""


def _noop() -> None:
    return None


@dataclass
class DeviceBuffer:
    """A DDR block: its host view (uint8), the address the accelerator sees, and cache maintenance."""

    array: np.ndarray
    physical_address: int
    flush: Callable[[], None] = field(default=_noop, repr=False)
    invalidate: Callable[[], None] = field(default=_noop, repr=False)

    @property
    def nbytes(self) -> int:
        return int(self.array.size)


class Device(Protocol):
    """What :class:`resilq.deploy.driver.Accelerator` drives: 32-bit registers, DDR blocks and the hardware
    timer it measures runs with (:mod:`resilq.deploy.timer`)."""

    name: str

    def read(self, offset: int) -> int: ...

    def write(self, offset: int, value: int) -> None: ...

    def allocate(self, nbytes: int) -> DeviceBuffer: ...

    def timer(self) -> GlobalTimer: ...


def aligned_bytes(nbytes: int, align: int = fmt.ALIGN) -> np.ndarray:
    """A zeroed uint8 array of ``nbytes`` whose first byte is ``align``-byte aligned."""
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + nbytes]


class HostMemory:
    """Host arrays standing in for DDR, each mapped at a distinct physical address (bump allocation)."""

    #: First address handed out: inside the PYNQ-Z2's 512 MiB of DDR, like a CMA buffer would be.
    BASE = 0x1000_0000
    PAGE = 4096

    def __init__(self, base: int = BASE):
        self._next = base
        self.blocks: list[DeviceBuffer] = []

    def allocate(self, nbytes: int) -> DeviceBuffer:
        if nbytes < 1:
            raise ValueError(f"cannot allocate {nbytes} bytes")
        buf = DeviceBuffer(aligned_bytes(nbytes), self._next)
        self._next += -(-nbytes // self.PAGE) * self.PAGE
        self.blocks.append(buf)
        return buf

    def view(self, address: int, nbytes: int, name: str = "address") -> np.ndarray:
        """The ``nbytes`` of host memory at physical ``address`` (one block must hold all of them)."""
        for block in self.blocks:
            start = address - block.physical_address
            if 0 <= start and start + nbytes <= block.nbytes:
                return block.array[start:start + nbytes]
        held = ", ".join(f"{b.physical_address:#x}..{b.physical_address + b.nbytes:#x}" for b in self.blocks)
        raise AddressError(f"{name} {address:#x} (+{nbytes} bytes) is outside the allocated memory "
                           f"({held or 'nothing allocated'}): on a board this is a bus error and the "
                           "accelerator never finishes")

    def block_at(self, address: int, name: str = "address") -> DeviceBuffer:
        """The block containing ``address`` (the memory image a pointer register points into)."""
        for block in self.blocks:
            if 0 <= address - block.physical_address < block.nbytes:
                return block
        self.view(address, 1, name)  # raises with the full message
        raise AssertionError("unreachable")
