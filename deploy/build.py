"""``resilq package``: write a deployment package (host side; the layout is in :mod:`resilq.deploy.package`).

The model is mapped onto the accelerator and checked against the board's budget first (a model the
accelerator cannot run is refused here, naming the layer and limit, not on the board). The overlay is
taken from ``overlays/<board>/`` when it has been built and checked against the register map; without
it the package says so and runs on the emulator only. The driver code is the import closure of the
board-side commands (:mod:`resilq.deploy.shipping`), copied, plus the board file and its JSON snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from resilq import __version__
from resilq.boards import Board, write_board_json
from resilq.errors import FormatError, ParameterError
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.mapping import plan_model
from resilq.hls.resources import check_budget
from resilq.ir import load_model
from resilq.validation import MAX_BATCH, check_int

from . import shipping
from .hwh import VLNV, accelerator_in_hwh
from .manifest import PACKAGE_ENTRIES, read_manifest
from .package import (
    DATA_FILE,
    FORMAT,
    MANIFEST,
    MODEL_FILE,
    NOT_BUILT,
    OVERLAY_DIR,
    OVERLAY_NAME,
    BundledData,
    sha256,
    write_bundled_data,
)

MAIN_SOURCE = Path(__file__).with_name("package_main.py")


@dataclass(frozen=True)
class PackageRequest:
    model: Path
    board: Board
    out: Path
    config: AccelConfig = DEFAULT_CONFIG
    batch: int = 64
    overlay_dir: Path | None = None  # default: overlays/<board>/
    data: BundledData | None = None


def default_overlay_dir(board: Board) -> Path:
    from resilq.overlays import OVERLAYS_DIR

    return OVERLAYS_DIR / board.name


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or path.is_relative_to(folder)


def check_out(out: Path, sources: dict[str, Path | None]) -> bool:
    """May ``resilq package`` write the package folder ``out``? True when it replaces an existing package.

    Refused: a symlink (it could point anywhere), anything that is not a folder, a non-empty folder that is
    not verifiably a resilq package (a manifest of the package schema and nothing a package does not hold),
    and an ``out`` that holds one of the ``sources`` (the model, the overlay, the data), which replacing it
    would delete.
    """
    if out.is_symlink():
        raise ParameterError(f"--out {out} is a symbolic link: resilq writes a package only into a real folder "
                             "(give the link's target, or another path)")
    for what, src in sources.items():
        if src is not None and out.exists() and _inside(Path(src), out):
            raise ParameterError(f"the {what} {src} lies inside --out {out}, which the new package replaces: "
                                 "copy it elsewhere first or choose another --out")
    if not out.exists():
        return False
    if not out.is_dir():
        raise ParameterError(f"--out {out} exists and is not a folder: choose another --out")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return False
    try:
        read_manifest(out / MANIFEST)
    except FormatError as exc:
        raise ParameterError(f"--out {out} exists and is not a resilq package ({exc}): resilq replaces only a "
                             "package it wrote; choose another --out") from None
    foreign = [e for e in entries if e not in PACKAGE_ENTRIES]
    if foreign:
        raise ParameterError(f"--out {out} is a resilq package but also holds {', '.join(foreign[:5])}"
                             f"{' ...' if len(foreign) > 5 else ''}, which resilq did not write: move them out "
                             "or choose another --out")
    return True


def _replace(tmp: Path, out: Path, existing: bool) -> None:
    """Move the finished package ``tmp`` to ``out``; an old package there is renamed aside first, then removed."""
    if not existing:
        if out.is_dir():
            out.rmdir()  # the empty folder check_out accepted (rmdir refuses anything else)
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "package")
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old / "package", out)  # put the old package back
        raise
    shutil.rmtree(old)


def _overlay(request: PackageRequest, out: Path) -> dict | None:
    src = request.overlay_dir or default_overlay_dir(request.board)
    bit, hwh = src / f"{OVERLAY_NAME}.bit", src / f"{OVERLAY_NAME}.hwh"
    dest = out / OVERLAY_DIR
    dest.mkdir()
    if not (bit.is_file() and hwh.is_file()):
        (dest / NOT_BUILT).write_text(
            f"No overlay: {bit} and {hwh} did not exist when this package was made.\n"
            f"Only `--target emulator` (and `--target csim` on a host with g++) can run this package.\n"
            f"Build the overlay on a host with Vitis HLS and Vivado {request.board.software.vivado}:\n"
            f"    make -C overlays BOARD={request.board.name}\nthen run `resilq package` again.\n")
        return None
    ip = accelerator_in_hwh(hwh)  # refuse an overlay of another register map now, not on the board
    for f in (bit, hwh):
        shutil.copyfile(f, dest / f.name)
    return {"bit": f"{OVERLAY_DIR}/{bit.name}", "hwh": f"{OVERLAY_DIR}/{hwh.name}", "vlnv": ip.vlnv,
            "instance": ip.instance, "base_address": ip.base_address,
            "sha256": {"bit": sha256(dest / bit.name), "hwh": sha256(dest / hwh.name)}}


def build_package(request: PackageRequest) -> Path:
    """Write the package folder ``request.out``; returns it."""
    model = load_model(request.model)
    check_int(request.batch, "batch", 1, MAX_BATCH)
    if request.data is not None and len(request.data.labels) == 0:
        raise ParameterError("the evaluation set to bundle is empty (check --images and --offset)")
    plan_model(model, request.config)  # UnsupportedModelError naming the layer and the limit
    check_budget(request.config, request.board)
    out = Path(request.out)
    overlay_dir = request.overlay_dir or default_overlay_dir(request.board)
    existing = check_out(out, {"model": request.model, "overlay folder": overlay_dir})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the package gets a plain folder's mode
        _write(request, model, tmp)
        _replace(tmp, out, existing)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only the folder this call created
        raise
    return out


def _write(request: PackageRequest, model, out: Path) -> None:
    """Write every file of the package into the (new, empty) folder ``out``."""
    shutil.copyfile(request.model, out / MODEL_FILE)
    overlay = _overlay(request, out)
    lib = out / "lib"
    modules = shipping.closure()
    files = shipping.copy_modules(modules, lib)
    write_board_json(request.board, lib / "resilq" / "boards" / request.board.name)
    shutil.copyfile(MAIN_SOURCE, out / "__main__.py")
    sw = request.board.software
    manifest = {
        "format": FORMAT, "resilq_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "model": {"file": MODEL_FILE, "name": model.name, "hash": model.hash},
        "accelerator": request.config.as_dict(), "config_id": request.config.config_id, "vlnv": VLNV,
        "batch": request.batch,
        "board": {"name": request.board.name, "part": request.board.part, "pl_mhz": request.board.pl_mhz,
                  "ps_mhz": request.board.ps_mhz, "pynq_image": sw.pynq_image},
        "requirements": {"python": sw.python, "numpy": sw.numpy, "pynq": sw.pynq},
        "overlay": overlay,
        "data": None if request.data is None else write_bundled_data(out, request.data),
        "lib": sorted(str(f.relative_to(out)) for f in files),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    read_manifest(out / MANIFEST)  # what it writes, it must read back
    (out / "README.txt").write_text(_readme(manifest, request))


def _readme(manifest: dict, request: PackageRequest) -> str:
    sw = request.board.software
    name = Path(request.out).resolve().name  # python3 runs a folder through its __main__.py
    data = "" if manifest["data"] is None else (f"It carries {manifest['data']['images']} images of "
                                                f"{manifest['data']['dataset']}/{manifest['data']['split']} "
                                                f"({DATA_FILE}), the default evaluation set.\n")
    overlay = ("The overlay (bitstream + hardware description) is in overlay/.\n" if manifest["overlay"] else
               f"It has NO overlay (see {OVERLAY_DIR}/{NOT_BUILT}): only --target emulator works.\n")
    return (f"resilq deployment package: {manifest['model']['name']} for the {request.board.name} "
            f"(PYNQ image {sw.pynq_image}: Python {sw.python}, numpy >= {sw.numpy}, pynq {sw.pynq}).\n{overlay}{data}\n"
            "Copy this folder to the board, then, in the folder that holds it (as root, in the pynq-venv):\n"
            f"    python3 {name} info\n"
            f"    python3 {name} run --target board [--dataset mnist --data-dir DIR] [--images N] [--verify]\n"
            "Anywhere with Python >= 3.10 and numpy >= 1.21, in the folder that holds it:\n"
            f"    python3 {name} run --target emulator --verify\n")
