"""The vendor tools the overlay build needs, found on PATH and checked against the releases the flow supports.

Vitis HLS (``vitis_hls``, or ``vitis-run --mode hls`` where only the unified Vitis tools exist) and Vivado
must both be on PATH. Any release from 2022.1 (the PYNQ v3.0.1 image's, the board file's ``[software]``)
through 2024.x is accepted silently; another release is used with a
:class:`resilq.hls.tools.ToolVersionWarning` (:mod:`resilq.hls.tools` documents the range). A missing tool
is named with what to install and how to put it on PATH.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resilq.boards import Board
from resilq.hls.tools import (
    SUPPORTED_TEXT,
    FoundTool,
    ToolError,
    ToolVersionWarning,
    find_vitis_hls,
    find_vivado,
    warn_if_unsupported,
)

__all__ = ["TOOLS", "Tool", "ToolError", "ToolVersionWarning", "check_tools"]


@dataclass(frozen=True)
class Tool:
    command: str  # what the user looks for on PATH (the message names it)
    product: str
    board_key: str  # field of resilq.boards.Software holding the board image's release
    find: Callable[[], FoundTool | None]

    def reference(self, board: Board) -> str:
        return getattr(board.software, self.board_key)


TOOLS = (Tool("vitis_hls (or vitis-run)", "AMD Vitis HLS", "vitis_hls", find_vitis_hls),
         Tool("vivado", "AMD Vivado", "vivado", find_vivado))


def check_tools(board: Board, tools: tuple[Tool, ...] = TOOLS) -> list[FoundTool]:
    """Every tool on PATH (a warning for a release outside the supported range), or a :class:`ToolError`
    naming every missing one."""
    found, problems = [], []
    for tool in tools:
        hit = tool.find()
        if hit is None:
            problems.append(f"{tool.command} is not on PATH: the overlay build needs {tool.product} {SUPPORTED_TEXT} "
                            f"(the PYNQ {board.software.pynq_image} image's overlays for the {board.name} are built with "
                            f"{tool.reference(board)}); install it and `source <install dir>/settings64.sh`")
            continue
        found.append(warn_if_unsupported(hit))
    if problems:
        raise ToolError("cannot build the overlay here:\n  " + "\n  ".join(problems) + "\nWithout the tools, "
                        "`resilq package` still makes a package that runs on the emulator (--target emulator).")
    return found
