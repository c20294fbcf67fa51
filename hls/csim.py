"""C-simulation: the accelerator's own C++ source compiled by g++ and driven through ctypes.

:func:`build_library` compiles ``hls/src/accel_top.cpp`` (the synthesizable top function and its
header-only kernels) with the C-sim bridge (``csim_bridge.cpp``: the AXI-Lite register file and DDR
around the top function) and the arithmetic entry points (``csim_arith.cpp``) into a shared library,
once per configuration and source version, in a cache directory. :class:`CsimDevice` exposes it like a
board: ``read(offset)``/``write(offset, value)`` on 32-bit registers (pynq ``MMIO`` style) and a block
of DDR at a physical address. Only integers cross the boundary (int8/int32/uint32 buffers).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resilq.errors import ResilqError

from . import INCLUDE_DIR, SRC_DIR, codegen
from .config import DEFAULT_CONFIG, AccelConfig

SOURCES = ("accel_top.cpp", "csim_bridge.cpp", "csim_arith.cpp")
CXXFLAGS = ("-std=c++14", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Wno-unused-label")
#: Extra compiler flags from the environment, e.g. "-fsanitize=address,undefined -g" to run the C-sim
#: under the sanitizers (then start Python with LD_PRELOAD=$(g++ -print-file-name=libasan.so)).
EXTRA_FLAGS_ENV = "RESILQ_CSIM_CXXFLAGS"
#: Version of the cache layout and key: bump it when what goes into :func:`cache_key` changes, so no library
#: built under an older key is ever reused.
CACHE_FORMAT = 2
#: The physical address the C-sim maps its DDR block to (any 64-byte aligned value works).
DEFAULT_PHYS_BASE = 0x1000_0000


class CompilerNotFoundError(ResilqError):
    """g++ (or $CXX) is not installed: C-simulation needs a C++14 compiler."""


class CompileError(ResilqError):
    """The accelerator sources did not compile."""


class CsimError(ResilqError):
    """The simulated accelerator could not run (e.g. a pointer register outside the attached memory)."""


def compiler() -> str:
    """Path of the C++ compiler ($CXX or g++), or :class:`CompilerNotFoundError` saying what to install."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise CompilerNotFoundError(f"C-simulation needs a C++14 compiler, and {name!r} is not on PATH: install g++ "
                                    "(Debian/Ubuntu: apt-get install g++) or point $CXX at one")
    return path


def cache_root() -> Path:
    env = os.environ.get("RESILQ_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "resilq"
    return base / "csim"


def source_files() -> list[Path]:
    headers = sorted((INCLUDE_DIR / "resilq").glob("*.hpp"))
    return headers + [SRC_DIR / s for s in SOURCES]


def cxxflags() -> list[str]:
    return [*CXXFLAGS, *os.environ.get(EXTRA_FLAGS_ENV, "").split()]


def cache_key(config: AccelConfig, cxx: str) -> str:
    """SHA-256 of everything the library is made of: the cache format, the exact bytes of every source and
    header, the generated ``accel_config.hpp``, the compiler command line and the compiler's version.

    A configuration that differs in any value, or one whose generated header differs, gets another key,
    so it can never load a library built for something else.
    """
    h = hashlib.sha256()

    def part(label: str, data: bytes) -> None:  # length-prefixed: no two inputs concatenate to the same bytes
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    part("format", str(CACHE_FORMAT).encode())
    for path in source_files():
        part(path.name, path.read_bytes())
    part("accel_config.hpp", codegen.render_config(config).encode())
    part("cxx", cxx.encode())
    part("flags", "\0".join(cxxflags()).encode())
    part("sources", "\0".join(SOURCES).encode())
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    part("version", version.encode())
    return h.hexdigest()


def build_library(config: AccelConfig = DEFAULT_CONFIG, cache: Path | None = None) -> Path:
    """Compile the C-sim library for ``config`` (cached by :func:`cache_key`); returns its path.

    The configuration is validated again from its values first (a config object altered after
    construction is refused before g++ sees it).
    """
    config = AccelConfig.from_dict(config.as_dict())
    cxx = compiler()
    root = cache or cache_root()
    out_dir = root / f"{config.tag}-{cache_key(config, cxx)[:32]}"
    lib = out_dir / "libresilq_csim.so"
    if lib.exists():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    codegen.write_config(config, out_dir)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    cmd = [cxx, *cxxflags(), f"-I{INCLUDE_DIR}", f"-I{out_dir}", *[str(SRC_DIR / s) for s in SOURCES], "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise CompileError(f"g++ failed on the accelerator sources ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    (out_dir / "build.log").write_text(" ".join(cmd) + "\n" + proc.stderr)
    os.replace(tmp, lib)  # atomic: concurrent builders never see a half-written library
    return lib


def _ptr(array: np.ndarray, ctype) -> ctypes._Pointer:
    return array.ctypes.data_as(ctypes.POINTER(ctype))


#: The m_axi ports in resilq::probe::Port order (resilq/probe.hpp).
PORTS = ("ctrl", "weights", "act")


@dataclass(frozen=True)
class PortExtent:
    """One past the highest element index an m_axi port read / wrote in a run (0: untouched)."""

    reads: int
    writes: int

    @property
    def end(self) -> int:
        return max(self.reads, self.writes)


@dataclass
class Memory:
    """The DDR block attached to the device: a host array and the physical address it stands for."""

    array: np.ndarray  # uint8
    phys: int


class CsimDevice:
    """One simulated accelerator (one per configuration per process, like one IP on a chip).

    ``read``/``write`` are the AXI-Lite register accesses, ``attach`` maps host memory as DDR. The
    register-level run sequence lives in :mod:`.host` and works unchanged on a board's MMIO.
    """

    _instances: dict[Path, CsimDevice] = {}

    def __init__(self, lib_path: Path, config: AccelConfig):
        self.config = config
        self.lib_path = lib_path
        lib = ctypes.CDLL(str(lib_path))
        lib.resilq_csim_attach.argtypes = [ctypes.POINTER(ctypes.c_uint8), ctypes.c_uint64, ctypes.c_uint64]
        lib.resilq_csim_attach.restype = ctypes.c_int
        lib.resilq_csim_write.argtypes = [ctypes.c_uint32, ctypes.c_uint32]
        lib.resilq_csim_write.restype = None
        lib.resilq_csim_read.argtypes = [ctypes.c_uint32]
        lib.resilq_csim_read.restype = ctypes.c_uint32
        lib.resilq_csim_error.restype = ctypes.c_char_p
        lib.resilq_csim_config_id.restype = ctypes.c_uint32
        lib.resilq_csim_reset.restype = None
        lib.resilq_csim_extent.argtypes = [ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint64),
                                           ctypes.POINTER(ctypes.c_uint64)]
        lib.resilq_csim_extent.restype = ctypes.c_int
        if lib.resilq_csim_config_id() != config.config_id:
            raise CsimError(f"{lib_path} was built for configuration {lib.resilq_csim_config_id():#010x}, "
                            f"not {config.config_id:#010x}")
        self._lib = lib
        self.memory: Memory | None = None
        self.reset()

    @classmethod
    def open(cls, config: AccelConfig = DEFAULT_CONFIG) -> CsimDevice:
        """The process's device for ``config``, compiling the library on first use."""
        path = build_library(config)
        if path not in cls._instances:
            cls._instances[path] = cls(path, config)
        return cls._instances[path]

    @property
    def lib(self) -> ctypes.CDLL:
        return self._lib

    def reset(self) -> None:
        """Power-on reset: registers cleared, memory detached, one-shot fault state cleared."""
        self._lib.resilq_csim_reset()
        self.memory = None

    def attach(self, array: np.ndarray, phys: int = DEFAULT_PHYS_BASE) -> Memory:
        """Use ``array`` (uint8, C-contiguous, 64-byte aligned) as the DDR block at address ``phys``."""
        if array.dtype != np.uint8 or not array.flags.c_contiguous or array.ctypes.data % 64:
            raise CsimError("the DDR block must be a C-contiguous, 64-byte aligned uint8 array")
        if self._lib.resilq_csim_attach(_ptr(array, ctypes.c_uint8), phys, array.size) != 0:
            raise CsimError(f"cannot attach {array.size} bytes at {phys:#x} (the address must be 64-byte aligned)")
        self.memory = Memory(array, phys)  # keeps the array alive while the library holds its pointer
        return self.memory

    def write(self, offset: int, value: int) -> None:
        self._lib.resilq_csim_write(offset, value & 0xFFFFFFFF)
        if offset == 0 and value & 1:
            error = self._lib.resilq_csim_error().decode()
            if error:
                raise CsimError(f"the accelerator did not start: {error}")

    def read(self, offset: int) -> int:
        return int(self._lib.resilq_csim_read(offset))

    def extents(self) -> dict[str, PortExtent]:
        """What each m_axi port touched in the last run (resilq/probe.hpp), in elements of its type."""
        out = {}
        for index, port in enumerate(PORTS):
            reads, writes = ctypes.c_uint64(0), ctypes.c_uint64(0)
            if self._lib.resilq_csim_extent(index, ctypes.byref(reads), ctypes.byref(writes)) != 0:
                raise CsimError(f"the C-sim library has no m_axi port {index}")
            out[port] = PortExtent(int(reads.value), int(writes.value))
        return out
