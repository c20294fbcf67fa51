"""How the overlay configures the Zynq PS7: explicitly from the part (default) or from Vivado's board preset.

``explicit`` needs only the part (``xc7z020clg400-1``): the block design sets the DDR, clock and MIO
properties of ``boards/<board>/ps7.toml`` -- for the PYNQ-Z2 the values of PYNQ's own base design, each
cited there and in docs/accelerator.md. ``board-preset`` applies the preset of the board files
(``tul.com.tw:pynq-z2:part0:1.0``), which Vivado does not ship: it is an option for hosts that have them.
Either way the ports the accelerator uses and FCLK0's frequency come from ``board.toml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from resilq.boards import Board
from resilq.errors import FormatError, ParameterError
from resilq.validation import check_str

PS7_FILE = "ps7.toml"
GROUPS = ("clocks", "ddr", "mio")
_NAME = re.compile(r"PCW_[A-Z0-9_]+")
_VALUE = re.compile(r"[A-Za-z0-9 .:()_\-]+")  # what a PCW_* property value is: no Tcl or Vivado metacharacters


class Ps7Mode(Enum):
    EXPLICIT = "explicit"
    BOARD_PRESET = "board-preset"

    @classmethod
    def parse(cls, text: str) -> Ps7Mode:
        for mode in cls:
            if mode.value == text:
                return mode
        raise ParameterError(f"unknown PS7 configuration {text!r}; expected {' or '.join(m.value for m in cls)}")


@dataclass(frozen=True)
class Ps7Source:
    repository: str
    path: str
    commit: str
    design: str

    def cite(self) -> str:
        return f"{self.repository} {self.path} @ {self.commit[:10]} ({self.design})"


@dataclass(frozen=True)
class Ps7Preset:
    """The explicit PS7 properties of a board, by group, in file order."""

    source: Ps7Source
    groups: dict[str, tuple[tuple[str, str], ...]]
    path: Path

    @property
    def properties(self) -> tuple[tuple[str, str], ...]:
        return tuple(item for group in GROUPS for item in self.groups[group])


def load_ps7(board: Board) -> Ps7Preset:
    """``boards/<board>/ps7.toml``, validated (names PCW_*, plain values, no duplicates)."""
    from resilq.boards import _toml_loads

    path = Path(board.path).with_name(PS7_FILE)
    if not path.is_file():
        raise ParameterError(f"board {board.name!r} has no {PS7_FILE} beside {board.path}: configure the PS7 from "
                             "the board preset (--ps7 board-preset, needs the board files) or write one")
    loads = _toml_loads()
    if loads is None:
        raise FormatError(f"{path}: reading TOML needs Python >= 3.11 or tomli")
    try:
        data = loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a valid PS7 file: {exc}") from exc
    try:
        source = Ps7Source(**{k: check_str(data["source"][k], f"{path}: [source] {k}", error=FormatError)
                              for k in ("repository", "path", "commit", "design")})
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{path}: [source] needs repository, path, commit and design") from exc
    unknown = set(data) - {"source", *GROUPS}
    if unknown:
        raise FormatError(f"{path}: unknown sections {sorted(unknown)}; expected [source] and {list(GROUPS)}")
    groups, seen = {}, set()
    for group in GROUPS:
        items = []
        table = data.get(group, {})
        if not isinstance(table, dict):
            raise FormatError(f"{path}: [{group}] must be a table, got {table!r:.80}")
        for name, value in table.items():
            if not _NAME.fullmatch(name) or not isinstance(value, str) or not _VALUE.fullmatch(value):
                raise FormatError(f"{path}: [{group}] {name} = {value!r} is not a PCW_* property with a plain value")
            if name in seen:
                raise FormatError(f"{path}: {name} is set twice")
            seen.add(name)
            items.append((name, value))
        groups[group] = tuple(items)
    return Ps7Preset(source, groups, path)
