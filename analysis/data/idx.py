"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


#: The data of one IDX file (MNIST's and Fashion-MNIST's training images are 47 MB each).
MAX_IDX_BYTES = 256 << 20
#: Dimensions of one IDX array.
MAX_IDX_NDIM = 8


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a numpy array, validating its header and length.

    The header is read first and the size it declares checked against :data:`MAX_IDX_BYTES`; the data is
    then read (decompressed as a stream) straight into the array, never more than declared, so neither a
    header with huge dimensions nor a gzip bomb costs more memory than a genuine file of that shape.
    """
    path = Path(path)
    gz = path.suffix == ".gz"
    what = f"{'gzip-compressed ' if gz else ''}IDX"
    try:
        with (gzip.open if gz else open)(path, "rb") as fh:
            return _read_stream(fh, path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot be read as {what} ({exc})") from None


def _read_stream(fh, path: Path) -> np.ndarray:
    magic = fh.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {magic[:4].hex() or 'empty'}; "
                           "expected 00 00 <type> <ndim>)")
    ndim = magic[3]
    if ndim > MAX_IDX_NDIM:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions (at most {MAX_IDX_NDIM} accepted)")
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw)
    dtype = np.dtype(_DTYPES[magic[2]])
    expected = dtype.itemsize
    for d in dims:  # Python ints: the product cannot overflow
        expected *= d
    if expected > MAX_IDX_BYTES:
        raise DatasetError(f"{path}: IDX header declares shape {dims} ({expected:,} bytes of data), more than the "
                           f"{MAX_IDX_BYTES:,} bytes accepted; the file is corrupt or not a dataset resilq reads")
    out = np.empty(dims, dtype=dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    done = 0
    while done < expected:
        n = fh.readinto(view[done:])
        if not n:
            break
        done += n
    trailing = fh.read(1)
    if done != expected or trailing:
        held = f"{done:,}" if not trailing else f"more than {expected:,}"
        raise DatasetError(f"{path}: IDX header declares shape {dims} ({expected:,} bytes of data) "
                           f"but the file holds {held}; the file is truncated or corrupt")
    return out


def find_file(folders: list[Path], stem: str) -> Path:
    """``stem`` or ``stem.gz`` in the first of ``folders`` that has it."""
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(f"{folders[0]}: missing {stem} (or {stem}.gz), the standard IDX file; "
                       "put the dataset's four IDX files in this directory")
