"""Board definitions: one TOML file per board in ``boards/<name>/board.toml``.

The HLS generator (part, PL clock, resource budget), the overlay build (board part, PS ports, clocks,
tool versions) and the driver (PYNQ image, Python/numpy versions, DDR size) all read the same file
through :func:`load_board`, so a fact about a board is written once. Standard library only.

TOML needs ``tomllib`` (Python 3.11) or ``tomli``. A PYNQ image's Python 3.10 has neither, so a
deployment package carries, next to the board's TOML, a ``board.json`` written from it by
:func:`write_board_json` (the same :class:`Board`, serialised); :func:`load_board` reads that where no
TOML parser is available. The TOML file stays the one source.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from resilq.errors import FormatError, ParameterError
from resilq.validation import NAME, check_int, check_mapping, check_number, check_str

BOARDS_DIR = Path(__file__).resolve().parent
DEFAULT_BOARD = "pynq-z2"
BOARD_FILE = "board.toml"
SNAPSHOT_FILE = "board.json"


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
class Software:
    """The board image and tool versions a build is made for (``MAJOR.MINOR[.PATCH]`` strings)."""

    pynq_image: str  # the PYNQ SD-card image release
    pynq: str  # the pynq Python package on that image
    python: str  # its Python (MAJOR.MINOR): the shipped driver must run on it
    numpy: str  # the oldest numpy the shipped driver must run on (the image's)
    vitis_hls: str  # the tool the IP is exported with
    vivado: str  # the tool the bitstream is built with


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    part: str
    board_part: str
    ddr_bytes: int
    ps_mhz: float
    pl_mhz: float
    pl_clock: str
    hp_port: str
    hp_port_bits: int
    address_bits: int
    lite_port: str
    lite_base: int
    budget: Budget
    software: Software
    path: Path

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.pl_mhz

    def as_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-able values (the ``board.json`` snapshot; ``path`` excluded)."""
        data = asdict(self)
        data.pop("path")
        return data


def available_boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob(f"*/{BOARD_FILE}"))


def _toml_loads():
    """``tomllib.loads`` (3.11+) or ``tomli.loads``; None where neither is installed."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            return None
    return tomllib.loads


def load_board(name_or_path: str | Path = DEFAULT_BOARD) -> Board:
    """Load and validate a board file, by name (``"pynq-z2"``) or by path to a ``board.toml``/``board.json``."""
    path = Path(name_or_path)
    if path.suffix not in (".toml", ".json"):
        if not NAME.fullmatch(str(name_or_path)) or not (BOARDS_DIR / str(name_or_path) / BOARD_FILE).is_file():
            raise ParameterError(f"unknown board {name_or_path!r}; available: {', '.join(available_boards())}")
        path = BOARDS_DIR / str(name_or_path) / BOARD_FILE
    loads = _toml_loads()
    if path.suffix == ".toml" and loads is None:
        snapshot = path.with_name(SNAPSHOT_FILE)
        if not snapshot.is_file():
            raise FormatError(f"{path}: reading TOML needs Python >= 3.11 or the tomli package (pip install tomli), "
                              f"and there is no {SNAPSHOT_FILE} snapshot beside it")
        path = snapshot
    try:
        text = path.read_text()
        if path.suffix == ".json":
            return _from_snapshot(json.loads(text), path)
        data = loads(text)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read board file: {exc}") from exc
    except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise FormatError(f"{path}: not a valid board file: {exc}") from exc
    return _parse(data, path)


def write_board_json(board: Board, directory: str | Path) -> Path:
    """Write the ``board.json`` snapshot of ``board`` into ``directory`` (for Pythons without TOML)."""
    out = Path(directory) / SNAPSHOT_FILE
    out.write_text(json.dumps(board.as_dict(), indent=2, sort_keys=True) + "\n")
    return out


#: Patterns of the board strings that reach the overlay's Tcl, file names and messages (UG585 names the PS
#: ports M_AXI_GP0/1, S_AXI_HP0-3 and the fabric clocks FCLK_CLK0-3; Vivado parts and board parts are
#: lowercase words joined by ``-``/``:``/``.``, e.g. xc7z020clg400-1 and tul.com.tw:pynq-z2:part0:1.0).
PATTERNS = {
    ("board", "name"): NAME,
    ("board", "part"): re.compile(r"x[a-z0-9]+-[0-9a-z]+(-[a-z0-9]+)*"),
    ("board", "board_part"): re.compile(r"[a-z0-9][a-z0-9_.\-]*(:[a-z0-9][a-z0-9_.\-]*){3}"),
    ("clocks", "pl_clock"): re.compile(r"FCLK_CLK[0-3]"),
    ("axi", "hp_port"): re.compile(r"S_AXI_HP[0-3]"),
    ("axi", "lite_port"): re.compile(r"M_AXI_GP[01]"),
}
#: Ranges of the numbers (inclusive): a Zynq-7000 addresses at most 4 GiB; clocks are MHz.
RANGES = {
    ("board", "ddr_bytes"): (1 << 20, 1 << 32), ("clocks", "ps_mhz"): (1.0, 2000.0),
    ("clocks", "pl_mhz"): (1.0, 1000.0), ("axi", "address_bits"): (32, 32), ("axi", "hp_port_bits"): (32, 64),
    ("axi", "lite_base"): (0, (1 << 32) - 1), **{("budget", k): (1, 1 << 24) for k in ("lut", "ff", "dsp", "bram36")},
}


def _get(data: dict[str, Any], path: Path, section: str, key: str, kind: type) -> Any:
    try:
        value = check_mapping(data.get(section), f"{path}: [{section}]", error=FormatError, closed=False)[key]
    except KeyError as exc:
        raise FormatError(f"{path}: missing [{section}] {key}") from exc
    what = f"{path}: [{section}] {key}"
    if kind is str:
        return check_str(value, what, PATTERNS.get((section, key)), FormatError)
    lo, hi = RANGES[(section, key)]
    if kind is int:
        return check_int(value, what, lo, hi, FormatError)
    return check_number(value, what, lo, hi, FormatError)


def _version(data: dict[str, Any], path: Path, key: str) -> str:
    value = _get(data, path, "software", key, str)
    parts = value.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise FormatError(f"{path}: [software] {key} must be a version MAJOR.MINOR[.PATCH], got {value!r}")
    return value


def _parse(data: dict[str, Any], path: Path) -> Board:
    check_mapping(data, str(path), error=FormatError, closed=False)
    budget = Budget(*(_get(data, path, "budget", k, int) for k in ("lut", "ff", "dsp", "bram36")))
    software = Software(*(_version(data, path, f.name) for f in fields(Software)))
    hp_bits = _get(data, path, "axi", "hp_port_bits", int)
    if hp_bits not in (32, 64):
        raise FormatError(f"{path}: [axi] hp_port_bits must be 32 or 64 (Zynq-7000 HP ports), got {hp_bits}")
    return Board(
        name=_get(data, path, "board", "name", str),
        description=_get(data, path, "board", "description", str),
        part=_get(data, path, "board", "part", str),
        board_part=_get(data, path, "board", "board_part", str),
        ddr_bytes=_get(data, path, "board", "ddr_bytes", int),
        ps_mhz=_get(data, path, "clocks", "ps_mhz", float),
        pl_mhz=_get(data, path, "clocks", "pl_mhz", float),
        pl_clock=_get(data, path, "clocks", "pl_clock", str),
        hp_port=_get(data, path, "axi", "hp_port", str),
        hp_port_bits=hp_bits,
        address_bits=_get(data, path, "axi", "address_bits", int),
        lite_port=_get(data, path, "axi", "lite_port", str),
        lite_base=_get(data, path, "axi", "lite_base", int),
        budget=budget,
        software=software,
        path=path,
    )


def _from_snapshot(data: dict[str, Any], path: Path) -> Board:
    """Rebuild a :class:`Board` from :meth:`Board.as_dict` output, validated like the TOML."""
    sections = {"board": ("name", "description", "part", "board_part", "ddr_bytes"),
                "clocks": ("ps_mhz", "pl_mhz", "pl_clock"),
                "axi": ("hp_port", "hp_port_bits", "address_bits", "lite_port", "lite_base")}
    try:
        toml_like = {section: {k: data[k] for k in keys} for section, keys in sections.items()}
        toml_like["budget"] = dict(data["budget"])
        toml_like["software"] = dict(data["software"])
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{path}: not a board snapshot (missing {exc})") from None
    return _parse(toml_like, path)


__all__ = ["BOARDS_DIR", "Board", "Budget", "DEFAULT_BOARD", "Software", "available_boards", "load_board",
           "write_board_json"]
