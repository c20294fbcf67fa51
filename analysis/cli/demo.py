"""``resilq demo`` (the README's first command) and ``resilq pipeline`` (the same flow from a TOML config)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ui import say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job end to end on the bundled digits data: train LeNet-5, NVF, "
                       "harden (split, tmr), campaigns, HLS C-sim, driver on the emulator, HTML report")
    p.add_argument("--out", type=Path, default=Path("resilq-demo"), help="output folder (default: resilq-demo)")
    p.add_argument("--quick", action="store_true", help="fewer epochs, inputs and faults (CI; 20-80 s on 2 shared cores)")
    p.set_defaults(func=run_demo)

    p = sub.add_parser("pipeline", help="run the end-to-end flow from a TOML config, from/to any named step")
    ps = p.add_subparsers(dest="pipeline_command", metavar="ACTION")
    q = ps.add_parser("run", help="run the steps of CONFIG (each step's outputs saved under run.out)")
    q.add_argument("config", type=Path, help="pipeline TOML (resilq pipeline init writes a documented one)")
    q.add_argument("--from", dest="start", default=None, metavar="STEP", help="first step to run")
    q.add_argument("--to", dest="stop", default=None, metavar="STEP", help="last step to run")
    q.add_argument("--out", type=Path, default=None, help="override run.out")
    q.set_defaults(func=run_config)
    q = ps.add_parser("init", help="write a pipeline TOML with every option at its default")
    q.add_argument("config", type=Path, help="file to write")
    q.add_argument("--demo", action="store_true", help="the demo's settings (LeNet-5 on digits)")
    q.add_argument("--quick", action="store_true", help="with --demo: the quick demo's settings")
    q.set_defaults(func=run_init)
    q = ps.add_parser("steps", help="list the steps in order")
    q.set_defaults(func=run_steps)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _finish(ctx) -> int:
    report = ctx.summary("report") if ctx.has("report") else None
    if report is None:
        return 0
    say(f"open {ctx.out / 'report' / report['html']} in a browser")
    if report["failed_links"]:
        say(f"[red]chain of trust FAILED: {', '.join(report['failed_links'])}[/red]")
        return 1
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from ..pipeline import demo_config, run_pipeline

    return _finish(run_pipeline(demo_config(str(args.out), quick=args.quick)))


def run_config(args: argparse.Namespace) -> int:
    from ..pipeline import load_config, run_pipeline

    config = load_config(args.config)
    if args.out is not None:
        config.run.out = str(args.out)
    return _finish(run_pipeline(config, args.start, args.stop))


def run_init(args: argparse.Namespace) -> int:
    from ..errors import ParameterError
    from ..pipeline import PipelineConfig, demo_config, to_toml

    if args.config.exists():
        raise ParameterError(f"{args.config} exists; choose another file name")
    config = demo_config("resilq-demo", quick=args.quick) if args.demo else PipelineConfig()
    args.config.write_text(to_toml(config))
    say(f"wrote {args.config}; edit it, then: resilq pipeline run {args.config}")
    return 0


def run_steps(args: argparse.Namespace) -> int:
    from ..pipeline.steps import STEPS
    from ..ui import table

    table("pipeline steps", ("#", "step", "what it does"), [(k + 1, s.name, s.description) for k, s in enumerate(STEPS)])
    return 0
