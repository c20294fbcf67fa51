"""A small, safe container for resilq's files: a zip holding one JSON manifest and raw ``.npy`` arrays.

Used by every resilq file kind (``.rq`` models, ``.nvf`` vulnerability files, deployment packages).
Reading never executes code: the manifest is JSON and arrays go through ``np.load(allow_pickle=False)``.
Corruption is caught by the zip CRCs and by checking every array against the dtype and shape the
manifest declares, so a damaged file gives a :class:`FormatError` that names the file and the problem,
never a crash deep inside numpy.

Hostile files cannot make a reader do unbounded work: the sizes a file declares (the file itself, the
manifest member, every array's shape in the manifest, every zip member's uncompressed size, every
``.npy`` header) are checked against the limits below *before* anything is read or decompressed, and
every member is then read as a stream that cannot yield more than its declared size (``zipfile`` stops
a deflate stream at the member's declared size and checks its CRC). A zip bomb, an ``.npy`` header
declaring 10^15 elements or a manifest nested 10^5 levels deep is refused at once, in bounded memory.
The limits are far above any network resilq can deploy (docs/security.md).
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

#: An archive file on disk.
MAX_FILE_BYTES = 1 << 30
#: A JSON manifest (an archive's member or a package's manifest.json).
MAX_MANIFEST_BYTES = 8 << 20
#: Nesting of JSON objects and arrays in a manifest.
MAX_JSON_DEPTH = 32
#: Arrays in one archive.
MAX_ARRAYS = 4096
#: Dimensions of one array.
MAX_NDIM = 8
#: The data of one array.
MAX_ARRAY_BYTES = 256 << 20
#: The data of all arrays of one archive (or ``.npz``).
MAX_TOTAL_BYTES = 1 << 30
#: An ``.npy`` header (numpy writes at most a few hundred bytes and reads at most 10,000 by default).
MAX_NPY_HEADER = 10_000


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
    _check_file_size(path, MAX_FILE_BYTES, f"a resilq {kind} file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a resilq {kind} file (not a valid zip container: {exc}); "
                          "the file is corrupt, truncated or of another format") from None
    with zf:
        try:
            info = zf.getinfo(MANIFEST)
        except KeyError:
            raise FormatError(f"{path}: no {MANIFEST} inside; not a resilq {kind} file") from None
        if info.file_size > MAX_MANIFEST_BYTES:
            raise FormatError(f"{path}: the manifest declares {info.file_size:,} bytes, more than the "
                              f"{MAX_MANIFEST_BYTES:,} a resilq manifest may have; refusing to decompress it")
        try:
            raw = zf.read(info)
        except _READ_ERRORS as exc:
            raise FormatError(f"{path}: the manifest is corrupt ({exc})") from None
        manifest = parse_json(raw, f"{path}: the manifest")
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
        if len(specs) > MAX_ARRAYS:
            raise FormatError(f"{path}: the manifest lists {len(specs):,} arrays, more than the {MAX_ARRAYS:,} "
                              "a resilq file may hold")
        total = 0
        for name, spec in specs.items():  # every declared size is checked before any array is read
            if not isinstance(spec, dict) or spec.get("dtype") not in _ALLOWED_DTYPES:
                raise FormatError(f"{path}: the manifest entry of array {name!r} is malformed: {spec!r}")
            total += _declared_bytes(path, name, np.dtype(spec["dtype"]), spec.get("shape"))
        if total > MAX_TOTAL_BYTES:
            raise FormatError(f"{path}: the manifest declares {total:,} bytes of arrays, more than the "
                              f"{MAX_TOTAL_BYTES:,} a resilq file may hold")
        arrays = {name: _read_array(zf, path, name, spec) for name, spec in specs.items()}
    return header, arrays, version


def _read_array(zf: zipfile.ZipFile, path: Path, name: str, spec: dict) -> np.ndarray:
    member = ARRAY_DIR + name + ".npy"
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise FormatError(f"{path}: array {name!r} is listed in the manifest but missing from the file") from None
    return read_npy_member(zf, info, path, name, (np.dtype(spec["dtype"]), tuple(spec["shape"])))


# ---------------------------------------------------------------------------------------------- bounded readers
def _check_file_size(path: Path, limit: int, what: str) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size > limit:
        raise FormatError(f"{path}: {size:,} bytes, more than the {limit:,} {what} may have")


def _declared_bytes(where: Any, name: str, dtype: np.dtype, shape: Any) -> int:
    """Bytes of an array of ``shape`` (validated: a short list of non-negative ints), within the limits."""
    if (not isinstance(shape, (list, tuple)) or len(shape) > MAX_NDIM
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise FormatError(f"{where}: array {name!r} has a malformed shape {shape!r} (at most {MAX_NDIM} "
                          "non-negative integer dimensions)")
    nbytes = dtype.itemsize
    for d in shape:  # Python ints: no overflow, whatever the dimensions
        nbytes *= d
    if nbytes > MAX_ARRAY_BYTES:
        raise FormatError(f"{where}: array {name!r} declares shape {list(shape)} ({nbytes:,} bytes), more than the "
                          f"{MAX_ARRAY_BYTES:,} bytes a resilq array may have")
    return nbytes


def read_npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str,
                    expect: tuple[np.dtype, tuple[int, ...]] | None = None) -> np.ndarray:
    """One ``.npy`` member of a zip, read in bounded memory.

    The member's declared size, then its ``.npy`` header (dtype: a plain numeric one; shape: within the
    limits; data size: exactly what the member holds; and ``expect``, when given) are checked before its
    data is read, straight into the array (no intermediate copy).
    """
    where = f"{path}: array {name!r}"
    if info.file_size > MAX_ARRAY_BYTES + MAX_NPY_HEADER:
        raise FormatError(f"{where} declares {info.file_size:,} bytes, more than the {MAX_ARRAY_BYTES:,} a "
                          "resilq array may have; refusing to decompress it")
    try:
        with zf.open(info) as fh:
            dtype, shape, fortran, header_bytes = _npy_header(fh, where)
            nbytes = _declared_bytes(path, name, dtype, shape)
            if expect is not None and (dtype != expect[0] or tuple(shape) != tuple(expect[1])):
                raise FormatError(f"{where} is {dtype.name}{list(shape)}, the manifest says "
                                  f"{expect[0].name}{list(expect[1])}")
            if info.file_size != header_bytes + nbytes:
                raise FormatError(f"{where}: its header declares {nbytes:,} bytes of data but the member holds "
                                  f"{info.file_size - header_bytes:,}; the file is truncated or corrupt")
            arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
            view = memoryview(arr.reshape(-1).view(np.uint8))
            done = 0
            while done < nbytes:
                n = fh.readinto(view[done:])
                if not n:
                    raise FormatError(f"{where} is truncated ({done:,} of {nbytes:,} bytes)")
                done += n
    except _READ_ERRORS as exc:
        raise FormatError(f"{where} is corrupt ({exc})") from None
    return arr.T if fortran else arr


def _npy_header(fh, where: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """Parse an ``.npy`` header from a stream: (dtype, shape, fortran_order, bytes before the data)."""
    from numpy.lib import format as npy

    magic = fh.read(8)
    if len(magic) != 8 or magic[:6] != npy.MAGIC_PREFIX or magic[6] not in (1, 2, 3):
        raise FormatError(f"{where} is not an .npy array (bad magic {magic[:8]!r})")
    size_bytes = 2 if magic[6] == 1 else 4
    raw = fh.read(size_bytes)
    if len(raw) != size_bytes:
        raise FormatError(f"{where}: truncated .npy header")
    length = int.from_bytes(raw, "little")
    if length > MAX_NPY_HEADER:
        raise FormatError(f"{where}: .npy header of {length:,} bytes, more than the {MAX_NPY_HEADER:,} accepted")
    text = fh.read(length)
    if len(text) != length:
        raise FormatError(f"{where}: truncated .npy header")
    reader = npy.read_array_header_1_0 if magic[6] == 1 else npy.read_array_header_2_0
    try:
        shape, fortran, dtype = reader(io.BytesIO(raw + text))
    except (ValueError, SyntaxError, TypeError) as exc:
        raise FormatError(f"{where}: malformed .npy header ({exc})") from None
    if dtype.hasobject or dtype.name not in _ALLOWED_DTYPES:
        raise FormatError(f"{where} has dtype {dtype}, which resilq files do not store")
    return dtype, tuple(shape), bool(fortran), 8 + size_bytes + length


def read_npz(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of an ``.npz`` file (as ``np.savez`` writes it), read within the limits."""
    path = Path(path)
    _check_file_size(path, MAX_FILE_BYTES, "an .npz file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a valid .npz file ({exc})") from None
    with zf:
        infos = {}
        for name in names:
            try:
                infos[name] = zf.getinfo(name + ".npy")
            except KeyError:
                raise FormatError(f"{path}: array {name!r} is missing") from None
        total = sum(i.file_size for i in infos.values())
        if total > MAX_TOTAL_BYTES + len(infos) * MAX_NPY_HEADER:
            raise FormatError(f"{path}: its arrays declare {total:,} bytes, more than the {MAX_TOTAL_BYTES:,} "
                              "accepted; refusing to decompress them")
        return {name: read_npy_member(zf, info, path, name) for name, info in infos.items()}


def parse_json(raw: bytes | str, where: str) -> Any:
    """``json.loads`` with a clear error, and at most :data:`MAX_JSON_DEPTH` levels of nesting."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise FormatError(f"{where} is nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:
        raise FormatError(f"{where} is not valid JSON ({exc})") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise FormatError(f"{where} is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return value


def read_json_file(path: str | os.PathLike, what: str = "manifest") -> Any:
    """A JSON file of at most :data:`MAX_MANIFEST_BYTES`, parsed by :func:`parse_json`."""
    path = Path(path)
    _check_file_size(path, MAX_MANIFEST_BYTES, f"a {what}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_json(raw, str(path))
