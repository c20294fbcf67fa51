"""The README's step-by-step block, as written: every ``resilq`` command in it parses (fast), and the whole
block runs on the bundled digits data with the quick sizes the block itself documents (slow)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resilq.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
#: The sizes of a quick try, as the block's first comment gives them (checked below).
QUICK = {"DATASET": "digits", "EPOCHS": "1", "IMAGES": "100", "FAULTS": "50"}


def step_by_step() -> list[str]:
    """The command lines of the README's "Step by step" bash block, comments stripped, in order."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Step by step\n\n```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no step-by-step bash block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def runnable(lines: list[str]) -> list[str]:
    """The lines that run here: not those whose comment says they need a tool or board we do not have."""
    return [line for line in lines if "(needs " not in line]


def test_the_quick_sizes_are_the_ones_the_readme_documents():
    first = (REPO / "README.md").read_text().split("## Step by step", 1)[1].splitlines()[3]
    assert "a quick try" in first and " ".join(f"{k}={v}" for k, v in QUICK.items()) in first


def test_every_resilq_command_of_the_step_by_step_block_parses():
    parser = build_parser()
    env = {"DATASET": "digits", "EPOCHS": "5", "INPUTS": "1000", "IMAGES": "1000", "FAULTS": "500"}
    commands = [line for line in step_by_step() if line.startswith("resilq ")]
    assert len(commands) >= 18
    for line in commands:
        words = shlex.split(line.split("#", 1)[0].replace("$", ""))
        words = [env.get(w, w) for w in words]
        try:
            args = parser.parse_args(words[1:])
        except SystemExit as exc:  # argparse refused the documented command
            pytest.fail(f"README command does not parse ({exc.code}): {line}")
        assert getattr(args, "func", None), line


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("make") is None, reason="needs g++ and make")
def test_the_step_by_step_block_runs_as_written(tmp_path):
    """Every runnable line in a fresh folder, with the quick sizes; campaign-compare must find identical
    outcomes (the same images and faults on the emulator as in the Python campaign)."""
    lines = [line for line in runnable(step_by_step()) if not line.startswith(("export ", "DATASET="))]
    sizes = " ".join(f"{k}={v}" for k, v in QUICK.items()) + " INPUTS=60"
    script = "\n".join(["set -euo pipefail", sizes, *(line.replace("make -C hls", f"make -C {REPO / 'hls'}")
                                                      for line in lines)])
    env = {**os.environ, "RESILQ_QUIET": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "identical: every compared fault has the same outcome" in proc.stdout
    assert (tmp_path / "runs" / "sweep" / "fig4.png").is_file() and (tmp_path / "pkg" / "manifest.json").is_file()
