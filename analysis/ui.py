"""Progress display and tables for people: rich bars on a terminal, periodic lines in logs (CI, pipes)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_console = None


def console():
    """The shared rich console (stdout)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    return _console


def quiet() -> bool:
    return os.environ.get("RESILQ_QUIET", "") not in ("", "0")


@contextmanager
def progress(total: int, description: str, unit: str = "it") -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``. On a terminal a live bar; otherwise a line every ~5 s and at the end."""
    if quiet() or total <= 0:
        yield lambda n=1: None
        return
    con = console()
    if con.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(), console=con, transient=False)
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
        return
    state = {"done": 0, "last": time.monotonic()}
    start = state["last"]

    def advance(n: int = 1) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= 5.0 and state["done"] < total:
            state["last"] = now
            frac = state["done"] / total
            eta = (now - start) * (1 - frac) / max(frac, 1e-9)
            print(f"  {description}: {state['done']}/{total} {unit} ({frac:.0%}), eta {eta:.0f} s", flush=True)

    yield advance
    print(f"  {description}: {state['done']}/{total} {unit} in {time.monotonic() - start:.1f} s", flush=True)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None,
          justify: Sequence[str] | None = None) -> None:
    """Print a table; columns holding only numbers are right-aligned, others left-aligned."""
    from rich.table import Table

    t = Table(title=title, caption=caption, title_justify="left", show_lines=False)
    for i, col in enumerate(columns):
        numeric = all(isinstance(r[i], (int, float)) or r[i] in ("", None) for r in rows)
        t.add_column(col, justify=justify[i] if justify else ("right" if numeric else "left"))
    for row in rows:
        t.add_row(*[_fmt(v) for v in row])
    console().print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def say(message: str) -> None:
    console().print(message)
