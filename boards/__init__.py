"""Board definitions: one TOML file per board in ``boards/<name>/board.toml``.

The HLS generator (part, PL clock, resource budget), the overlay build (board part, AXI ports, tool
versions) and the driver (PYNQ image, DDR size) all read the same file through :func:`load_board`, so
a fact about a board is written once. Standard library only (``tomllib``, or ``tomli`` before 3.11).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resilq.errors import FormatError, ParameterError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the board's Python 3.10
    import tomli as tomllib

BOARDS_DIR = Path(__file__).resolve().parent
DEFAULT_BOARD = "pynq-z2"


@dataclass(frozen=True)
class Budget:
    """Programmable-logic resources available to the accelerator."""

    lut: int
    ff: int
    dsp: int
    bram36: int

    def as_dict(self) -> dict[str, int]:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM36": self.bram36}


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    part: str
    board_part: str
    ddr_bytes: int
    ps_mhz: float
    pl_mhz: float
    hp_port_bits: int
    address_bits: int
    lite_port: str
    budget: Budget
    software: dict[str, str]
    path: Path

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.pl_mhz


def available_boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.toml"))


def load_board(name_or_path: str | Path = DEFAULT_BOARD) -> Board:
    """Load and validate a board file, by name (``"pynq-z2"``) or by path to a ``board.toml``."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = BOARDS_DIR / str(name_or_path) / "board.toml"
        if not path.is_file():
            raise ParameterError(f"unknown board {name_or_path!r}; available: {', '.join(available_boards())}")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FormatError(f"{path}: cannot read board file: {exc}") from exc
    return _parse(data, path)


def _get(data: dict[str, Any], path: Path, section: str, key: str, kind: type) -> Any:
    try:
        value = data[section][key]
    except KeyError as exc:
        raise FormatError(f"{path}: missing [{section}] {key}") from exc
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or (kind in (int, float) and value <= 0):
        raise FormatError(f"{path}: [{section}] {key} must be a positive {kind.__name__}, got {value!r}")
    return value


def _parse(data: dict[str, Any], path: Path) -> Board:
    budget = Budget(*(_get(data, path, "budget", k, int) for k in ("lut", "ff", "dsp", "bram36")))
    software = {str(k): str(v) for k, v in data.get("software", {}).items()}
    return Board(
        name=_get(data, path, "board", "name", str),
        description=_get(data, path, "board", "description", str),
        part=_get(data, path, "board", "part", str),
        board_part=_get(data, path, "board", "board_part", str),
        ddr_bytes=_get(data, path, "board", "ddr_bytes", int),
        ps_mhz=_get(data, path, "clocks", "ps_mhz", float),
        pl_mhz=_get(data, path, "clocks", "pl_mhz", float),
        hp_port_bits=_get(data, path, "axi", "hp_port_bits", int),
        address_bits=_get(data, path, "axi", "address_bits", int),
        lite_port=_get(data, path, "axi", "lite_port", str),
        budget=budget,
        software=software,
        path=path,
    )


__all__ = ["BOARDS_DIR", "Board", "Budget", "DEFAULT_BOARD", "available_boards", "load_board"]
