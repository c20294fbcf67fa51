"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DatasetError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a numpy array, validating its header and length."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot be read as {'gzip-compressed ' if opener is gzip.open else ''}IDX ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; "
                           "expected 00 00 <type> <ndim>)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{path}: IDX header declares shape {dims} ({expected} bytes of data) "
                           f"but the file holds {len(data) - header}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def find_file(folders: list[Path], stem: str) -> Path:
    """``stem`` or ``stem.gz`` in the first of ``folders`` that has it."""
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(f"{folders[0]}: missing {stem} (or {stem}.gz), the standard IDX file; "
                       "put the dataset's four IDX files in this directory")
