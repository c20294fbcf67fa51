"""``resilq demo``: the main job end to end on the bundled digits data (README's first command)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ir import save_model
from ..ui import say
from .train import report_training


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end to end on the bundled digits data: train LeNet-5, export, verify, evaluate")
    p.add_argument("--out", type=Path, default=Path("resilq-demo"), help="output directory (default: resilq-demo)")
    p.add_argument("--quick", action="store_true", help="fewer epochs and inputs (for CI)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.qat import TrainConfig
    from ..train.workflow import train_and_export

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    say("[bold]step 1/1: train LeNet-5 on digits (Brevitas QAT), export to the integer IR, verify bit-true[/bold]")
    result = train_and_export("lenet5", "digits", None, TrainConfig(epochs=4 if args.quick else 10))
    ok = report_training(result)
    path = save_model(result.model, out / "lenet5.rq")
    say(f"wrote {path}")
    return 0 if ok else 1
