"""Figures sized for the page they are shown on (the HTML report, a screen): one definition of the scale.

Every plot is drawn ``PAGE_WIDTH_IN`` inches wide with matplotlib's default 10-pt text, and the report
shows it at ``PX_PER_INCH`` CSS pixels per inch, i.e. ``PAGE_WIDTH_IN * PX_PER_INCH`` pixels wide (the
report's content column): axis text is then ~14 px, as in print. PNGs are written at ``SAVE_DPI``
(``SAVE_DPI / PX_PER_INCH`` device pixels per CSS pixel) so they stay sharp on high-density screens.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

PAGE_WIDTH_IN = 11.0
PX_PER_INCH = 100
SAVE_DPI = 200
#: The CSS width of a full-width figure, and of the report's content column.
PAGE_WIDTH_PX = int(PAGE_WIDTH_IN * PX_PER_INCH)
#: Device pixels per CSS pixel in a saved PNG: the report declares it as the image's pixel density
#: (``srcset="... 2x"``, WHATWG HTML "density-corrected natural width"), so a browser's ``naturalWidth``
#: is the CSS width the figure was drawn for.
DENSITY = SAVE_DPI / PX_PER_INCH


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``SAVE_DPI`` and close it."""
    path = Path(path)
    fig.savefig(path, dpi=SAVE_DPI)
    pyplot().close(fig)
    return path


def png_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return struct.unpack(">II", head[16:24])


def intended_width(path: str | os.PathLike) -> int:
    """The CSS width a PNG written by :func:`save` is drawn for (``PAGE_WIDTH_PX`` for a full-width figure)."""
    return round(png_size(path)[0] / DENSITY)
