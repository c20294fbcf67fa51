"""Progress display and tables for people: rich bars on a terminal, periodic lines in logs (CI, pipes).

Without ``rich`` (a PYNQ image's Python, where a deployment package runs) the same calls print plain
text: tables as aligned columns, messages as lines, progress as periodic lines.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_console = None


@functools.lru_cache(maxsize=1)
def have_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


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
    if have_rich() and console().is_terminal:
        con = console()
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


#: A cell that reads as a number: a count, a value with its unit, or a value with its interval
#: (``3,456``, ``0.107 %``, ``+2.0 %``, ``3.38x``, ``0.107 % [0.080 %, 0.134 %]``, ``0.000 ± 16.113 %``).
NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?( ?(%|µs|us|x|s))?(( \[[-+\d.,% ]+\])|( ± [\d.,]+( ?%)?))?")
#: Cells that say nothing about a column's kind: blanks and placeholders.
PLACEHOLDERS = ("", "-", "n/a")


def is_number(value: Any) -> bool:
    """Does a table cell read as a number (right-aligned) rather than as text (left-aligned)?"""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and NUMBER.fullmatch(value) is not None)


def numeric_column(values: Sequence[Any]) -> bool:
    """A column of numbers: every cell reads as a number (placeholders aside) and at least one does."""
    shown = [v for v in values if v is not None and not (isinstance(v, str) and v in PLACEHOLDERS)]
    return bool(shown) and all(is_number(v) for v in shown)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None,
          justify: Sequence[str] | None = None) -> None:
    """Print a table; columns holding only numbers are right-aligned, others left-aligned."""
    if not have_rich():
        _plain_table(title, columns, rows, caption, justify)
        return
    from rich.table import Table

    cells = [[_fmt(v) for v in row] for row in rows]
    t = Table(title=title, caption=caption, title_justify="left", show_lines=False)
    for i, col in enumerate(columns):
        numeric = numeric_column([r[i] for r in rows])
        # a number is never cut to "1,234,…" on a narrow terminal: it folds onto the next line instead
        t.add_column(col, justify=justify[i] if justify else ("right" if numeric else "left"),
                     overflow="fold" if numeric else "ellipsis")
    for row in cells:
        t.add_row(*row)
    con = console()
    natural = con.measure(t, options=con.options.update_width(100_000)).maximum
    if con.is_terminal or natural <= con.width:
        con.print(t)
        return
    # a log or a pipe: the table at its natural width, nothing wrapped or cut at the console's 120 columns
    from rich.console import Console

    Console(highlight=False, soft_wrap=False, width=natural).print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _plain_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None,
                 justify: Sequence[str] | None) -> None:
    cells = [list(columns)] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    right = [j == "right" for j in justify] if justify else [numeric_column([r[i] for r in rows])
                                                                for i in range(len(columns))]
    print(title)
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    if caption:
        print(caption)


def say(message: str) -> None:
    if not have_rich():
        print(message)
        return
    console().print(message)
