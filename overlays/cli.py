"""``python -m resilq.overlays``: check-tools, params, build (what ``make -C overlays`` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resilq.boards import DEFAULT_BOARD, load_board
from resilq.errors import ResilqError
from resilq.hls.config import AccelConfig
from resilq.hls.tools import tool_warnings_shown

from .ps7 import Ps7Mode


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name in boards/ or a board.toml path")


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pe", type=int, default=AccelConfig.pe)
    p.add_argument("--simd", type=int, default=AccelConfig.simd)
    p.add_argument("--shadow-units", type=int, default=AccelConfig.shadow_units,
                   help="dedicated shadow lanes of the build (AccelConfig.shadow_units, range-checked there)")
    p.add_argument("--ip-repo", type=Path, required=True, help="the exported HLS IP (folder with component.xml)")
    p.add_argument("--out", type=Path, required=True, help="where resilq.bit and resilq.hwh go")
    p.add_argument("--build-dir", type=Path, required=True, help="Vivado project, logs, parameter file")
    p.add_argument("--jobs", type=int, default=2, help="parallel synthesis/implementation jobs")
    p.add_argument("--ps7", default="explicit", choices=("explicit", "board-preset"),
                   help="explicit: the PS7 set from boards/<board>/ps7.toml, only the part is needed (default); "
                        "board-preset: Vivado's board preset (needs the board files installed)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resilq.overlays")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-tools", help="Vitis HLS (vitis_hls or vitis-run) and Vivado on PATH, their releases checked (2022.1 - 2024.x)")
    _common(p)
    p = sub.add_parser("params", help="write the Tcl parameter script (no tools needed)")
    _common(p)
    _build_args(p)
    p = sub.add_parser("build", help="Vivado block design, synthesis, implementation, .bit + .hwh")
    _common(p)
    _build_args(p)
    args = parser.parse_args(argv)
    with tool_warnings_shown(f"resilq overlays {args.command}"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        board = load_board(args.board)
        if args.command == "check-tools":
            from .tools import check_tools

            for t in check_tools(board):
                print(t.describe())
            return 0
        config = AccelConfig(pe=args.pe, simd=args.simd, shadow_units=args.shadow_units)
        if args.command == "params":
            from .build import PARAMS_FILE
            from .params import overlay_params, write_params

            params = overlay_params(board, config, args.ip_repo.resolve(), args.out.resolve(),
                                    args.build_dir.resolve(), args.jobs, Ps7Mode.parse(args.ps7))
            print(write_params(params, args.build_dir / PARAMS_FILE, str(board.path)))
            return 0
        from .build import build_overlay

        result = build_overlay(board, config, args.ip_repo, args.out, args.build_dir, args.jobs, Ps7Mode.parse(args.ps7))
        meta = result.metadata
        print(f"overlay: {result.bit} + {result.hwh} (log {result.log}); WNS {meta.wns_ns} ns, WHS {meta.whs_ns} ns; "
              f"metadata {result.bit.with_name('resilq.json')}")
        return 0
    except ResilqError as exc:
        print(f"resilq overlays {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
