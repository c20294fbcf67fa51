"""resilq.overlays: the Vivado block design and bitstream build of the accelerator overlay (``overlays/``)."""

from pathlib import Path

OVERLAYS_DIR = Path(__file__).resolve().parent
TCL_DIR = OVERLAYS_DIR / "tcl"
