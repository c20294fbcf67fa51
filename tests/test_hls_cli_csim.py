"""``resilq hls csim MODEL.rq``: a user's own model C-simulated (the HLS C++ through g++) against the executor,
on its dataset's test images or on an ``--inputs-file``, with a result line that says what was found."""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, calibrated_model

from resilq.cli import main
from resilq.ir import save_model
from resilq.pipeline.steps.hls import describe_check


def flat(text: str) -> str:
    """Text without whitespace: rich wraps long lines at the console width."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-layer model on 28x28 inputs that records the digits dataset, and 5 float images in a .npy."""
    root = tmp_path_factory.mktemp("hls_cli")
    model = calibrated_model(np.random.default_rng(4), (1, 28, 28), [("conv", 2, 5, 2, 0), ("flatten",), ("head", 10)],
                             "tiny")
    path = save_model(model.replace(metadata={**model.metadata, "dataset": "digits"}), root / "tiny.rq")
    images = root / "images.npy"
    np.save(images, np.random.default_rng(5).random((5, 1, 28, 28), dtype=np.float32))
    return path, images


@CSIM[0]
@CSIM[1]
def test_a_users_model_on_its_dataset_and_on_an_inputs_file(tiny, capsys):
    path, images = tiny
    assert main(["hls", "csim", str(path), "--pe", "4", "--images", "3", "--faults", "2"]) == 0
    out = flat(capsys.readouterr().out)
    assert flat("on 3 digits test images") in out
    assert flat(f"{path}: C-sim pass: 3 images bit-exact vs the executor at every layer, 2/2 faults equal") in out
    assert main(["hls", "csim", str(path), "--pe", "4", "--inputs-file", str(images), "--faults", "1"]) == 0
    out = flat(capsys.readouterr().out)
    assert flat(f"on 5 images of {images}") in out and flat("C-sim pass: 5 images bit-exact") in out


def test_bad_inputs_are_refused_by_name(tiny, tmp_path, capsys):
    path, _ = tiny
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 1, 8, 8), np.float32))
    assert main(["hls", "csim", str(path), "--inputs-file", str(wrong)]) == 2
    assert flat("holds an array of shape (2, 1, 8, 8)") in flat(capsys.readouterr().err)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert main(["hls", "csim", str(path), "--inputs-file", str(tmp_path / "junk.npy")]) == 2
    assert flat("not a readable .npy array") in flat(capsys.readouterr().err)
    anonymous = save_model(calibrated_model(np.random.default_rng(1), (1, 8, 8), [("flatten",), ("head", 3)]),
                           tmp_path / "anonymous.rq")
    assert main(["hls", "csim", str(anonymous)]) == 2
    assert flat("does not record its dataset; pass --dataset or --inputs-file") in flat(capsys.readouterr().err)


def test_the_result_line_names_what_differs():
    check = {"status": "FAIL", "images": 4, "logits_equal": False, "faults": 3, "faults_differing": 1,
             "cycles": 120, "cycles_model": 100,
             "layers": [{"layer": "conv0", "elements": 288, "mismatches": 0},
                        {"layer": "fc2", "elements": 40, "mismatches": 7}]}
    assert describe_check(check) == ("FAIL: 4 images DIFFERENT from the executor: fc2 7/40 int8 values differ, "
                                     "2/3 faults equal, MODEL_CYCLES 120 != the cycle model's 100")
    same = {**check, "status": "pass", "logits_equal": True, "faults_differing": 0, "cycles": 100,
            "layers": [{**layer, "mismatches": 0} for layer in check["layers"]]}
    assert describe_check(same) == ("pass: 4 images bit-exact vs the executor at every layer, 3/3 faults equal, "
                                    "MODEL_CYCLES 100 = the cycle model")
