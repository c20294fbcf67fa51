"""What the implemented overlay really is: post-route timing and utilisation, kept beside the bitstream.

``tcl/build_overlay.tcl`` writes ``<build dir>/implementation.txt`` (the Vivado release, the implementation
run's worst setup / hold slack STATS.WNS / STATS.WHS, and the paths of ``report_timing_summary`` and
``report_utilization`` for the whole design and for the accelerator's cell, UG835) before it checks timing.
:func:`read_implementation` turns that into an :class:`OverlayMetadata`, which the build writes as
``resilq.json`` beside ``resilq.bit`` and ``resilq hls estimate`` shows next to the analytic estimate.

The utilisation reports are Vivado's text tables (``| Site Type | Used | Fixed | [Prohibited |] Available |
Util% |``); the rows read are the 7-series names "Slice LUTs", "Slice Registers", "Block RAM Tile" (in
RAMB36 tiles, halves for a RAMB18) and "DSPs" (UltraScale's "CLB LUTs"/"CLB Registers" are accepted).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from resilq.errors import FormatError, ResilqError

IMPLEMENTATION_FILE = "implementation.txt"
METADATA_FILE = "resilq.json"
METADATA_FORMAT = 1
ROWS = {"LUT": ("Slice LUTs", "CLB LUTs"), "FF": ("Slice Registers", "CLB Registers"),
        "BRAM36": ("Block RAM Tile",), "DSP": ("DSPs",)}


class TimingError(ResilqError):
    """The routed design has negative setup or hold slack."""


@dataclass(frozen=True)
class Utilisation:
    """Used resources, in the units of the board budget (BRAM36: block RAM tiles, may end in .5)."""

    LUT: float
    FF: float
    DSP: float
    BRAM36: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class OverlayMetadata:
    board: str
    vivado: str
    pe: int
    simd: int
    config_id: int
    wns_ns: float
    whs_ns: float
    timing_report: str
    design: Utilisation
    accelerator: Utilisation | None

    @property
    def meets_timing(self) -> bool:
        return self.wns_ns >= 0 and self.whs_ns >= 0

    def write(self, directory: Path) -> Path:
        path = Path(directory) / METADATA_FILE
        data = {"format": METADATA_FORMAT, **asdict(self)}
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> OverlayMetadata:
        try:
            data = json.loads(Path(path).read_text())
            if data.pop("format") != METADATA_FORMAT:
                raise FormatError(f"{path}: overlay metadata format {data.get('format')} is not {METADATA_FORMAT}")
            design = Utilisation(**data.pop("design"))
            accel = data.pop("accelerator")
            return cls(design=design, accelerator=None if accel is None else Utilisation(**accel), **data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"{path}: not an overlay metadata file: {exc}") from None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_utilization(text: str, source: str = "report") -> Utilisation:
    """The used LUT, FF, DSP and block-RAM tiles of a ``report_utilization`` text report."""
    found: dict[str, float] = {}
    used_col = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if cells and cells[0] == "Site Type":
            used_col = cells.index("Used") if "Used" in cells else None
            continue
        if used_col is None or len(cells) <= used_col:
            continue
        name = cells[0].rstrip("*").strip()
        for key, names in ROWS.items():
            if name in names and key not in found:
                try:
                    found[key] = float(cells[used_col])
                except ValueError:
                    raise FormatError(f"{source}: '{name}' has no number in its Used column: {line.strip()}") from None
    missing = [k for k in ROWS if k not in found]
    if missing:
        raise FormatError(f"{source}: no {', '.join(missing)} row in the utilization report")
    return Utilisation(found["LUT"], found["FF"], found["DSP"], found["BRAM36"])


def read_implementation(build_dir: Path) -> dict[str, str]:
    """The key/value lines of ``implementation.txt`` (a :class:`FormatError` if absent or incomplete)."""
    path = Path(build_dir) / IMPLEMENTATION_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise FormatError(f"{path}: the build wrote no implementation record: {exc}") from None
    values = dict(line.split(" ", 1) if " " in line else (line, "") for line in lines if line.strip())
    missing = {"vivado", "wns", "whs", "timing_report", "utilization_report", "accelerator_report"} - set(values)
    if missing:
        raise FormatError(f"{path}: missing {sorted(missing)}")
    return values


def _slack(values: dict[str, str], key: str, path: Path) -> float:
    try:
        slack = float(values[key])
    except ValueError:
        raise FormatError(f"{path}: {key} is {values[key]!r}, not a number (timing was not analysed)") from None
    if not math.isfinite(slack):
        raise FormatError(f"{path}: {key} is {slack}")
    return slack


def overlay_metadata(build_dir: Path, board: str, pe: int, simd: int, config_id: int) -> OverlayMetadata:
    """The metadata of the overlay built in ``build_dir`` (reports parsed)."""
    values = read_implementation(build_dir)
    path = Path(build_dir) / IMPLEMENTATION_FILE
    design = parse_utilization(Path(values["utilization_report"]).read_text(), values["utilization_report"])
    accel = None
    if values["accelerator_report"]:
        accel = parse_utilization(Path(values["accelerator_report"]).read_text(), values["accelerator_report"])
    return OverlayMetadata(board, values["vivado"], pe, simd, config_id, _slack(values, "wns", path),
                           _slack(values, "whs", path), values["timing_report"], design, accel)


def check_timing(meta: OverlayMetadata) -> OverlayMetadata:
    failed = [f"{what} {value} ns" for what, value in (("setup slack (WNS)", meta.wns_ns), ("hold slack (WHS)",
                                                                                            meta.whs_ns)) if value < 0]
    if failed:
        raise TimingError(f"the routed overlay fails timing: {', '.join(failed)}; no bitstream was copied out. "
                          f"See the timing report {meta.timing_report}")
    return meta
