"""glibc's allocator set for a process that allocates and frees large numpy temporaries at a high rate.

The fault simulator's propagation builds and drops many arrays of 0.1-100 MB per second (gathered golden
columns, changed accumulators, output maps). glibc serves an allocation above its *mmap threshold* with a
fresh ``mmap``, whose pages fault in (and are zeroed) on first touch and go back to the kernel on ``free``.
By default the threshold adapts upwards as such blocks are freed (up to 32 MiB), but it stops adapting once
any of the thresholds is set explicitly -- and Dask's nanny starts every worker process with
``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``), so in a Dask worker every
array above 128 KiB is an ``mmap``: measured on AlexNet-CIFAR (128 faults x 1,000 images, one process
started with Dask's setting, a campaign running beside it, so the rates are indicative),
12.1 s of system time beside 11.6 s of user time and 6,110 faulty inferences/s, against 2.8 s and 10,993/s
with the thresholds below.

:func:`tune_for_arrays` raises the mmap threshold to glibc's maximum (32 MiB) and keeps up to 256 MiB of
freed heap for reuse. It is called where resilq owns the process: its Dask worker tasks and its CLI's
campaign and analysis commands; a library user's process is left as it is. Elsewhere than on glibc (musl,
macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: glibc refuses an mmap threshold above half its heap size (HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit).
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20

_done = False


def tune_for_arrays() -> bool:
    """Set the thresholds once per process; True when glibc accepted both (False: not glibc, or refused)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu = libc.gnu_get_libc_version  # glibc only: musl has mallopt as a no-op stub and no such symbol
    except (OSError, AttributeError):
        return False
    del gnu
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
