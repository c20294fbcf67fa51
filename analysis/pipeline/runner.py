"""Run a pipeline's steps in order, from any step to any step (like FINN's build steps).

Each step reads what earlier steps saved in the output folder and saves its own summary there, so a run
can stop after any step (``stop``) and a later run can start from any step (``start``) without redoing
the earlier ones.
"""

from __future__ import annotations

import time

from ..errors import ParameterError
from ..ui import say
from .config import PipelineConfig, to_toml
from .context import Context
from .steps import NAMES, STEPS


def select(start: str | None, stop: str | None) -> list[str]:
    for name in (start, stop):
        if name is not None and name not in NAMES:
            raise ParameterError(f"unknown step {name!r}; the steps are {', '.join(NAMES)}")
    first = NAMES.index(start) if start else 0
    last = NAMES.index(stop) if stop else len(NAMES) - 1
    if first > last:
        raise ParameterError(f"step {start!r} comes after {stop!r}: nothing to run")
    return list(NAMES[first:last + 1])


def run_pipeline(config: PipelineConfig, start: str | None = None, stop: str | None = None) -> Context:
    """Run the steps ``start``..``stop`` (default: all); returns the context (output folder)."""
    names = select(start, stop)
    ctx = Context(config.check())
    ctx.out.mkdir(parents=True, exist_ok=True)
    (ctx.out / "pipeline.toml").write_text(to_toml(config))
    began = time.perf_counter()
    for step in STEPS:
        if step.name not in names:
            continue
        k = NAMES.index(step.name) + 1
        say(f"[bold]step {k}/{len(NAMES)} {step.name}[/bold]: {step.description}")
        t0 = time.perf_counter()
        summary = step.module.run(ctx)
        summary["seconds_step"] = time.perf_counter() - t0
        ctx.save_summary(step.name, summary)
        say(f"  {step.name} done in {summary['seconds_step']:.1f} s -> {ctx.out / step.name}")
    say(f"pipeline {config.run.name}: {len(names)} step(s) in {time.perf_counter() - began:.0f} s; outputs in {ctx.out}")
    return ctx
