"""Checks of values read from files and the command line: one definition each, used by every reader.

A value from a package manifest, a board file, a pipeline TOML or an argument is checked here, at the
boundary where it is read, as the type it claims: an int is a real ``int`` (not a ``bool``, a string or
a float) inside a stated range, a number is finite, a name matches a strict pattern. The limits every
reader applies are the constants below (docs/security.md lists them). Standard library only: the
board-side code a deployment package ships imports it.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ParameterError, ResilqError

#: Longest wait for the accelerator's AP_DONE in one run (seconds): any finite positive value up to this.
MAX_TIMEOUT_S = 3600.0
#: Most images one accelerator run (a package's ``batch``) may hold.
MAX_BATCH = 4096
#: Largest count of images, faults, inputs, etc. taken from a file or the command line.
MAX_COUNT = 1 << 31
#: Largest pipeline depth (cycles) of one loop in :class:`resilq.hls.config.Latency`.
MAX_LATENCY_CYCLES = 1 << 16

#: Identifiers (board names, dataset names, ...): letters, digits, ``_ . -``, starting with a letter or digit.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def _kind(value: Any) -> str:
    return type(value).__name__


def check_int(value: Any, what: str, lo: int | None = None, hi: int | None = None,
              error: type[ResilqError] = ParameterError) -> int:
    """``value`` if it is a real int (``bool`` is not one) with ``lo <= value <= hi``; else ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what} must be an integer, got {value!r} ({_kind(value)})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise error(f"{what} must lie in {_range(lo, hi)}, got {value}")
    return value


def check_number(value: Any, what: str, lo: float | None = None, hi: float | None = None,
                 error: type[ResilqError] = ParameterError, positive: bool = False) -> float:
    """``value`` as a finite float (ints accepted, ``bool``/strings/nan/inf refused) in ``[lo, hi]``
    (and ``> 0`` with ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{what} must be a number, got {value!r} ({_kind(value)})")
    value = float(value)
    if not math.isfinite(value):
        raise error(f"{what} must be a finite number, got {value}")
    if positive and value <= 0:
        raise error(f"{what} must be positive, got {value:g}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise error(f"{what} must lie in {_range(lo, hi)}, got {value:g}")
    return value


def check_positive_finite(value: Any, what: str, maximum: float | None = None,
                          error: type[ResilqError] = ParameterError) -> float:
    """A finite number ``0 < value <= maximum`` (timeouts, clock frequencies)."""
    return check_number(value, what, None, maximum, error, positive=True)


def check_timeout(value: Any, what: str = "timeout", error: type[ResilqError] = ParameterError) -> float:
    """Seconds to wait for the accelerator: finite, positive, at most :data:`MAX_TIMEOUT_S`."""
    return check_positive_finite(value, f"{what} (seconds)", MAX_TIMEOUT_S, error)


def check_str(value: Any, what: str, pattern: re.Pattern[str] | None = None,
              error: type[ResilqError] = ParameterError, max_length: int = 256) -> str:
    """``value`` if it is a string of printable characters (at most ``max_length``), fully matching ``pattern``."""
    if not isinstance(value, str):
        raise error(f"{what} must be a string, got {value!r} ({_kind(value)})")
    if len(value) > max_length or not value.isprintable():
        raise error(f"{what} must be at most {max_length} printable characters, got {value[:80]!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise error(f"{what} {value!r} does not match {pattern.pattern}")
    return value


def check_name(value: Any, what: str, error: type[ResilqError] = ParameterError) -> str:
    """An identifier matching :data:`NAME` (safe in a path component, a Tcl word and a shell word)."""
    return check_str(value, what, NAME, error)


def check_mapping(value: Any, what: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
                  error: type[ResilqError] = ParameterError, closed: bool = True) -> Mapping[str, Any]:
    """``value`` if it is a dict holding every ``required`` key and (``closed``) no key outside ``required + optional``."""
    if not isinstance(value, dict):
        raise error(f"{what} must be a table/object, got {value!r:.80} ({_kind(value)})")
    missing = [k for k in required if k not in value]
    if missing:
        raise error(f"{what} lacks {', '.join(repr(k) for k in missing)}")
    if closed:
        unknown = sorted(str(k) for k in value if k not in required and k not in optional)
        if unknown:
            raise error(f"{what} has unknown keys {unknown}")
    return value


def _range(lo: float | None, hi: float | None) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


# ------------------------------------------------------------------------------- argparse ``type=`` checks
def cli_int(lo: int = 0, hi: int = MAX_COUNT, what: str = "an integer") -> Callable[[str], int]:
    """An argparse type: an integer in ``[lo, hi]`` (argparse turns the error into a usage message, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {what} in {lo}..{hi}, got {value}")
        return value

    parse.__name__ = what.replace(" ", "_")  # argparse names the type in its message
    return parse


positive_int = cli_int(1, MAX_COUNT, "a positive integer")
non_negative_int = cli_int(0, MAX_COUNT, "a non-negative integer")
batch_size = cli_int(1, MAX_BATCH, "a batch size")


def cli_number(lo: float | None = None, hi: float | None = None, positive: bool = False,
               what: str = "a finite number") -> Callable[[str], float]:
    """An argparse type: a finite float in ``[lo, hi]`` (nan and inf refused)."""
    def parse(text: str) -> float:
        try:
            return check_number(float(text), "value", lo, hi, positive=positive)
        except (ValueError, ParameterError) as exc:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}: {exc}") from None

    parse.__name__ = what.replace(" ", "_")
    return parse


timeout_seconds = cli_number(None, MAX_TIMEOUT_S, positive=True, what=f"seconds in (0, {MAX_TIMEOUT_S:g}]")
learning_rate = cli_number(None, 1.0, positive=True, what="a learning rate in (0, 1]")
