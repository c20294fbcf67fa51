"""Crafting hostile files for the tests: zips with any declared sizes, deflate bombs, .npy headers that lie,
and a child process that reads a file and reports its peak memory."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

_MB = bytes(1 << 20)


def deflate_zeros(megabytes: int, prefix: bytes = b"") -> tuple[bytes, int, int]:
    """A raw deflate stream of ``prefix`` + ``megabytes`` MiB of zeros: (stream, crc32, uncompressed size).

    After a full flush deflate restarts from an empty state, so one compressed MiB repeats exactly: a
    1.5 GB stream costs 1.5 MB and no time to build.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(_MB) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    crc = zlib.crc32(prefix)
    for _ in range(megabytes):
        crc = zlib.crc32(_MB, crc)
    return head + block * megabytes + tail, crc, len(prefix) + megabytes * len(_MB)


def write_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip of deflated members ``(name, raw deflate stream, crc32, declared uncompressed size)``."""
    local, central = bytearray(), bytearray()
    for name, stream, crc, size in members:
        offset = len(local)
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(stream), size)
        local += struct.pack("<I", 0x04034B50) + fields + struct.pack("<HH", len(name), 0) + name.encode() + stream
        central += (struct.pack("<IH", 0x02014B50, 20) + fields
                    + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset) + name.encode())
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def deflated(data: bytes) -> tuple[bytes, int, int]:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(), zlib.crc32(data), len(data)


def npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """A version-1 ``.npy`` header declaring ``dtype`` and ``shape`` (whatever data follows)."""
    text = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
t = time.monotonic()
import importlib
module, func = sys.argv[1].rsplit(".", 1)
reader = getattr(importlib.import_module(module), func)
from resilq.errors import ResilqError
try:
    reader(sys.argv[2])
    error = None
except ResilqError as exc:
    error = f"{type(exc).__name__}: {exc}"
# VmHWM is this process image's own peak: Linux carries ru_maxrss over execve from the forking parent
# (a big pytest process would inflate it), but a new image starts a new memory map and a new VmHWM.
try:
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "seconds": time.monotonic() - t, "peak_mb": peak_kb / 1024}))
"""


def read_in_child(reader: str, path: Path) -> dict:
    """Run ``reader`` (dotted name) on ``path`` in a fresh process: its error (or None), time, peak RSS."""
    env = {**os.environ, "RESILQ_QUIET": "1"}
    out = subprocess.run([sys.executable, "-c", _CHILD, reader, str(path), str(Path(__file__).parent)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
