"""``python -m resilq.overlays build``: the Vivado half of ``make -C overlays`` (after ``make -C hls ip``).

Checks the tools against the board file, writes the parameter script, runs
``vivado -mode batch -source tcl/build_overlay.tcl`` with its log and journal in the build folder,
and verifies the ``.hwh`` it produced against the register map before declaring success.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from resilq.boards import Board
from resilq.errors import ResilqError
from resilq.hls.config import AccelConfig

from . import TCL_DIR
from .params import DESIGN, OverlayParams, overlay_params, write_params
from .tools import TOOLS, check_tools

PARAMS_FILE = "overlay_params.tcl"


@dataclass(frozen=True)
class OverlayBuild:
    params: OverlayParams
    params_file: Path
    log: Path
    bit: Path
    hwh: Path


def vivado_command(vivado: str, params_file: Path, build_dir: Path) -> list[str]:
    return [vivado, "-mode", "batch", "-notrace", "-log", str(build_dir / "vivado.log"), "-journal",
            str(build_dir / "vivado.jou"), "-source", str(TCL_DIR / "build_overlay.tcl"), "-tclargs",
            f"params={params_file}"]


def build_overlay(board: Board, config: AccelConfig, ip_repo: Path, out_dir: Path, build_dir: Path,
                  jobs: int = 2) -> OverlayBuild:
    from resilq.deploy.hwh import accelerator_in_hwh

    tools = {t.tool.command: t for t in check_tools(board, TOOLS)}
    if not (ip_repo / "component.xml").is_file():
        raise ResilqError(f"{ip_repo} holds no exported IP (component.xml): run make -C hls ip first")
    build_dir, out_dir = build_dir.resolve(), out_dir.resolve()
    params = overlay_params(board, config, ip_repo.resolve(), out_dir, build_dir, jobs)
    params_file = write_params(params, build_dir / PARAMS_FILE, str(board.path))
    cmd = vivado_command(tools["vivado"].path, params_file, build_dir)
    proc = subprocess.run(cmd, cwd=build_dir, check=False)
    log = build_dir / "vivado.log"
    if proc.returncode != 0:
        raise ResilqError(f"vivado failed (exit {proc.returncode}); see {log}")
    bit, hwh = out_dir / f"{DESIGN}.bit", out_dir / f"{DESIGN}.hwh"
    accelerator_in_hwh(hwh)  # the overlay really holds the accelerator this driver speaks to
    return OverlayBuild(params, params_file, log, bit, hwh)
