"""Build directories for the Vitis HLS flow: configuration header, golden vectors, tool invocation.

:func:`build_ip` is what ``make -C hls ip`` runs: it checks the configuration against the board's
budget (refusing, with the resource named, before anything is built), looks for Vitis HLS
(``vitis_hls`` or ``vitis-run``, :mod:`.tools`; it says exactly what is missing when neither is there and
warns about a release outside 2022.1 - 2024.x), writes the build directory and runs ``tcl/run_hls.tcl``
(csim, csynth, cosim, export as an IP-catalog IP with the given VLNV) with its arguments in
``hls_args.txt``, named by ``$RESILQ_HLS_ARGS``.
:func:`run_testbench` compiles the very testbench Vitis runs with g++ instead, for machines without it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from resilq.boards import Board
from resilq.errors import ResilqError

from . import INCLUDE_DIR, SRC_DIR, TB_DIR, TCL_DIR, codegen, regmap
from .config import AccelConfig
from .csim import CompileError, compiler
from .resources import ResourceEstimate, check_budget
from .tools import ARGS_ENV, ToolError, find_vitis_hls, hls_missing_message, warn_if_unsupported
from .vectors import golden_vectors, write_vector

STEPS = ("csim", "csynth", "cosim", "export")
DEFAULT_VLNV = f"resilq.org:hls:resilq_accel:{regmap.VERSION}.0"


class ToolNotFoundError(ToolError):
    """A vendor tool the requested step needs is not installed."""

ARGS_FILE = "hls_args.txt"


@dataclass(frozen=True)
class Project:
    directory: Path
    config_header: Path
    vectors: list[Path]
    estimate: ResourceEstimate


def write_project(config: AccelConfig, board: Board, directory: Path) -> Project:
    """Check the budget, then write ``accel_config.hpp`` and the golden vectors into ``directory``."""
    est = check_budget(config, board)
    directory.mkdir(parents=True, exist_ok=True)
    header = codegen.write_config(config, directory)
    vectors = [write_vector(v, config, directory / "vectors") for v in golden_vectors(config=config)]
    return Project(directory, header, vectors, est)


def tcl_arguments(project: Project, board: Board, steps: tuple[str, ...], vlnv: str) -> list[str]:
    return [f"part={board.part}", f"period={board.clock_period_ns:g}", f"vlnv={vlnv}", f"steps={','.join(steps)}",
            f"src={SRC_DIR}", f"include={INCLUDE_DIR}", f"config={project.directory}",
            f"vectors={','.join(str(v) for v in project.vectors)}"]


def vitis_missing_message(board: Board) -> str:
    return hls_missing_message(board.software.vitis_hls, board.software.pynq_image, board.name)


def write_arguments(project: Project, words: list[str]) -> Path:
    """The key=value words of run_hls.tcl, one per line (``tcl/args.tcl`` reads them back)."""
    path = project.directory / ARGS_FILE
    path.write_text("".join(f"{w}\n" for w in words))
    return path


def build_ip(config: AccelConfig, board: Board, directory: Path, steps: tuple[str, ...] = STEPS,
             vlnv: str = DEFAULT_VLNV) -> Path:
    """Run the Vitis HLS flow; returns the directory of the exported IP (or of the project)."""
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ResilqError(f"unknown HLS steps {sorted(unknown)}; known: {', '.join(STEPS)}")
    check_budget(config, board)
    tool = find_vitis_hls()
    if tool is None:
        raise ToolNotFoundError(vitis_missing_message(board))
    warn_if_unsupported(tool)
    project = write_project(config, board, directory)
    args_file = write_arguments(project, tcl_arguments(project, board, steps, vlnv))
    proc = subprocess.run(tool.tcl_command(TCL_DIR / "run_hls.tcl"), cwd=directory, check=False,
                          env={**os.environ, ARGS_ENV: str(args_file)})
    if proc.returncode != 0:
        raise ResilqError(f"{tool.command} failed (exit {proc.returncode}); see the log in {directory} "
                          "(vitis_hls.log, or the vitis-run log)")
    return directory / "resilq_accel_prj"


def build_testbench(config: AccelConfig, directory: Path) -> Path:
    """Compile ``tb/accel_tb.cpp`` with the accelerator source using g++; returns the executable."""
    codegen.write_config(config, directory)
    return compile_testbench(directory)


def compile_testbench(directory: Path) -> Path:
    """Compile the testbench against the ``accel_config.hpp`` already in ``directory``."""
    cxx = compiler()
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "accel_tb"
    cmd = [cxx, "-std=c++14", "-O2", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Wno-unused-label",
           f"-I{INCLUDE_DIR}", f"-I{directory}", str(SRC_DIR / "accel_top.cpp"), str(TB_DIR / "accel_tb.cpp"),
           "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(f"g++ failed on the testbench ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    return exe


def run_testbench(config: AccelConfig, board: Board, directory: Path) -> subprocess.CompletedProcess:
    """Write the project, compile the testbench with g++ and run it on the golden vectors."""
    project = write_project(config, board, directory)
    exe = build_testbench(config, directory)
    return subprocess.run([str(exe), *map(str, project.vectors)], capture_output=True, text=True, check=False)
