"""``resilq hls``: the accelerator's estimates, C-sim testbench and Vitis HLS build (see resilq.hls.cli)."""

from resilq.hls.cli import register

__all__ = ["register"]
