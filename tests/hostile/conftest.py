"""Fixtures of the hostile-input tests: a small model, a package built from it, crafted copies of both.

Everything here is real: the model is a calibrated int8 network, the package is what ``resilq package``
writes; a test then damages a copy of it the way an attacker or a bad copy would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hls_support import calibrated_model

from resilq.ir import save_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    model = calibrated_model(rng, (1, 28, 28), [("conv", 4, 3, 2, 0), ("pool", 2, 2), ("flatten",), ("head", 10)],
                             name="tiny")
    model = model.replace(metadata={**model.metadata, "dataset": "digits"})
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny.rq")


@pytest.fixture(scope="session")
def built_package(tiny_model_file, tmp_path_factory) -> Path:
    """A package of the tiny model with 16 bundled images (random int8, labels in 0..9), no overlay."""
    from resilq.boards import load_board
    from resilq.deploy.build import PackageRequest, build_package
    from resilq.deploy.package import BundledData

    rng = np.random.default_rng(6)
    data = BundledData(rng.integers(-128, 128, (16, 1, 28, 28)).astype(np.int8), rng.integers(0, 10, 16), "digits",
                       "test", 0)
    out = tmp_path_factory.mktemp("pkg") / "pkg"
    return build_package(PackageRequest(tiny_model_file, load_board("pynq-z2"), out, batch=8,
                                        overlay_dir=tmp_path_factory.mktemp("no-overlay"), data=data))


@pytest.fixture
def package_copy(built_package, tmp_path) -> Path:
    dest = tmp_path / "pkg"
    shutil.copytree(built_package, dest)
    return dest


def edit_manifest(package: Path, change, fix_config_id: bool = False) -> dict:
    """Apply ``change(manifest)`` to a package's manifest.json; ``fix_config_id`` recomputes CONFIG_ID the way
    an attacker would (the CRC of the configuration as resilq computes it) so that check does not catch it."""
    path = package / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    if fix_config_id:
        manifest["config_id"] = zlib.crc32(json.dumps(manifest["accelerator"], sort_keys=True).encode()) & 0xFFFFFFFF
    path.write_text(json.dumps(manifest))
    return manifest


def run_resilq(*argv: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m resilq.cli ARGV`` in a fresh interpreter (what a user's shell sees: rc, stdout, stderr)."""
    full_env = {**os.environ, "RESILQ_QUIET": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "resilq.cli", *argv], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """rc 2, no traceback, and one ``resilq CMD: error: ...`` line on stderr containing every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or all("usage:" in line or "error:" in line or line.startswith(" ") for line in lines), lines
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    return proc.stderr
