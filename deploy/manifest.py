"""The schema of a deployment package's ``manifest.json``, checked before any value is used.

A package comes from someone else and the board runs it as root, so every key :mod:`.package`,
:mod:`.cli` and :mod:`.build` read is checked here for presence, type and range, and every file name
for staying inside the package folder (docs/security.md). :func:`check_manifest` is also what
``resilq package --out`` uses to decide whether an existing folder is a package it may replace.
Standard library only.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from resilq.archive import read_json_file
from resilq.errors import FormatError
from resilq.validation import MAX_BATCH, MAX_COUNT, NAME, check_int, check_mapping, check_number, check_str

MANIFEST = "manifest.json"
FORMAT = 2  # 2: the board's ps_mhz (the global timer's clock) in the manifest
#: What ``resilq package`` writes at the top of a package folder (nothing else may be there when it replaces one).
PACKAGE_ENTRIES = frozenset({MANIFEST, "model.rq", "README.txt", "__main__.py", "overlay", "data.npz", "lib"})

_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_VLNV = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+){3}")
#: A relative file name inside the package: plain components, no ``..``, no absolute path, no backslash.
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

TOP_KEYS = ("format", "resilq_version", "created", "model", "accelerator", "config_id", "vlnv", "batch", "board",
            "requirements", "overlay", "data", "lib")


def package_file(package: Path, name: Any, what: str) -> Path:
    """``package / name`` for a relative name from the manifest that stays inside the package (symlinks resolved)."""
    check_str(name, what, error=FormatError)
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or not all(_PART.fullmatch(p) for p in parts):
        raise FormatError(f"{what} {name!r} is not a plain relative file name inside the package")
    path = package.joinpath(*parts)
    root = package.resolve()
    if path.exists() and not path.resolve().is_relative_to(root):
        raise FormatError(f"{what} {name!r} leads outside the package ({path.resolve()})")
    return path


def check_manifest(manifest: Any, source: Path | str) -> dict[str, Any]:
    """``manifest`` if it has the package schema (every key present, every value of its type and range)."""
    src = str(source)
    m = check_mapping(manifest, src, TOP_KEYS, error=FormatError)
    check_int(m["format"], f"{src}: format", 0, 1 << 16, FormatError)
    check_str(m["resilq_version"], f"{src}: resilq_version", _VERSION, FormatError)
    check_str(m["created"], f"{src}: created", error=FormatError)
    model = check_mapping(m["model"], f"{src}: model", ("file", "name", "hash"), error=FormatError)
    check_str(model["file"], f"{src}: model.file", error=FormatError)
    check_str(model["name"], f"{src}: model.name", error=FormatError)
    check_str(model["hash"], f"{src}: model.hash", _HEX64, FormatError)
    check_mapping(m["accelerator"], f"{src}: accelerator", closed=False, error=FormatError)  # AccelConfig.from_dict
    check_int(m["config_id"], f"{src}: config_id", 0, 0xFFFFFFFF, FormatError)
    check_str(m["vlnv"], f"{src}: vlnv", _VLNV, FormatError)
    check_int(m["batch"], f"{src}: batch", 1, MAX_BATCH, FormatError)
    board = check_mapping(m["board"], f"{src}: board", ("name", "part", "pl_mhz", "ps_mhz", "pynq_image"),
                          error=FormatError)
    check_str(board["name"], f"{src}: board.name", NAME, FormatError)
    check_str(board["part"], f"{src}: board.part", error=FormatError)
    check_number(board["pl_mhz"], f"{src}: board.pl_mhz", 1.0, 1000.0, FormatError)
    check_number(board["ps_mhz"], f"{src}: board.ps_mhz", 1.0, 2000.0, FormatError)
    check_str(board["pynq_image"], f"{src}: board.pynq_image", _VERSION, FormatError)
    req = check_mapping(m["requirements"], f"{src}: requirements", ("python", "numpy", "pynq"), error=FormatError)
    for key in ("python", "numpy", "pynq"):
        check_str(req[key], f"{src}: requirements.{key}", _VERSION, FormatError)
    if m["overlay"] is not None:
        ov = check_mapping(m["overlay"], f"{src}: overlay", ("bit", "hwh", "vlnv", "instance", "base_address",
                                                             "sha256"), error=FormatError)
        for key in ("bit", "hwh"):
            check_str(ov[key], f"{src}: overlay.{key}", error=FormatError)
        sums = check_mapping(ov["sha256"], f"{src}: overlay.sha256", ("bit", "hwh"), error=FormatError)
        for key in ("bit", "hwh"):
            check_str(sums[key], f"{src}: overlay.sha256.{key}", _HEX64, FormatError)
    if m["data"] is not None:
        data = check_mapping(m["data"], f"{src}: data", ("file", "dataset", "split", "offset", "images", "sha256"),
                             error=FormatError)
        check_str(data["file"], f"{src}: data.file", error=FormatError)
        check_str(data["dataset"], f"{src}: data.dataset", NAME, FormatError)
        check_str(data["split"], f"{src}: data.split", re.compile("train|test"), FormatError)
        check_int(data["offset"], f"{src}: data.offset", 0, MAX_COUNT, FormatError)
        check_int(data["images"], f"{src}: data.images", 1, MAX_COUNT, FormatError)
        check_str(data["sha256"], f"{src}: data.sha256", _HEX64, FormatError)
    if not isinstance(m["lib"], list) or not all(isinstance(f, str) for f in m["lib"]):
        raise FormatError(f"{src}: lib must be a list of file names")
    return m


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` (a package's ``manifest.json``), parsed and checked against the schema."""
    if not path.is_file():
        raise FormatError(f"{path.parent}: not a resilq deployment package (no {MANIFEST}; create one with "
                          "resilq package)")
    manifest = read_json_file(path, "package manifest")  # bounded size and nesting, before parsing
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise FormatError(f"{path}: package format {found!r}, this resilq reads {FORMAT}")
    return check_manifest(manifest, path)
