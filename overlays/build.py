"""``python -m resilq.overlays build``: the Vivado half of ``make -C overlays`` (after ``make -C hls ip``).

Checks the tools (releases 2022.1 - 2024.x, :mod:`resilq.hls.tools`), writes the parameter script, runs
``vivado -mode batch -source tcl/build_overlay.tcl`` with its log and journal in the build folder, reads
the post-route timing and utilisation the Tcl recorded (:mod:`.implementation`; a routed design with
negative WNS or WHS fails, naming the timing report), verifies the ``.hwh`` it produced against the
register map and writes the overlay's metadata (``resilq.json``) beside ``resilq.bit``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from resilq.boards import Board
from resilq.errors import ResilqError
from resilq.hls.config import AccelConfig

from . import TCL_DIR
from .implementation import IMPLEMENTATION_FILE, OverlayMetadata, check_timing, overlay_metadata
from .params import DESIGN, OverlayParams, overlay_params, write_params
from .ps7 import Ps7Mode
from .tools import check_tools

PARAMS_FILE = "overlay_params.tcl"


@dataclass(frozen=True)
class OverlayBuild:
    params: OverlayParams
    params_file: Path
    log: Path
    bit: Path
    hwh: Path
    metadata: OverlayMetadata


def vivado_command(vivado: str, params_file: Path, build_dir: Path) -> list[str]:
    return [vivado, "-mode", "batch", "-notrace", "-log", str(build_dir / "vivado.log"), "-journal",
            str(build_dir / "vivado.jou"), "-source", str(TCL_DIR / "build_overlay.tcl"), "-tclargs",
            f"params={params_file}"]


def build_overlay(board: Board, config: AccelConfig, ip_repo: Path, out_dir: Path, build_dir: Path,
                  jobs: int = 2, ps7: Ps7Mode = Ps7Mode.EXPLICIT) -> OverlayBuild:
    from resilq.deploy.hwh import accelerator_in_hwh

    vivado = next(t for t in check_tools(board) if t.product == "AMD Vivado")
    if not (ip_repo / "component.xml").is_file():
        raise ResilqError(f"{ip_repo} holds no exported IP (component.xml): run make -C hls ip first")
    build_dir, out_dir = build_dir.resolve(), out_dir.resolve()
    params = overlay_params(board, config, ip_repo.resolve(), out_dir, build_dir, jobs, ps7)
    params_file = write_params(params, build_dir / PARAMS_FILE, str(board.path))
    (build_dir / IMPLEMENTATION_FILE).unlink(missing_ok=True)  # never read a previous build's numbers
    cmd = vivado_command(vivado.path, params_file, build_dir)
    proc = subprocess.run(cmd, cwd=build_dir, check=False)
    log = build_dir / "vivado.log"
    meta = None
    if (build_dir / IMPLEMENTATION_FILE).is_file():  # implementation finished: timing decides first
        meta = check_timing(overlay_metadata(build_dir, board.name, config.pe, config.simd, config.config_id))
    if proc.returncode != 0:
        raise ResilqError(f"vivado failed (exit {proc.returncode}); see {log}")
    if meta is None:
        raise ResilqError(f"vivado finished without writing {build_dir / IMPLEMENTATION_FILE}; see {log}")
    bit, hwh = out_dir / f"{DESIGN}.bit", out_dir / f"{DESIGN}.hwh"
    accelerator_in_hwh(hwh)  # the overlay really holds the accelerator this driver speaks to
    meta.write(out_dir)
    return OverlayBuild(params, params_file, log, bit, hwh, meta)
