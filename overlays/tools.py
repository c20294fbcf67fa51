"""The vendor tools the overlay build needs, and their versions against the board file's ``[software]``.

A build with another Vivado/Vitis HLS release than the board image's overlays were made with is refused
before it starts (the HLS export, the IP integrator scripts and the PYNQ image are matched to one
release), and a missing tool is named with what to install and how to put it on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from resilq.boards import Board
from resilq.errors import ResilqError

VERSION_RE = re.compile(r"\bv(\d{4}\.\d+)")


class ToolError(ResilqError):
    """A vendor tool is missing or of another version than the board file asks for."""


@dataclass(frozen=True)
class Tool:
    command: str
    product: str
    board_key: str  # field of resilq.boards.Software holding the required version

    def required(self, board: Board) -> str:
        return getattr(board.software, self.board_key)


TOOLS = (Tool("vitis_hls", "AMD Vitis HLS", "vitis_hls"), Tool("vivado", "AMD Vivado", "vivado"))


@dataclass(frozen=True)
class FoundTool:
    tool: Tool
    path: str
    version: str


def tool_version(tool: Tool, path: str) -> str:
    """The ``YYYY.N`` release a tool reports with ``-version``."""
    try:
        proc = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"{path} -version failed: {exc}") from None
    m = VERSION_RE.search(proc.stdout + proc.stderr)
    if m is None:
        raise ToolError(f"cannot read the version of {path} from its -version output: {proc.stdout.strip()[:200]!r}")
    return m.group(1)


def check_tools(board: Board, tools: tuple[Tool, ...] = TOOLS) -> list[FoundTool]:
    """Every tool on PATH at the board file's version, or a :class:`ToolError` naming all problems."""
    found, problems = [], []
    for tool in tools:
        need = tool.required(board)
        path = shutil.which(tool.command)
        if path is None:
            problems.append(f"{tool.command} is not on PATH: the overlay build needs {tool.product} {need} (the release "
                            f"of the PYNQ {board.software.pynq_image} image's overlays for the {board.name}); install it "
                            f"and `source <install dir>/settings64.sh`")
            continue
        have = tool_version(tool, path)
        if have != need:
            problems.append(f"{path} is {tool.product} {have}; the board file ({board.path}) expects {need}")
            continue
        found.append(FoundTool(tool, path, have))
    if problems:
        raise ToolError("cannot build the overlay here:\n  " + "\n  ".join(problems) + "\nWithout the tools, "
                        "`resilq package` still makes a package that runs on the emulator (--target emulator).")
    return found
