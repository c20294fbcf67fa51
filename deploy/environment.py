"""The dependency check a deployment package runs before anything else (standard library only).

A package is built for a board image: ``manifest.json`` records the Python, numpy and pynq versions of
that image (from the board file's ``[software]``). :func:`problems` compares them with the running
interpreter -- Python at least the image's, numpy importable and at least the image's, pynq importable
and at least the image's when the target is the board -- and names each one that fails, with what to do.
It imports numpy and pynq only inside ``try`` blocks, so it reports instead of crashing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.21.5"`` -> ``(1, 21, 5)``; stops at the first non-numeric part (``"2.0.0rc1"`` -> ``(2, 0)``)."""
    out = []
    for part in str(text).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(out)


def _at_least(have: str, need: str) -> bool:
    return parse_version(have) >= parse_version(need)


def problems(requirements: Mapping[str, str], board: bool) -> list[str]:
    """What keeps this interpreter from running the package (empty: nothing)."""
    found = []
    python = ".".join(map(str, sys.version_info[:3]))
    if not _at_least(python, requirements.get("python", "3.10")):
        found.append(f"Python {python} is older than {requirements['python']} (the board image's); run the "
                     "package with the image's python3")
    try:
        import numpy
    except ImportError:
        found.append(f"numpy is not installed: pip install 'numpy>={requirements.get('numpy', '1.21')}'")
    else:
        if not _at_least(numpy.__version__, requirements.get("numpy", "1.21")):
            found.append(f"numpy {numpy.__version__} is older than {requirements['numpy']}: pip install --upgrade numpy")
    if board:
        try:
            import pynq
        except ImportError:
            found.append("the board target needs pynq (a PYNQ image has it; run as root in the pynq-venv: "
                         "sudo -E python3 ...), or use --target emulator")
        else:
            version = getattr(pynq, "__version__", "0")
            if not _at_least(version, requirements.get("pynq", "3.0")):
                found.append(f"pynq {version} is older than {requirements['pynq']} (the image this package is built for)")
    return found


def describe() -> dict[str, str]:
    """Versions of the running interpreter and libraries (for ``info`` and run reports)."""
    info = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in ("numpy", "pynq"):
        try:
            module = __import__(name)
        except ImportError:
            info[name] = "not installed"
        else:
            info[name] = str(getattr(module, "__version__", "?"))
    return info
