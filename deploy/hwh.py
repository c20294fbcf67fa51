"""An overlay's hardware description (``.hwh``) against the register map this driver speaks.

Vivado writes the block design's metadata into ``<overlay>.hwh`` beside the bitstream; pynq builds its
``ip_dict`` from it. This module reads the accelerator's entry with ``xml.etree`` (no pynq needed, so
a package can be checked on any host before the board sees it) or takes pynq's ``ip_dict`` entry, and
:func:`check_ip` refuses an overlay whose IP is not the accelerator, implements another register-map
version, or places a register elsewhere than :mod:`resilq.hls.regmap` says -- naming each difference.

Register names follow Vitis HLS's export (as in the PYNQ v3.0.1 PYNQ-Z2 ``base.hwh``, Vivado 2022.1):
block control ``CTRL``/``GIER``/``IP_IER``/``IP_ISR``; a 32-bit argument ``<arg>``; a 64-bit pointer
``<arg>_1`` (bits 0-31) and ``<arg>_2`` (bits 32-63); HLS appends ``_r`` to an argument whose name
collides with a reserved word (``length`` -> ``length_r``), which the check accepts. numpy not needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resilq.errors import FormatError, MismatchError
from resilq.hls import regmap as rm

VENDOR, LIBRARY, IP_NAME = "resilq.org", "hls", "resilq_accel"
#: The VLNV of the accelerator this driver speaks to: the IP version's major number is the register-map version.
VLNV = f"{VENDOR}:{LIBRARY}:{IP_NAME}:{rm.VERSION}.0"
#: The s_axilite bundle of the top function (``bundle=control``): the IP's AXI-Lite port is ``s_axi_control``.
LITE_INTERFACE = "s_axi_control"
#: The HLS names of the block-control registers.
BLOCK_CONTROL_NAMES = {rm.AP_CTRL: "CTRL", rm.GIE: "GIER", rm.IER: "IP_IER", rm.ISR: "IP_ISR"}


@dataclass(frozen=True)
class HwhRegister:
    name: str
    offset: int
    size: int  # bits
    access: str  # "read-write", "read-only", "write-only"


@dataclass(frozen=True)
class OverlayIP:
    """The accelerator instance as an overlay describes it."""

    instance: str  # block-design name (the attribute pynq's Overlay gives it)
    vlnv: str
    base_address: int | None
    address_range: int | None
    registers: dict[str, HwhRegister] = field(default_factory=dict)
    source: str = ""

    @property
    def register_map_version(self) -> int | None:
        major = self.vlnv.rsplit(":", 1)[-1].split(".")[0]
        return int(major) if major.isdigit() else None


def expected_registers() -> list[tuple[str, int, rm.Register]]:
    """``(hwh name, offset, register)`` of every data word the hwh must describe, from the register map."""
    out = []
    for reg in rm.REGISTERS:
        if reg.access is rm.Access.CTRL:
            out.append((BLOCK_CONTROL_NAMES[reg], reg.offset, reg))
        elif reg.bits == 64:
            out += [(f"{reg.arg}_1", reg.offset, reg), (f"{reg.arg}_2", reg.offset + 4, reg)]
        else:
            out.append((str(reg.arg), reg.offset, reg))
    return out


def _same_name(hls: str, expected: str) -> bool:
    if hls == expected:
        return True
    base, _, word = expected.rpartition("_") if expected[-2:] in ("_1", "_2") else (expected, "", "")
    return hls == (f"{base}_r_{word}" if word else f"{expected}_r")


def differences(ip: OverlayIP) -> list[str]:
    """Every way ``ip`` differs from what this driver expects (empty: it is the accelerator we speak to)."""
    diffs = []
    vendor_lib_name = ip.vlnv.rsplit(":", 1)[0]
    if vendor_lib_name != VLNV.rsplit(":", 1)[0]:
        return [f"IP {ip.instance!r} is {ip.vlnv}, not the resilq accelerator ({VLNV})"]
    if ip.vlnv != VLNV:
        diffs.append(f"IP {ip.instance!r} is {ip.vlnv} (register map v{ip.register_map_version}); this driver speaks "
                     f"register map v{rm.VERSION} ({VLNV}): rebuild the overlay (make -C overlays) or use the resilq "
                     "release that matches it")
    if ip.address_range is not None and ip.address_range < rm.ADDRESS_SPACE:
        diffs.append(f"IP {ip.instance!r} has an AXI-Lite window of {ip.address_range:#x} bytes, the register map "
                     f"needs {rm.ADDRESS_SPACE:#x}")
    if not ip.registers:  # nothing to check the register map against is not a match
        diffs.append(f"IP {ip.instance!r} describes no registers (no REGISTER elements in its s_axi_control "
                     "address block): not an overlay exported from this accelerator (rebuild it: make -C overlays)")
    else:
        by_offset: dict[int, list[HwhRegister]] = {}
        for r in ip.registers.values():
            by_offset.setdefault(r.offset, []).append(r)
        for name, offset, reg in expected_registers():
            found = by_offset.get(offset, [])
            if not any(_same_name(r.name, name) for r in found):
                elsewhere = [r for r in ip.registers.values() if _same_name(r.name, name)]
                where = (f"found at {elsewhere[0].offset:#x}" if elsewhere else
                         f"{', '.join(r.name for r in found)} is there" if found else "absent")
                diffs.append(f"register {reg.name} ({name}) expected at {offset:#x}: {where}")
        table = [r for r in ip.registers.values() if _same_name(r.name, str(rm.CRIT_TABLE.arg))]
        if table and table[0].offset != rm.CRIT_TABLE.offset:
            diffs.append(f"table {rm.CRIT_TABLE.name} expected at {rm.CRIT_TABLE.offset:#x}, found at {table[0].offset:#x}")
    return diffs


def check_ip(ip: OverlayIP) -> OverlayIP:
    """Raise :class:`MismatchError` naming every difference, or return ``ip``."""
    diffs = differences(ip)
    if diffs:
        where = f" ({ip.source})" if ip.source else ""
        raise MismatchError(f"the overlay{where} does not match this driver: " + "; ".join(diffs))
    return ip


# ---------------------------------------------------------------------------------------------- .hwh files
def _properties(element: ET.Element) -> dict[str, str]:
    return {p.get("NAME", ""): p.get("VALUE", "") for p in element.findall("PROPERTY")}


def _int(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _module_ip(module: ET.Element, source: str) -> OverlayIP:
    instance = module.get("INSTANCE") or module.get("FULLNAME", "").lstrip("/")
    registers: dict[str, HwhRegister] = {}
    address_range = None
    for block in module.iter("ADDRESSBLOCK"):
        if block.get("INTERFACE") not in (None, LITE_INTERFACE):
            continue
        address_range = _int(block.get("RANGE")) or address_range
        for reg in block.iter("REGISTER"):
            props = _properties(reg)
            offset = _int(props.get("ADDRESS_OFFSET"))
            if offset is None:
                raise FormatError(f"{source}: register {reg.get('NAME')} of {instance} has no ADDRESS_OFFSET")
            name = reg.get("NAME", "")
            registers[name] = HwhRegister(name, offset, _int(props.get("SIZE")) or 32, props.get("ACCESS", ""))
    params = {p.get("NAME", ""): p.get("VALUE", "") for p in module.iter("PARAMETER")}
    base = _int(params.get("C_S_AXI_CONTROL_BASEADDR"))
    high = _int(params.get("C_S_AXI_CONTROL_HIGHADDR"))
    if base is not None and high is not None and address_range is None:
        address_range = high - base + 1
    return OverlayIP(instance, module.get("VLNV", ""), base, address_range, registers, source)


def read_hwh(path: str | Path) -> list[OverlayIP]:
    """Every IP of the ``.hwh`` whose VLNV names the resilq accelerator (any version)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise FormatError(f"{path}: cannot read the hardware description: {exc}") from None
    prefix = f"{VENDOR}:{LIBRARY}:{IP_NAME}:"
    modules = list(root.iter("MODULE"))
    found = [_module_ip(m, str(path)) for m in modules if m.get("VLNV", "").startswith(prefix)]
    # the PS memory map gives the base address where the IP module does not
    ranges = {r.get("INSTANCE"): r for r in root.iter("MEMRANGE")}
    for k, ip in enumerate(found):
        mr = ranges.get(ip.instance)
        if ip.base_address is None and mr is not None:
            base, high = _int(mr.get("BASEVALUE")), _int(mr.get("HIGHVALUE"))
            span = high - base + 1 if base is not None and high is not None else ip.address_range
            found[k] = OverlayIP(ip.instance, ip.vlnv, base, ip.address_range or span, ip.registers, ip.source)
    return found


def accelerator_in_hwh(path: str | Path) -> OverlayIP:
    """The one accelerator of an overlay, checked against the register map (or a :class:`MismatchError`)."""
    ips = read_hwh(path)
    if not ips:
        try:
            others = sorted({m.get("VLNV", "?") for m in ET.parse(path).getroot().iter("MODULE")})
        except (OSError, ET.ParseError):
            others = []
        raise MismatchError(f"{path}: the overlay holds no resilq accelerator ({VLNV}); its IPs: "
                            f"{', '.join(others) or 'none'}")
    if len(ips) > 1:
        raise MismatchError(f"{path}: the overlay holds {len(ips)} resilq accelerators "
                            f"({', '.join(i.instance for i in ips)}); this driver drives one")
    return check_ip(ips[0])


def ip_from_description(description: Mapping[str, Any], source: str = "pynq ip_dict") -> OverlayIP:
    """The accelerator as pynq's ``ip_dict`` entry describes it (the same checks as a ``.hwh``)."""
    registers = {}
    for name, reg in (description.get("registers") or {}).items():
        registers[name] = HwhRegister(name, int(reg["address_offset"]), int(reg.get("size", 32)), str(reg.get("access", "")))
    base = description.get("phys_addr")
    span = description.get("addr_range")
    return OverlayIP(str(description.get("fullpath", description.get("type", "?"))), str(description.get("type", "")),
                     None if base is None else int(base), None if span is None else int(span), registers, source)
