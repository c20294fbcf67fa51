"""``resilq harden`` and ``resilq prune`` as a user runs them: tables, agreement, and clear errors."""

import numpy as np
import pytest

from resilq.cli import main
from resilq.ir import load_model, save_model
from resilq.nvf import save_nvf

from bruteforce import long_tailed_nvf, synthetic_nvf
from factories import random_model


@pytest.fixture(scope="module")
def files(digits_lenet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = save_model(digits_lenet.model, folder / "lenet5.rq")
    nvf = save_nvf(long_tailed_nvf(digits_lenet.model, np.random.default_rng(1)), folder / "lenet5.nvf")
    other = random_model(np.random.default_rng(2))
    other_nvf = save_nvf(synthetic_nvf(other, np.random.default_rng(2)), folder / "other.nvf")
    linear = random_model(np.random.default_rng(3), relu_last_hidden=False)
    linear_rq = save_model(linear, folder / "linear.rq")
    linear_nvf = save_nvf(synthetic_nvf(linear, np.random.default_rng(3)), folder / "linear.nvf")
    return {"model": str(model), "nvf": str(nvf), "other_nvf": str(other_nvf), "linear": str(linear_rq),
            "linear_nvf": str(linear_nvf), "dir": folder}


def test_harden_split_prints_overhead_and_agreement(files, capsys):
    out = files["dir"] / "split.rq"
    code = main(["harden", files["model"], "--nvf", files["nvf"], "--threshold", "0.2", "--scheme", "split",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    hard = load_model(out)
    assert hard.n_protected > 0 and hard.metadata["hardening"]["scheme"] == "split"
    assert f"{hard.n_slots:,}" in text and "network size" in text and "tmr" in text
    assert "fault-free top-1 agreement with the unprotected network:" in text
    assert hard.metadata["hardening"]["fault_free_top1_agreement"] > 0.9
    assert "test_accuracy" in hard.metadata


def test_harden_tmr_is_bit_identical(files, capsys):
    code = main(["harden", files["model"], "--nvf", files["nvf"], "--top-k", "100", "--scheme", "tmr",
                 "--granularity", "channel", "--out", str(files["dir"] / "tmr.rq")])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "agreement with the unprotected network: 100.00% (360/360 inputs); bit-identical logits on 360" in text


def test_harden_own_weights_stores_a_row_per_copy_and_counts_it(files, capsys):
    out = files["dir"] / "tmr-own.rq"
    code = main(["harden", files["model"], "--nvf", files["nvf"], "--top-k", "40", "--scheme", "tmr", "--own-weights",
                 "--no-agreement", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    hard = load_model(out)
    assert all(hard.protection(i).own_weights for i in hard.neuron_layers if hard.protection(i) is not None)
    extra = sum(hard.copied_params(i) for i in hard.neuron_layers)
    assert extra > 0 and hard.metadata["hardening"]["copied_words"] == extra
    assert f"{hard.params():,}" in text and "stored words" in text  # the copies' memory in the cost table
    assert "cannot map" in text  # no cycles: the accelerator stores one row per channel
    assert hard.params() == load_model(files["model"]).params() + extra


def test_harden_fallback_is_announced(files, capsys):
    out = files["dir"] / "fb.rq"
    code = main(["harden", files["linear"], "--nvf", files["linear_nvf"], "--threshold", "0.1", "--scheme", "split",
                 "--fallback", "tmr", "--no-agreement", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "fallback" in text and "fc1 (tmr)" in text
    assert load_model(out).metadata["hardening"]["fallback_layers"] == ["fc1"]


def run_main(argv):
    """``main``'s exit code, whether the CLI's argument types (argparse: SystemExit) or the command refused."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("extra,message", [
    (["--threshold", "1.2", "--scheme", "tmr"], "expected a fraction in [0, 1]"),
    (["--threshold", "-0.1", "--scheme", "tmr"], "expected a fraction in [0, 1]"),
    (["--layer-threshold", "fc3=0.1", "--scheme", "tmr"], "'fc3' is the classifier"),
    (["--top-k", "5", "--layers", "fc3", "--scheme", "dup-and"], "'fc3' is the classifier"),
    (["--threshold", "0.2", "--top-k", "5", "--scheme", "tmr"], "choose one selection criterion"),
    (["--scheme", "tmr"], "say which neurons to protect"),
])
def test_harden_bad_input(files, capsys, extra, message):
    code = run_main(["harden", files["model"], "--nvf", files["nvf"], *extra, "--out", str(files["dir"] / "x.rq")])
    assert code == 2
    assert message in capsys.readouterr().err


def test_harden_refuses_the_nvf_of_another_model(files, capsys):
    code = main(["harden", files["model"], "--nvf", files["other_nvf"], "--threshold", "0.2", "--scheme", "split",
                 "--out", str(files["dir"] / "x.rq")])
    assert code == 2
    assert "belongs to another network" in capsys.readouterr().err


def test_harden_split_without_fallback_on_a_linear_layer(files, capsys):
    code = main(["harden", files["linear"], "--nvf", files["linear_nvf"], "--threshold", "0.1", "--scheme", "split",
                 "--no-agreement", "--out", str(files["dir"] / "x.rq")])
    assert code == 2
    assert "'split' cannot protect layer 'fc1'" in capsys.readouterr().err


@pytest.mark.parametrize("ratio", ["1.0", "0", "1.5", "-0.3"])
def test_prune_ratio_out_of_range(files, capsys, ratio):
    code = run_main(["prune", files["model"], "--by", "l1", "--ratio", ratio, "--out", str(files["dir"] / "p.rq")])
    assert code == 2
    err = capsys.readouterr().err
    assert "pruning ratio must lie strictly between 0 and 1" in err or "expected a fraction in (0, 1)" in err


def test_prune_errors(files, capsys):
    base = ["prune", files["model"], "--ratio", "0.3", "--out", str(files["dir"] / "p.rq")]
    assert main([*base, "--by", "vulnerability"]) == 2
    assert "needs the model's NVF" in capsys.readouterr().err
    assert main([*base, "--by", "vulnerability", "--nvf", files["other_nvf"]]) == 2
    assert "belongs to another network" in capsys.readouterr().err
    assert main([*base, "--by", "l1", "--layers", "fc3"]) == 2
    assert "'fc3' is the classifier" in capsys.readouterr().err


def test_prune_by_vulnerability_with_finetuning(files, capsys):
    out = files["dir"] / "p30.rq"
    code = main(["prune", files["model"], "--by", "vulnerability", "--nvf", files["nvf"], "--ratio", "0.3",
                 "--finetune", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    pruned = load_model(out)
    assert pruned.metadata["pruning"]["by"] == "vulnerability"
    assert pruned.metadata["pruning"]["finetune"]["epochs"] == 1
    for label in ("original", "pruned", "fine-tuning"):
        assert label in text
    assert f"{pruned.macs():,}" in text and "Δ accuracy" in text
