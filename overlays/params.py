"""The overlay build's parameters, derived from the board file, the register map and the HLS interfaces.

:func:`overlay_params` turns the typed facts -- :class:`resilq.boards.Board` (part, board part, PL clock,
HP port and width, AXI-Lite port and base, DDR size, tool version), the PS7 configuration
(:mod:`.ps7`: explicit properties from ``boards/<board>/ps7.toml``, or the board preset),
:mod:`resilq.hls.regmap` (the AXI-Lite window), the supported tool releases (:mod:`resilq.hls.tools`)
and the accelerator's interface (VLNV, s_axilite and m_axi bundle names) -- into one
:class:`OverlayParams`. :func:`render_params_tcl` writes it as a Tcl script of ``dict set`` commands
whose every value is quoted by :func:`tcl_word` (a Tcl word that reads back as exactly that string);
``tcl/build_overlay.tcl`` sources it and ``tcl/args.tcl`` validates it before any Vivado command runs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from resilq.boards import Board
from resilq.errors import ParameterError
from resilq.hls import regmap as rm
from resilq.hls.config import AccelConfig
from resilq.hls.tools import SUPPORTED_FIRST, SUPPORTED_LAST_YEAR

from .ps7 import Ps7Mode, load_ps7

#: The accelerator's AXI interfaces, as the HLS top function names them (``bundle=`` of its INTERFACE
#: pragmas, checked against hls/src/accel_top.cpp by the tests): the exported IP's ports are
#: ``s_axi_<LITE_BUNDLE>`` and ``m_axi_<bundle>``.
LITE_BUNDLE = "control"
MASTER_BUNDLES = ("gmem_ctrl", "gmem_w", "gmem_a")
IP_INSTANCE = "resilq_accel_0"
DESIGN = "resilq"  # block design, wrapper and output names: <out>/resilq.bit + resilq.hwh
TCL_PARAMS_VAR = "::resilq::overlay::params"


@dataclass(frozen=True)
class OverlayParams:
    """Everything the Vivado Tcl needs, one typed field each."""

    board: str
    part: str
    board_part: str
    vivado_version: str  # the board image's release (messages); any of release_first .. release_last_year.x runs
    release_first: str  # oldest supported Vivado release (resilq.hls.tools)
    release_last_year: int  # newest supported release year
    design: str
    pl_mhz: float
    pl_clock_index: int  # FCLK_CLK<k> / FCLK_RESET<k>_N of the PS7
    lite_port_index: int  # M_AXI_GP<k>
    lite_base: int
    lite_range: str  # Vivado range notation, e.g. 64K
    hp_port_index: int  # S_AXI_HP<k>
    hp_width: int
    ddr_range: str  # e.g. 512M
    ip_vlnv: str
    ip_instance: str
    lite_interface: str  # the IP's AXI-Lite port
    masters: tuple[str, ...]  # the IP's m_axi ports
    ps7_mode: str  # Ps7Mode value: "explicit" (part only) or "board-preset" (needs the board files)
    ps7_config: tuple[str, ...]  # PCW_* name, value, name, value, ... (explicit mode)
    ip_repo: str
    out_dir: str
    build_dir: str
    jobs: int


def size_string(nbytes: int) -> str:
    """A power-of-two size in Vivado's notation (65536 -> ``64K``, 536870912 -> ``512M``)."""
    if nbytes <= 0 or nbytes & (nbytes - 1):
        raise ParameterError(f"an address range must be a power of two, got {nbytes}")
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if nbytes >= 1 << shift:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)


def _index(name: str, pattern: str, what: str) -> int:
    m = re.fullmatch(pattern, name)
    if m is None:
        raise ParameterError(f"board file: {what} {name!r} is not a Zynq-7000 PS port name ({pattern})")
    return int(m.group(1))


def overlay_params(board: Board, config: AccelConfig, ip_repo: Path, out_dir: Path, build_dir: Path,
                   jobs: int = 2, ps7: Ps7Mode = Ps7Mode.EXPLICIT) -> OverlayParams:
    """The build parameters of ``config``'s overlay for ``board`` (validated)."""
    from resilq.deploy.hwh import VLNV

    if board.lite_base % rm.ADDRESS_SPACE:
        raise ParameterError(f"board file: lite_base {board.lite_base:#x} must be aligned to the accelerator's "
                             f"{rm.ADDRESS_SPACE:#x}-byte register space")
    if not 0x4000_0000 <= board.lite_base < 0x8000_0000:
        raise ParameterError(f"board file: lite_base {board.lite_base:#x} is outside M_AXI_GP0's range 0x40000000-0x7FFFFFFF")
    if jobs < 1:
        raise ParameterError(f"jobs must be positive, got {jobs}")
    ps7_config: tuple[str, ...] = ()
    if ps7 is Ps7Mode.EXPLICIT:
        ps7_config = tuple(x for item in load_ps7(board).properties for x in item)
    return OverlayParams(
        board=board.name, part=board.part, board_part=board.board_part, vivado_version=board.software.vivado,
        release_first=str(SUPPORTED_FIRST), release_last_year=SUPPORTED_LAST_YEAR, design=DESIGN, pl_mhz=board.pl_mhz, pl_clock_index=_index(board.pl_clock, r"FCLK_CLK([0-3])", "pl_clock"),
        lite_port_index=_index(board.lite_port, r"M_AXI_GP([01])", "lite_port"), lite_base=board.lite_base,
        lite_range=size_string(rm.ADDRESS_SPACE), hp_port_index=_index(board.hp_port, r"S_AXI_HP([0-3])", "hp_port"),
        hp_width=board.hp_port_bits, ddr_range=size_string(board.ddr_bytes), ip_vlnv=VLNV, ip_instance=IP_INSTANCE,
        lite_interface=f"s_axi_{LITE_BUNDLE}", masters=tuple(f"m_axi_{b}" for b in MASTER_BUNDLES),
        ps7_mode=ps7.value, ps7_config=ps7_config, ip_repo=str(ip_repo), out_dir=str(out_dir), build_dir=str(build_dir), jobs=jobs)


_BARE = re.compile(r"[A-Za-z0-9_.:/+\-=,@%]+")


def tcl_word(value: object) -> str:
    """``value`` as one Tcl word that the Tcl parser reads back as exactly ``str(value)``."""
    if isinstance(value, (list, tuple)):
        return tcl_word(" ".join(tcl_word(v) for v in value))
    if isinstance(value, bool):
        value = int(value)
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    depth, balanced = 0, True
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        balanced = balanced and depth >= 0
    if balanced and depth == 0 and "\\" not in text:
        return "{" + text + "}"
    return "".join("\\" + ch if ch in '\\{}[]$"; \t\n' else ch for ch in text) or '""'


def _tcl_value(value: object) -> object:
    return f"0x{value:08X}" if isinstance(value, int) and value >= 0x1000 else value


def render_params_tcl(params: OverlayParams, source: str) -> str:
    """The parameter script: one ``dict set`` per field, values quoted by :func:`tcl_word`."""
    lines = [f"# Overlay build parameters, generated by resilq.overlays from {source} and resilq.hls.regmap.",
             "# Do not edit: run `python -m resilq.overlays params` (or make -C overlays) again.",
             "namespace eval ::resilq::overlay {}", f"set {TCL_PARAMS_VAR} [dict create]"]
    for key, value in asdict(params).items():
        lines.append(f"dict set {TCL_PARAMS_VAR} {key} {tcl_word(_tcl_value(value))}")
    return "\n".join(lines) + "\n"


def write_params(params: OverlayParams, path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_params_tcl(params, source))
    return path
