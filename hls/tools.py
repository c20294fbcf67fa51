"""The AMD tools the hardware flow runs, found on PATH and checked against the releases it is written for.

The Tcl of ``hls/tcl`` and ``overlays/tcl`` uses commands that exist unchanged from Vitis HLS / Vivado
2022.1 (the release of the PYNQ v3.0.1 image's overlays, ``boards/pynq-z2/board.toml``) through the 2024
releases: :data:`SUPPORTED` is that range. A release outside it is used with a :class:`ToolVersionWarning`
(the flow may still work); a missing tool is an error that says what to install.

Vitis HLS is found as ``vitis_hls`` (``vitis_hls -f script.tcl``, UG1399 "vitis_hls Command") or, where
only the unified Vitis tools are installed (2023.2 and later deprecate ``vitis_hls``; 2025.1 drops it), as
``vitis-run --mode hls --tcl script.tcl`` (UG1702 "vitis-run Command": "--tcl: Run Vitis HLS using the Tcl
scripting language"). UG1702 documents no way to pass arguments to that script, so the flow passes them
in a file named by the environment variable :data:`ARGS_ENV` -- the same for both commands.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from resilq.errors import ResilqError

#: Environment variable naming the key=value argument file of ``hls/tcl/run_hls.tcl``.
ARGS_ENV = "RESILQ_HLS_ARGS"
_RELEASE_RE = re.compile(r"(?<![\d.])v?(20\d\d)\.(\d+)(?![\d])")


class ToolError(ResilqError):
    """A vendor tool is missing or cannot be run."""


class ToolVersionWarning(UserWarning):
    """A vendor tool is a release outside the range this flow is written for."""


@dataclass(frozen=True, order=True)
class Release:
    """A ``YYYY.N`` AMD tool release."""

    year: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Release | None:
        m = _RELEASE_RE.search(text)
        return None if m is None else cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.year}.{self.minor}"


#: The releases this flow is written for: 2022.1 (the PYNQ v3.0.1 image's) through every 2024 release.
SUPPORTED_FIRST = Release(2022, 1)
SUPPORTED_LAST_YEAR = 2024
SUPPORTED_TEXT = f"{SUPPORTED_FIRST} - {SUPPORTED_LAST_YEAR}.x"


def supported(release: Release) -> bool:
    return SUPPORTED_FIRST <= release and release.year <= SUPPORTED_LAST_YEAR


@dataclass(frozen=True)
class FoundTool:
    """A tool on PATH: how to run a Tcl script with it, and its release (None if it could not be told)."""

    product: str
    path: str
    release: Release | None
    tcl_prefix: tuple[str, ...]  # the command before the script path

    @property
    def command(self) -> str:
        return Path(self.path).name

    def tcl_command(self, script: Path) -> list[str]:
        return [*self.tcl_prefix, str(script)]

    @property
    def supported(self) -> bool:
        return self.release is not None and supported(self.release)

    def describe(self) -> str:
        return f"{self.command}: {self.path} ({self.release or 'release unknown'})"


def release_of(path: str, version_args: tuple[str, ...], path_first: bool = False) -> Release | None:
    """The ``YYYY.N`` release of a tool: from what it prints for ``version_args`` (``vivado -version`` and
    ``vitis_hls -version`` print e.g. ``vivado v2022.1 (64-bit)``) or from its install path (AMD installs each
    release under ``.../<YYYY.N>/bin``: 2024.2's own generated cosim script runs
    ``/opt/Xilinx/Vitis/2024.2/bin/vitis-run``). ``path_first`` for a tool without a documented version flag."""
    from_path = Release.parse(str(Path(path).resolve()))
    if path_first and from_path is not None:
        return from_path
    try:
        proc = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=300, check=False)
        found = Release.parse(proc.stdout + proc.stderr)
    except (OSError, subprocess.SubprocessError):
        found = None
    return found if found is not None else from_path


def warn_if_unsupported(tool: FoundTool) -> FoundTool:
    if tool.release is None:
        warnings.warn(ToolVersionWarning(f"{tool.path}: cannot tell which {tool.product} release this is; the flow "
                                         f"is written for {SUPPORTED_TEXT}"), stacklevel=3)
    elif not supported(tool.release):
        warnings.warn(ToolVersionWarning(f"{tool.path} is {tool.product} {tool.release}; the flow is written and "
                                         f"checked for {SUPPORTED_TEXT} -- it may work, but report any Tcl error "
                                         "with the log"), stacklevel=3)
    return tool


def find_vitis_hls() -> FoundTool | None:
    """Vitis HLS as ``vitis_hls -f`` or, failing that, ``vitis-run --mode hls --tcl`` (None if neither)."""
    path = shutil.which("vitis_hls")
    if path is not None:
        return FoundTool("AMD Vitis HLS", path, release_of(path, ("-version",)), (path, "-f"))
    path = shutil.which("vitis-run")
    if path is not None:
        return FoundTool("AMD Vitis HLS", path, release_of(path, ("--version",), path_first=True),
                         (path, "--mode", "hls", "--tcl"))
    return None


def find_vivado() -> FoundTool | None:
    path = shutil.which("vivado")
    if path is None:
        return None
    return FoundTool("AMD Vivado", path, release_of(path, ("-version",)), (path, "-mode", "batch", "-source"))


def hls_missing_message(reference: str, image: str, board: str) -> str:
    return (f"neither vitis_hls nor vitis-run is on PATH, so the IP cannot be synthesized here. `make ip` needs "
            f"AMD Vitis HLS {SUPPORTED_TEXT} (the PYNQ {image} image's overlays for the {board} are built with "
            f"{reference}); install it and `source <install dir>/settings64.sh` first. Without it, `make csim` runs "
            "the same testbench with g++, and `resilq hls estimate` gives the cycle and resource estimates.")


@contextmanager
def tool_warnings_shown(prefix: str) -> Iterator[None]:
    """Show every :class:`ToolVersionWarning` raised inside as one ``PREFIX: warning: ...`` line on stderr, at once."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", ToolVersionWarning)
        default = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ToolVersionWarning):
                print(f"{prefix}: warning: {message}", file=sys.stderr)
            else:
                default(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
