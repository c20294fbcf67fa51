"""Classes 4 and 7: every timeout, count and size from the command line is finite, positive and in range;
the driver's poll of a stuck device always ends; nonsense (negative counts, an empty or foreign dataset,
an overlay without registers) is refused, not silently accepted."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import assert_one_line_error, run_resilq
from deploy_support import IdleRegisters, write_hwh

from resilq.cli import main
from resilq.deploy.driver import Accelerator
from resilq.errors import MismatchError, ParameterError
from resilq.hls import host
from resilq.hls.host import AcceleratorError
from resilq.ir import load_model


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e9", "soon"])
def test_timeout_must_be_finite_positive_bounded(built_package, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["run", str(built_package), f"--timeout={value}"])
    assert info.value.code == 2
    assert "argument --timeout: expected seconds in (0, 3600]" in capsys.readouterr().err


def test_board_entry_refuses_a_nan_timeout(built_package):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(built_package), "run", "--target", "emulator", "--timeout", "nan"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "argument --timeout: expected seconds" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0, 1e6])
def test_poll_loop_refuses_an_unbounded_timeout(timeout):
    with pytest.raises(ParameterError, match="timeout"):
        host.wait(IdleRegisters(), timeout)


def test_poll_of_a_stuck_device_ends(tiny_model_file):
    start = time.monotonic()
    with pytest.raises(AcceleratorError, match="did not finish within 0.2 s"):
        Accelerator(IdleRegisters(), load_model(tiny_model_file), timeout=0.2)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("timeout", [float("nan"), float("inf")])
def test_driver_refuses_an_unbounded_timeout(tiny_model_file, timeout):
    with pytest.raises(ParameterError, match="timeout"):
        Accelerator(IdleRegisters(), load_model(tiny_model_file), timeout=timeout)


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "{pkg}", "--images", "-5"], "argument --images: expected a positive integer"),
    (["run", "{pkg}", "--images", "0"], "argument --images: expected a positive integer"),
    (["run", "{pkg}", "--offset", "-1"], "argument --offset: expected a non-negative integer"),
    (["campaign", "{pkg}", "--target", "emulator", "--out", "{tmp}/c.db", "--images", "-3"], "argument --images"),
    (["campaign", "{pkg}", "--target", "emulator", "--out", "{tmp}/c.db", "--seed", "-1"], "argument --seed"),
    (["campaign", "{pkg}", "--target", "emulator", "--out", "{tmp}/c.db", "--chunk", "0"], "argument --chunk"),
    (["campaign", "{pkg}", "--target", "emulator", "--out", "{tmp}/c.db", "--faults", "-10"], "argument --faults"),
    (["package", "{model}", "--out", "{tmp}/p", "--batch", "0"], "argument --batch: expected a batch size"),
    (["package", "{model}", "--out", "{tmp}/p", "--batch", "1000000000"], "argument --batch: expected a batch size"),
    (["package", "{model}", "--out", "{tmp}/p", "--images", "-2", "--dataset", "digits"], "argument --images"),
    (["analyze", "{model}", "--out", "{tmp}/x.nvf", "--sample", "nan"], "argument --sample"),
    (["analyze", "{model}", "--out", "{tmp}/x.nvf", "--jobs", "0"], "argument --jobs"),
    (["analyze", "{model}", "--out", "{tmp}/x.nvf", "--offset", "-4"], "argument --offset"),
    (["harden", "{model}", "--nvf", "x.nvf", "--scheme", "tmr", "--threshold", "nan", "--out", "{tmp}/h.rq"],
     "argument --threshold"),
    (["prune", "{model}", "--ratio", "inf", "--out", "{tmp}/p.rq"], "argument --ratio"),
    (["train", "--lr", "nan", "--out", "{tmp}/t.rq"], "argument --lr"),
    (["campaign-compare", "a.db", "b.db", "--show", "-1"], "argument --show"),
])
def test_counts_and_fractions_are_checked_by_argparse(built_package, tiny_model_file, tmp_path, capsys, argv,
                                                      message):
    argv = [a.format(pkg=built_package, model=tiny_model_file, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_offset_past_the_bundled_set_is_refused(built_package, capsys):
    assert main(["run", str(built_package), "--offset", "16"]) == 2
    assert "no images selected" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- datasets
def test_eval_on_another_dataset_is_refused_unless_asked(tiny_model_file, tmp_path):
    empty = tmp_path / "mnist"
    empty.mkdir()
    proc = run_resilq("eval", str(tiny_model_file), "--dataset", "mnist", "--data-dir", str(empty))
    assert_one_line_error(proc, "was trained on digits, not mnist", "--any-dataset")


def test_eval_on_another_dataset_warns_loudly_when_forced(tiny_model_file, capsys):
    assert main(["eval", str(tiny_model_file), "--dataset", "fashion-mnist", "--any-dataset",
                 "--data-dir", "/nonexistent"]) == 2  # forced: the warning comes first, then the missing files
    err = capsys.readouterr().err
    assert "WARNING: tiny was trained on digits; evaluating it on fashion-mnist" in err


def test_empty_dataset_is_refused_not_nan(tiny_model_file):
    from resilq.data import Dataset
    from resilq.errors import DatasetError
    from resilq.evaluate import accuracy

    empty = Dataset("digits", "test", np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64),
                    tuple(str(k) for k in range(10)), "an empty selection")
    with pytest.raises(DatasetError, match="holds no images"):
        accuracy(load_model(tiny_model_file), empty)


# ---------------------------------------------------------------------------------------------- overlays
def test_hwh_without_registers_is_refused(tiny_model_file, tmp_path, capsys):
    from resilq.deploy.hwh import accelerator_in_hwh

    overlay = tmp_path / "overlay"
    overlay.mkdir()
    write_hwh(overlay / "resilq.hwh", registers=[])
    (overlay / "resilq.bit").write_bytes(b"bits")
    with pytest.raises(MismatchError, match="describes no registers"):
        accelerator_in_hwh(overlay / "resilq.hwh")
    assert main(["package", str(tiny_model_file), "--out", str(tmp_path / "pkg"), "--overlay-dir", str(overlay)]) == 2
    assert "describes no registers" in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()
