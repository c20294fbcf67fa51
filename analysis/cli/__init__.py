"""The ``resilq`` command line: one sub-command module per pipeline stage, registered in ``COMMANDS``."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import run_command

#: Sub-command modules, in the order ``resilq --help`` lists them. Each defines ``register(subparsers)``.
COMMANDS = ("demo", "train", "info", "analyze", "nvf_table", "nvf_compare", "gain", "harden", "clip", "prune", "campaign", "hls",
            "interchange", "deploy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resilq", description="Fault-tolerant quantized neural networks on FPGA "
                                     "accelerators: train, analyse, harden, inject faults, build, deploy.")
    parser.add_argument("--version", action="version", version=f"resilq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_command(args.command, args.func, args)


if __name__ == "__main__":
    sys.exit(main())
