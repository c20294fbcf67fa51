"""Device campaigns: the Python engine's fault list injected by register pokes, in the same store, compared
fault by fault (``resilq campaign PKG --target ...``, ``resilq campaign-compare``)."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from hls_support import HAVE_CXX

from resilq.arith import Scheme
from resilq.campaign.engine import EvaluationSet
from resilq.campaign.runner import CampaignConfig, load_campaign
from resilq.campaign.sampling import FaultModel
from resilq.campaign.store import CampaignStore, row_checksum
from resilq.cli import main
from resilq.deploy.campaign import compare_campaigns, run_device_campaign
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.deploy.package import load_bundled_data, load_package
from resilq.errors import MismatchError
from resilq.ir import save_model

from factories import protect

IMAGES = 40


@pytest.fixture(scope="module")
def packages(digits_lenet, tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign_pkgs")
    rng = np.random.default_rng(21)
    out = {}
    for kind, model in (("unprotected", digits_lenet.model),
                        ("split", protect(digits_lenet.model, rng, Scheme.SPLIT, 0.05)),
                        ("tmr", protect(digits_lenet.model, rng, Scheme.TMR, 0.05))):
        save_model(model, root / f"{kind}.rq")
        assert main(["package", str(root / f"{kind}.rq"), "--out", str(root / kind), "--batch", "16",
                     "--dataset", "digits", "--images", str(IMAGES)]) == 0
        out[kind] = (root / f"{kind}.rq", root / kind)
    return out


def python_campaign(rq, out, faults: int, seed: int, fault_model: str = "single-bit") -> None:
    assert main(["campaign", str(rq), "--dataset", "digits", "--images", str(IMAGES), "--faults", str(faults),
                 "--seed", str(seed), "--model", fault_model, "--out", str(out)]) == 0


@pytest.mark.parametrize("kind", ["unprotected", "split", "tmr"])
def test_emulator_campaign_equals_the_python_engine_fault_by_fault(packages, kind, tmp_path, capsys):
    rq, pkg = packages[kind]
    python_campaign(rq, tmp_path / "py.db", 80, seed=5)
    assert main(["campaign", str(pkg), "--target", "emulator", "--faults", "80", "--seed", "5",
                 "--out", str(tmp_path / "emu.db")]) == 0
    capsys.readouterr()
    assert main(["campaign-compare", str(tmp_path / "py.db"), str(tmp_path / "emu.db")]) == 0
    text = capsys.readouterr().out
    assert "identical outcomes" in text and "device:emulator" in text and "80 propagated" in text
    cmp = compare_campaigns(tmp_path / "py.db", tmp_path / "emu.db")
    assert cmp.identical and cmp.compared.size == 80
    assert load_campaign(tmp_path / "emu.db").meta["sample_size"] == 80


KIND_ARGS = {"lane": ["--kind", "lane"], "weight": ["--kind", "weight"],
             "ber-run": ["--kind", "ber", "--ber", "2e-3,1e-2", "--repetitions", "2"],
             "ber-inference": ["--kind", "ber", "--ber", "5e-3", "--ber-per", "inference", "--repetitions", "2"],
             "ber-both": ["--kind", "ber", "--ber", "2e-3", "--ber-sites", "both", "--repetitions", "2"]}


@pytest.mark.parametrize("kind", list(KIND_ARGS))
def test_every_fault_kind_runs_as_a_device_campaign(packages, kind, tmp_path, capsys):
    """Lane faults through FI_CTRL.KIND, weight upsets through the image, BER on outputs through upset lists:
    an emulator campaign of each kind equals the Python engine's fault by fault (same sample, same store)."""
    rq, pkg = packages["tmr"]
    faults = ["--faults", "12"] if not kind.startswith("ber") else []
    common = ["--seed", "3", *KIND_ARGS[kind], *faults]
    assert main(["campaign", str(rq), "--dataset", "digits", "--images", str(IMAGES), *common,
                 "--out", str(tmp_path / "py.db")]) == 0
    assert main(["campaign", str(pkg), "--target", "emulator", *common, "--out", str(tmp_path / "emu.db")]) == 0
    capsys.readouterr()
    cmp = compare_campaigns(tmp_path / "py.db", tmp_path / "emu.db")
    assert cmp.identical and cmp.compared.size > 0
    assert load_campaign(tmp_path / "emu.db").meta["fault_kind"] == load_campaign(tmp_path / "py.db").meta["fault_kind"] == kind.split("-")[0]


def test_a_lane_campaign_on_a_device_uses_the_build_s_lanes(packages, tmp_path, capsys):
    _, pkg = packages["tmr"]
    assert main(["campaign", str(pkg), "--target", "emulator", "--kind", "lane", "--pe", "4", "--faults", "4",
                 "--out", str(tmp_path / "x.db")]) != 0
    assert "--pe 4: this package's accelerator is built with 8" in capsys.readouterr().err


def test_a_device_campaign_says_what_it_runs_once(packages, tmp_path, capsys, monkeypatch):
    """One header line names the campaign; the progress line says how the faults are injected, not the header again."""
    _, pkg = packages["unprotected"]
    monkeypatch.delenv("RESILQ_QUIET", raising=False)  # the progress lines are what repeated the header
    assert main(["campaign", str(pkg), "--target", "emulator", "--faults", "6", "--out", str(tmp_path / "e.db")]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    headers = [line for line in lines if line.startswith("campaign")]
    assert len(headers) == 1 and headers[0].startswith(f"campaign: lenet5 on emulator ({pkg}) ->"), lines
    assert any(line.startswith("faults injected by register pokes on the emulator: 6/6 faults") for line in lines)


def test_stuck_at_campaign_and_resume(packages, tmp_path, capsys):
    rq, pkg = packages["split"]
    python_campaign(rq, tmp_path / "py.db", 40, seed=1, fault_model="stuck-at-1")
    args = ["campaign", str(pkg), "--target", "emulator", "--faults", "40", "--seed", "1", "--fault-model", "stuck-at-1",
            "--out", str(tmp_path / "emu.db")]
    assert main(args) == 0 and main(args) == 0  # the second run finds the campaign finished
    assert len(load_campaign(tmp_path / "emu.db").sessions) == 2
    assert compare_campaigns(tmp_path / "py.db", tmp_path / "emu.db").identical


@pytest.mark.csim
@pytest.mark.skipif(not HAVE_CXX, reason="C-simulation needs g++ on PATH (apt-get install g++)")
def test_csim_campaign_equals_the_python_engine(packages, tmp_path):
    rq, pkg = packages["tmr"]
    python_campaign(rq, tmp_path / "py.db", 24, seed=9)
    assert main(["campaign", str(pkg), "--target", "csim", "--faults", "24", "--seed", "9", "--images", str(IMAGES),
                 "--out", str(tmp_path / "sim.db")]) == 0
    assert main(["campaign-compare", str(tmp_path / "py.db"), str(tmp_path / "sim.db")]) == 0


def _answer_differently(path, i):
    """Rewrite fault ``i``'s result as if the board had answered it differently: a valid row, checksum included."""
    with CampaignStore.open_existing(path) as store:
        campaign, s = store.campaign_digest(), store.sample()
    fault = (i, s.layer[i], s.slot[i], s.neuron[i], s.copy[i], s.mask[i], s.kind[i], int(s.mode))
    with sqlite3.connect(path) as db:
        changed, correct, how = db.execute("SELECT changed, correct, how FROM results WHERE idx = ?", (i,)).fetchone()
        db.execute("UPDATE results SET changed = ?, digest = x'00', checksum = ? WHERE idx = ?",
                   (changed + 1, row_checksum(campaign, fault, changed + 1, correct, b"\0", how), i))


def test_compare_reports_mismatches_and_refuses_other_campaigns(packages, tmp_path, capsys):
    rq, pkg = packages["unprotected"]
    python_campaign(rq, tmp_path / "a.db", 30, seed=2)
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    _answer_differently(tmp_path / "b.db", 7)
    capsys.readouterr()
    assert main(["campaign-compare", str(tmp_path / "a.db"), str(tmp_path / "b.db")]) == 1
    text = capsys.readouterr().out
    assert "first 1 mismatching faults" in text and "mismatches" in text
    python_campaign(rq, tmp_path / "c.db", 30, seed=3)
    assert main(["campaign-compare", str(tmp_path / "a.db"), str(tmp_path / "c.db")]) == 2
    err = capsys.readouterr().err
    assert "not the same campaign" in err and "seed" in err
    assert main(["campaign", str(rq), "--target", "emulator", "--faults", "5", "--out", str(tmp_path / "x.db")]) == 2
    assert "not " in capsys.readouterr().err


def test_a_device_that_disagrees_fault_free_is_refused(packages, tmp_path):
    _, pkg_dir = packages["unprotected"]
    pkg = load_package(pkg_dir)
    bundled = load_bundled_data(pkg)
    data = EvaluationSet(bundled.x, bundled.labels, bundled.dataset, bundled.split, bundled.offset)
    accel = Accelerator(EmulatedAccelerator(pkg.config), pkg.model, pkg.config, batch=16)
    head = len(pkg.model.layers) - 1
    classes = pkg.model.layers[head].out_channels
    w_addr = accel.image.layer_offsets[head]
    accel.image.buffer[w_addr + 8 * classes:w_addr + 8 * classes + 80] = 127  # class 0's weight row damaged in "DDR"
    with pytest.raises(MismatchError, match="disagrees with the bit-true executor on the fault-free predictions"):
        run_device_campaign(accel, data, tmp_path / "bad.db", CampaignConfig(FaultModel.parse("single-bit"), 10),
                            "emulator")
