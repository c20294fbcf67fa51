"""A small, safe container for resilq's files: a zip holding one JSON manifest and raw ``.npy`` arrays.

Used by every resilq file kind (``.rq`` models, ``.nvf`` vulnerability files, deployment packages).
Reading never executes code: the manifest is JSON and arrays go through ``np.load(allow_pickle=False)``.
Corruption is caught by the zip CRCs and by checking every array against the dtype and shape the
manifest declares, so a damaged file gives a :class:`FormatError` that names the file and the problem,
never a crash deep inside numpy.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FormatError

MANIFEST = "manifest.json"
ARRAY_DIR = "arrays/"
#: What a damaged zip member can raise while it is read.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError)
_ALLOWED_DTYPES = {"int8", "uint8", "int16", "int32", "int64", "uint32", "float32", "float64", "bool"}


def write_archive(path: str | os.PathLike, kind: str, version: int, header: Mapping[str, Any],
                  arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``header`` (JSON-serialisable) and ``arrays`` atomically to ``path``."""
    path = Path(path)
    specs = {}
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype.name not in _ALLOWED_DTYPES:
            raise TypeError(f"array {name!r} has dtype {arr.dtype}, which resilq files do not store")
        specs[name] = {"dtype": arr.dtype.name, "shape": list(arr.shape)}
    manifest = {"format": "resilq", "kind": kind, "version": version, "header": header, "arrays": specs}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(ARRAY_DIR + name + ".npy", buf.getvalue())
    os.replace(tmp, path)
    return path


def read_archive(path: str | os.PathLike, kind: str, versions: tuple[int, ...]) -> tuple[dict, dict[str, np.ndarray], int]:
    """Read and validate a resilq archive of ``kind``; return ``(header, arrays, version)``."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    if path.is_dir():
        raise FormatError(f"{path}: is a directory, expected a resilq {kind} file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a resilq {kind} file (not a valid zip container: {exc}); "
                          "the file is corrupt, truncated or of another format") from None
    with zf:
        try:
            raw = zf.read(MANIFEST)
        except KeyError:
            raise FormatError(f"{path}: no {MANIFEST} inside; not a resilq {kind} file") from None
        except _READ_ERRORS as exc:
            raise FormatError(f"{path}: the manifest is corrupt ({exc})") from None
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise FormatError(f"{path}: the manifest is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != "resilq":
            raise FormatError(f"{path}: the manifest does not describe a resilq file")
        if manifest.get("kind") != kind:
            raise FormatError(f"{path}: is a resilq {manifest.get('kind')!r} file, expected a {kind!r} file")
        version = manifest.get("version")
        if version not in versions:
            raise FormatError(f"{path}: {kind} format version {version!r} is not supported by this resilq "
                              f"(supported: {', '.join(map(str, versions))}); upgrade resilq or re-export the file")
        specs = manifest.get("arrays")
        header = manifest.get("header")
        if not isinstance(specs, dict) or not isinstance(header, dict):
            raise FormatError(f"{path}: the manifest lacks its 'header' or 'arrays' section")
        arrays = {name: _read_array(zf, path, name, spec) for name, spec in specs.items()}
    return header, arrays, version


def _read_array(zf: zipfile.ZipFile, path: Path, name: str, spec: Any) -> np.ndarray:
    member = ARRAY_DIR + name + ".npy"
    if not isinstance(spec, dict) or spec.get("dtype") not in _ALLOWED_DTYPES or not isinstance(spec.get("shape"), list):
        raise FormatError(f"{path}: the manifest entry of array {name!r} is malformed: {spec!r}")
    try:
        data = zf.read(member)
    except KeyError:
        raise FormatError(f"{path}: array {name!r} is listed in the manifest but missing from the file") from None
    except _READ_ERRORS as exc:
        raise FormatError(f"{path}: array {name!r} is corrupt ({exc})") from None
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path}: array {name!r} cannot be decoded ({exc})") from None
    if arr.dtype.name != spec["dtype"] or list(arr.shape) != spec["shape"]:
        raise FormatError(f"{path}: array {name!r} is {arr.dtype.name}{list(arr.shape)}, "
                          f"the manifest says {spec['dtype']}{spec['shape']}")
    return arr
