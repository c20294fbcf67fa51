"""``resilq package`` and ``resilq run``: build a deployment package, run it on board/emulator/C-sim."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import batch_size, non_negative_int, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    from resilq.boards import DEFAULT_BOARD
    from resilq.deploy.cli import add_run_options
    from resilq.hls.config import AccelConfig

    p = sub.add_parser("package", help="write a deployment package: overlay, model, driver code (board or emulator)")
    p.add_argument("model", type=Path, help="the .rq model to deploy")
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name in boards/ or a board.toml path")
    p.add_argument("--out", type=Path, required=True, help="package folder to write (replaced if it is a package)")
    p.add_argument("--pe", type=int, default=AccelConfig.pe, help="output lanes of the accelerator build")
    p.add_argument("--simd", type=int, default=AccelConfig.simd, help="input lanes of the accelerator build")
    p.add_argument("--shadow-units", type=int, default=AccelConfig.shadow_units,
                   help="dedicated shadow lanes of the accelerator build")
    p.add_argument("--batch", type=batch_size, default=64, help="images per accelerator run")
    p.add_argument("--overlay-dir", type=Path, default=None,
                   help="folder with resilq.bit + resilq.hwh (default: overlays/<board>/ when built)")
    p.add_argument("--dataset", default=None, help="bundle this dataset's test images as the evaluation set")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="directory of the dataset's standard files")
    p.add_argument("--images", type=positive_int, default=None, help="images to bundle (default: all)")
    p.add_argument("--offset", type=non_negative_int, default=0, help="first test image to bundle")
    p.set_defaults(func=run_package_command)

    p = sub.add_parser("run", help="run a deployment package: accuracy, latency, cycles, corrections")
    p.add_argument("package", type=Path, help="package folder (from resilq package)")
    add_run_options(p)
    p.set_defaults(func=run_run_command)

    p = sub.add_parser("campaign-compare", help="compare two campaigns of the same faults fault by fault "
                       "(board vs emulator vs the Python engine)")
    p.add_argument("a", type=Path, help="campaign database")
    p.add_argument("b", type=Path, help="campaign database of the same model, data, fault model and seed")
    p.add_argument("--show", type=non_negative_int, default=10, help="mismatching faults to list (default 10)")
    p.set_defaults(func=run_compare_command)


def run_package_command(args: argparse.Namespace) -> int:
    import numpy as np

    from resilq.boards import load_board
    from resilq.deploy.build import PackageRequest, build_package, check_out
    from resilq.deploy.package import BundledData
    from resilq.hls.config import AccelConfig
    from resilq.ir import load_model
    from resilq.ui import say

    # before the dataset is read: refuse an --out that is not a package, or holds the model or the data
    check_out(args.out, {"model": args.model, "data folder": None if args.data_dir is None else Path(args.data_dir)})
    data = None
    if args.dataset is not None:
        from resilq.data import load_dataset

        part = load_dataset(args.dataset, "test", args.data_dir).take(args.images, args.offset)
        x = load_model(args.model).quantize_input(part.images)
        data = BundledData(x, part.labels.astype(np.int64), args.dataset, "test", args.offset)
    request = PackageRequest(args.model, load_board(args.board), args.out, AccelConfig(pe=args.pe, simd=args.simd, shadow_units=args.shadow_units),
                             args.batch, args.overlay_dir, data)
    out = build_package(request)
    say((out / "README.txt").read_text())
    say(f"On this machine: resilq run {out} --target emulator --verify")
    return 0


def run_run_command(args: argparse.Namespace) -> int:
    from resilq.deploy.cli import run_package
    from resilq.deploy.package import load_package

    return run_package(load_package(args.package), args)


def run_compare_command(args: argparse.Namespace) -> int:
    """Cross-validation report: identical outcomes (exit 0) or the faults whose outcomes differ (exit 1)."""
    from collections import Counter

    import numpy as np

    from resilq.campaign.engine import How
    from resilq.deploy.campaign import compare_campaigns
    from resilq.ui import say, table

    cmp = compare_campaigns(args.a, args.b)

    def source(report) -> str:
        backends = sorted({str(s.get("backend")) for s in report.sessions})
        return ", ".join(backends) or "?"

    def how(report, idx) -> str:
        rows = report.outcomes.how[np.searchsorted(report.idx, idx)]
        return ", ".join(f"{n:,} {How(h).name.lower()}" for h, n in sorted(Counter(rows.tolist()).items()))

    meta = cmp.a.meta
    rows = [("campaign", f"{meta['model_name']} ({meta['model_hash'][:12]}), {meta['fault_model']}, seed {meta['seed']}, "
             f"{meta['dataset']}/{meta['split']}[{meta['offset']}:{meta['offset'] + meta['images']}]"),
            (f"A {args.a}", f"{source(cmp.a)}: {cmp.a.idx.size:,} of {len(cmp.a.sample):,} faults done ("
             f"{how(cmp.a, cmp.compared)})"),
            (f"B {args.b}", f"{source(cmp.b)}: {cmp.b.idx.size:,} of {len(cmp.b.sample):,} faults done ("
             f"{how(cmp.b, cmp.compared)})"),
            ("faults compared", f"{cmp.compared.size:,}"),
            ("identical outcomes", f"{cmp.compared.size - cmp.mismatched.size:,} (top-1 of every input, changed, correct)"),
            ("mismatches", f"{cmp.mismatched.size:,}")]
    table("campaign cross-validation", ("", "value"), rows)
    if cmp.mismatched.size:
        s = cmp.a.sample
        ra, rb = np.searchsorted(cmp.a.idx, cmp.mismatched), np.searchsorted(cmp.b.idx, cmp.mismatched)
        body = [(int(i), int(s.layer[i]), int(s.slot[i]), f"{int(s.mask[i]):#04x}",
                 f"{int(cmp.a.outcomes.changed[p])} / {int(cmp.b.outcomes.changed[q])}",
                 f"{int(cmp.a.outcomes.correct[p])} / {int(cmp.b.outcomes.correct[q])}")
                for i, p, q in list(zip(cmp.mismatched, ra, rb))[:args.show]]
        table(f"first {len(body)} mismatching faults", ("fault", "layer", "slot", "mask", "changed A / B",
                                                        "correct A / B"), body)
        return 1
    if cmp.compared.size == 0:
        say("no fault is finished in both campaigns yet")
        return 1
    say("identical: every compared fault has the same outcome on every input")
    return 0
