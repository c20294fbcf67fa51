"""``resilq campaign | sweep | plot | report`` as a user runs them."""

import csv

import numpy as np
import pytest

from resilq.cli import main
from resilq.ir import save_model
from resilq.nvf import NVFResult, save_nvf

from factories import random_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(31)
    model = random_model(rng, shape=(1, 28, 28), classes=10, channels=(2, 3))
    root = tmp_path_factory.mktemp("cli")
    values = {i: rng.random(model.out_size(i)) * 0.3 for i in model.neuron_layers}
    nvf = save_nvf(NVFResult(model.network_hash, values, "test", 0), root / "m.nvf")
    return save_model(model, root / "m.rq"), nvf, root


def test_campaign_prints_the_report_and_resumes(files, capsys):
    model, _, root = files
    args = ["campaign", str(model), "--dataset", "digits", "--images", "20", "--faults", "60", "--seed", "2",
            "--fault-model", "stuck-at-1", "--out", str(root / "c.db")]
    assert main(args) == 0
    out = capsys.readouterr().out
    for text in ("accuracy loss", "critical-fault rate", "t + FPC, faults", "by layer", "conv1", "bit 7",
                 "stuck-at-1", "60 of", "complete"):
        assert text in out, text
    assert main(args) == 0  # the finished campaign only reports
    assert "0 propagated" in capsys.readouterr().out
    assert main(["report", str(root / "c.db")]) == 0
    assert "by bit" in capsys.readouterr().out


def test_campaign_says_what_it_runs_once(files, capsys, monkeypatch):
    model, _, root = files
    monkeypatch.delenv("RESILQ_QUIET", raising=False)  # the progress line is what repeated the header
    assert main(["campaign", str(model), "--dataset", "digits", "--images", "8", "--faults", "5",
                 "--out", str(root / "once.db")]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert len([line for line in lines if line.startswith("campaign")]) == 1, lines
    assert any(line.startswith("faults simulated by the campaign engine: 5/5 faults") for line in lines), lines


def test_campaign_errors_are_one_line(files, capsys):
    model, _, root = files
    base = ["campaign", str(model), "--dataset", "digits", "--images", "20", "--faults", "10"]
    assert main([*base, "--model", "triple-bit", "--out", str(root / "e.db")]) == 2
    assert "unknown fault model" in capsys.readouterr().err
    assert main([*base, "--out", str(root / "x.db")]) == 0
    capsys.readouterr()
    assert main([*base, "--seed", "9", "--out", str(root / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "refusing to append" in err and "seed" in err
    assert main([*base, "--scheduler", "ftp://nowhere", "--out", str(root / "y.db")]) in (2,)
    assert "scheduler" in capsys.readouterr().err


def test_sweep_then_plot(files, capsys):
    model, nvf, root = files
    out = root / "sweep"
    assert main(["sweep", str(model), "--nvf", str(nvf), "--schemes", "none,split,tmr", "--thresholds", "0.1:0.3:0.1",
                 "--dataset", "digits", "--images", "16", "--faults", "40", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "prop/mask/shared" in text and "resilq plot" in text
    assert main(["plot", str(out), "--paper", "lenet5"]) == 0
    text = capsys.readouterr().out
    assert "ours vs the paper" in text and "3.88 %" in text
    png, table = out / "fig4.png", out / "fig4.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(table.open()))
    assert [r["scheme"] for r in rows] == ["none"] + ["split"] * 3 + ["tmr"] * 3
    assert all(int(r["faults_done"]) == int(r["sample_size"]) == 40 for r in rows)
    assert "critical_faults" not in rows[0]  # a fraction, named so (issue 17)
    assert all(0.0 <= float(r["critical_fault_fraction"]) <= 1.0 for r in rows)
    assert any(float(r["critical_fault_fraction"]) > 0 for r in rows if r["scheme"] == "none")
    sizes = {(r["scheme"], r["threshold"]): int(r["network_size"]) for r in rows}
    assert sizes[("tmr", "0.1")] > sizes[("split", "0.1")] > sizes[("none", "")]
    assert main(["report", str(out)]) == 0
    assert main(["plot", str(root)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
