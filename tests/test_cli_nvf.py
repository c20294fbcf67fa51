"""`resilq analyze`, `resilq table`, `resilq nvf-compare` as a user runs them, including bad input."""

import csv

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.cli import main
from resilq.ir import save_model
from resilq.nvf import load_nvf

from factories import protect, random_model


@pytest.fixture(scope="module")
def lenet(digits_lenet, tmp_path_factory):
    return save_model(digits_lenet.model, tmp_path_factory.mktemp("m") / "lenet5.rq")


@pytest.fixture(scope="module")
def analysed(lenet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nvf")
    exact, dr = folder / "exact.nvf", folder / "dr.nvf"
    assert main(["analyze", str(lenet), "--dataset", "digits", "--inputs", "16", "--out", str(exact)]) == 0
    assert main(["analyze", str(lenet), "--dataset", "digits", "--inputs", "16", "--method", "deltarange",
                 "--jobs", "2", "--out", str(dr)]) == 0
    return exact, dr


def test_analyze_writes_exact_nvf_and_prints_table_i(analysed, digits_lenet, capsys):
    exact, _ = analysed
    result = load_nvf(exact, digits_lenet.model)
    assert result.method == "exact" and result.inputs == 16 and result.n_neurons == 4684
    assert result.metadata["split"] == "train" and result.metadata["dataset"] == "digits"
    assert np.isfinite(result.all_values()).all()


def test_table_prints_csv_and_plots(analysed, tmp_path, capsys):
    exact, _ = analysed
    out_csv, plots = tmp_path / "t.csv", tmp_path / "plots"
    assert main(["table", str(exact), "--paper", "lenet5", "--csv", str(out_csv), "--plots", str(plots)]) == 0
    text = capsys.readouterr().out
    assert "Table I: lenet5" in text and "4,684 neurons" in text and "paper lenet5" in text
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["threshold"] for r in rows] == [f"{0.05 * k:.2f}" for k in range(11)]
    assert rows[0]["critical_neurons"] == "4684" and rows[4]["paper_lenet5_neurons"] == "187"
    counts = [int(r["critical_neurons"]) for r in rows]
    assert counts == sorted(counts, reverse=True)
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["nvf_distribution.png", "nvf_heatmap_conv1.png", "nvf_heatmap_conv2.png", "nvf_table1.png"]
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nvf_compare_reports_the_metrics(analysed, tmp_path, capsys):
    exact, dr = analysed
    out = tmp_path / "cmp.csv"
    assert main(["nvf-compare", str(exact), str(dr), "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("mean absolute error", "Spearman rank correlation", "NVF >= 10%", "NVF >= 20%", "top 10%"):
        assert needle in text
    metrics = dict(csv.reader(out.open()))
    assert float(metrics["neurons"]) == 4684 and 0 <= float(metrics["mae"]) <= 1


def test_sampled_analysis_estimates_table_i(lenet, tmp_path, capsys):
    out = tmp_path / "s.nvf"
    assert main(["analyze", str(lenet), "--dataset", "digits", "--inputs", "8", "--sample", "0.1", "--out", str(out)]) == 0
    assert "critical neurons (est.)" in capsys.readouterr().out
    values = load_nvf(out).all_values()
    assert 0.05 < np.isfinite(values).mean() < 0.2


# ------------------------------------------------------------------------------------------ bad input
def test_nvf_of_another_model_is_refused(analysed, tmp_path, capsys):
    exact, _ = analysed
    rng = np.random.default_rng(0)
    other = save_model(random_model(rng, rng.random((8, 1, 12, 12), dtype=np.float32)), tmp_path / "other.rq")
    assert main(["table", str(exact), "--model", str(other)]) == 2
    assert "this NVF file belongs to another network" in capsys.readouterr().err


def test_threshold_outside_0_1(analysed, capsys):
    exact, _ = analysed
    assert main(["table", str(exact), "--thresholds", "0.2,1.5"]) == 2
    assert "NVF threshold must lie in [0, 1]" in capsys.readouterr().err


def test_empty_input_set(lenet, tmp_path, capsys):
    code = main(["analyze", str(lenet), "--dataset", "digits", "--offset", "100000", "--out", str(tmp_path / "e.nvf")])
    assert code == 2
    assert "the input set is empty" in capsys.readouterr().err


def test_comparing_different_networks_is_refused(analysed, tmp_path, capsys):
    exact, _ = analysed
    rng = np.random.default_rng(1)
    model = random_model(rng, rng.random((8, 1, 12, 12), dtype=np.float32))
    rq = save_model(model, tmp_path / "r.rq")
    assert main(["analyze", str(rq), "--dataset", "digits", "--inputs", "4", "--out", str(tmp_path / "r.nvf")]) == 2
    assert "the model expects (N, 1, 12, 12)" in capsys.readouterr().err  # digits are 28x28
    from resilq.nvf import NVFResult, save_nvf

    fake = save_nvf(NVFResult(model.network_hash, {i: np.zeros(model.out_size(i)) for i in model.neuron_layers},
                              "exact", 4), tmp_path / "r.nvf")
    assert main(["nvf-compare", str(exact), str(fake)]) == 2
    assert "belong to different networks" in capsys.readouterr().err


def test_protected_model_is_refused(digits_lenet, tmp_path, capsys):
    protected = protect(digits_lenet.model, np.random.default_rng(0), Scheme.SPLIT, 0.05)
    rq = save_model(protected, tmp_path / "p.rq")
    assert main(["analyze", str(rq), "--dataset", "digits", "--inputs", "4", "--out", str(tmp_path / "p.nvf")]) == 2
    assert "protected model; NVF is defined on the unprotected network" in capsys.readouterr().err


def test_analyze_on_local_dask_equals_in_process_and_cleans_its_parts(lenet, analysed, tmp_path):
    pytest.importorskip("distributed", reason='Dask is not installed (pip install "resilq[distributed]")')
    exact, _ = analysed
    out = tmp_path / "dask.nvf"
    assert main(["analyze", str(lenet), "--dataset", "digits", "--inputs", "16", "--scheduler", "local",
                 "--workers", "2", "--out", str(out)]) == 0
    a, b = load_nvf(exact), load_nvf(out)
    assert all(np.array_equal(a.values[i], b.values[i]) for i in a.layers)
    assert not (tmp_path / "dask.nvf.parts").exists()  # finished: the work units are gone


def test_analyze_refuses_an_unknown_scheduler(lenet, tmp_path, capsys):
    assert main(["analyze", str(lenet), "--dataset", "digits", "--inputs", "4", "--scheduler", "mpi",
                 "--out", str(tmp_path / "x.nvf")]) == 2
    assert "unknown scheduler" in capsys.readouterr().err
