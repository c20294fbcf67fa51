"""``resilq package``: write a deployment package (host side; the layout is in :mod:`resilq.deploy.package`).

The model is mapped onto the accelerator and checked against the board's budget first (a model the
accelerator cannot run is refused here, naming the layer and limit, not on the board). The overlay is
taken from ``overlays/<board>/`` when it has been built and checked against the register map; without
it the package says so and runs on the emulator only. The driver code is the import closure of the
board-side commands (:mod:`resilq.deploy.shipping`), copied, plus the board file and its JSON snapshot.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from resilq import __version__
from resilq.boards import Board, write_board_json
from resilq.errors import ParameterError
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.mapping import plan_model
from resilq.hls.resources import check_budget
from resilq.ir import load_model

from . import shipping
from .hwh import VLNV, accelerator_in_hwh
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


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file()):
            raise ParameterError(f"{out} exists and is not a resilq package: choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)


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
    if request.batch < 1:
        raise ParameterError(f"batch must be >= 1, got {request.batch}")
    plan_model(model, request.config)  # UnsupportedModelError naming the layer and the limit
    check_budget(request.config, request.board)
    out = request.out
    _prepare_out(out)
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
    (out / "README.txt").write_text(_readme(manifest, request))
    return out


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
