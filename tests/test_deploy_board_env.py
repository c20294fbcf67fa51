"""The deployment package in the PYNQ image's environment, and the driver through pynq's own classes.

pynq 3.0.1 pins numpy < 2 (and targets Python 3.10); this project's environment has numpy 2, so the
board-side suite (tests/board_env/board_checks.py) runs in a second environment, ``.venv-board``
(``bash .ci/board-env``: Python 3.10, numpy 1.21.5, pynq 3.0.1, pytest), on a package built here from
the trained digits LeNet-5. Where that environment is missing the test skips and says how to create it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.cli import main
from resilq.deploy import shipping
from resilq.ir import save_model

from factories import protect

REPO = Path(__file__).resolve().parents[1]
BOARD_PYTHON = Path(os.environ.get("RESILQ_BOARD_VENV", REPO / ".venv-board")) / "bin" / "python"
BLOCKED = ("torch", "brevitas", "rich", "scipy", "sklearn", "matplotlib")


@pytest.fixture(scope="module")
def package(digits_lenet, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("board_pkg")
    model = protect(digits_lenet.model, np.random.default_rng(4), Scheme.SPLIT, 0.05)
    save_model(model, tmp / "lenet5-split.rq")
    out = tmp / "pkg"
    assert main(["package", str(tmp / "lenet5-split.rq"), "--out", str(out), "--batch", "16", "--dataset", "digits",
                 "--images", "48"]) == 0
    return out


def test_shipped_modules_need_only_numpy_and_optional_extras():
    modules = shipping.closure()
    assert shipping.import_problems(modules) == []
    assert "resilq.deploy.pynq_ip" in modules and "resilq.hls.regmap" in modules
    assert not {"resilq.hls.csim", "resilq.train", "resilq.cli"} & set(modules)


def test_shipped_sources_are_python_3_10(package):
    """No syntax newer than the PYNQ image's Python 3.10 (ast's feature_version check) in what is shipped."""
    files = sorted((package / "lib").rglob("*.py")) + [package / "__main__.py"]
    assert len(files) > 30
    for path in files:
        ast.parse(path.read_text(), str(path), feature_version=(3, 10))


def test_package_runs_without_torch_brevitas_rich(package, tmp_path):
    """The package's entry with the host-only libraries made unimportable, in this interpreter."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in BLOCKED))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(package), "run", "--target", "emulator", "--verify"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "predictions, logits and modelled cycles equal" in proc.stdout and "accuracy" in proc.stdout


@pytest.mark.skipif(not BOARD_PYTHON.exists(), reason=f"no PYNQ-image environment at {BOARD_PYTHON.parent.parent}: "
                    "create it with `bash .ci/board-env` (Python 3.10, numpy 1.21.5, pynq 3.0.1)")
def test_board_suite_in_the_pynq_image_environment(package):
    proc = subprocess.run([str(BOARD_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           str(REPO / "tests" / "board_env" / "board_checks.py")],
                          capture_output=True, text=True, cwd=REPO / "tests" / "board_env",
                          env={**os.environ, "RESILQ_TEST_PACKAGE": str(package), "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
