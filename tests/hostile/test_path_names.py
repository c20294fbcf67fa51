"""Names read from files never become path components unsanitised: ``resilq table --plots`` writes only
inside its folder whatever the .nvf calls its layers; .nvf values outside [0, 1] (inf, nan) are refused."""

import numpy as np
import pytest

from resilq.cli import main
from resilq.errors import FormatError, ParameterError
from resilq.nvf.result import NVFResult, load_nvf, save_nvf
from resilq.paths import MAX_COMPONENT, file_component, inside

HOSTILE = ["x/../../evil", "../../../../tmp/evil", "..", ".", "/etc/passwd", "a\\..\\b", "conv\x00.png", "",
           "x" * 300, "ok_name"]


@pytest.mark.parametrize("name", HOSTILE)
def test_file_component_is_one_plain_component(name):
    c = file_component(name)
    assert c and "/" not in c and "\\" not in c and "\x00" not in c and not c.startswith(".")
    assert len(c) <= MAX_COMPONENT and c not in (".", "..")
    if name == "ok_name":
        assert c == "ok_name"  # safe names are kept as they are


def test_different_names_stay_different():
    assert file_component("conv/1") != file_component("conv_1") == "conv_1"
    assert len({file_component(n) for n in HOSTILE}) == len(HOSTILE)


def test_inside_refuses_escapes_and_symlinks(tmp_path):
    (tmp_path / "out").mkdir()
    assert inside(tmp_path / "out", tmp_path / "out" / "a.png") == tmp_path / "out" / "a.png"
    with pytest.raises(ParameterError, match="outside"):
        inside(tmp_path / "out", tmp_path / "out" / ".." / "a.png")
    (tmp_path / "out" / "link.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(ParameterError, match="outside"):
        inside(tmp_path / "out", tmp_path / "out" / "link.png")


def _nvf(path, names, values=None):
    layers = {str(i): {"name": n, "shape": [2, 2, 2]} for i, n in enumerate(names)}
    vals = {i: (np.full(8, 0.25) if values is None else values) for i in range(len(names))}
    return save_nvf(NVFResult("ab" * 32, vals, "exact", 10, {"layers": layers, "sample": None}), path)


def test_table_plots_stay_inside_the_plots_folder(tmp_path):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    nvf = _nvf(work / "m.nvf", ["x/../../evil", "../../../evil2", "..", "conv1"])
    plots = work / "plots"
    before = {p for p in tmp_path.rglob("*")}
    assert main(["table", str(nvf), "--plots", str(plots)]) == 0
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p == plots or plots in p.parents for p in created), created
    heatmaps = sorted(p.name for p in plots.glob("nvf_heatmap_*.png"))
    assert len(heatmaps) == 4 and "nvf_heatmap_conv1.png" in heatmaps


@pytest.mark.parametrize("bad, needle", [(np.inf, "inf"), (-np.inf, "-inf"), (1.5, "1.5"), (-0.1, "-0.1")])
def test_nvf_values_outside_the_unit_interval_are_refused(tmp_path, capsys, bad, needle):
    v = np.full(8, 0.25)
    v[3] = bad
    nvf = _nvf(tmp_path / "m.nvf", ["conv1"], v)
    with pytest.raises(FormatError, match=f"NVF of layer 0 has 1 value\\(s\\) outside \\[0, 1\\] \\(neuron 3: {needle}"):
        load_nvf(nvf)
    capsys.readouterr()
    assert main(["table", str(nvf)]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err


def test_nan_only_in_a_sampled_analysis(tmp_path):
    v = np.full(8, 0.25)
    v[5] = np.nan
    layers = {"0": {"name": "c", "shape": [2, 2, 2]}}
    complete = save_nvf(NVFResult("ab" * 32, {0: v}, "exact", 10, {"layers": layers, "sample": None}),
                        tmp_path / "a.nvf")
    with pytest.raises(FormatError, match="1 NaN value\\(s\\) \\(neuron 5\\), but the analysis was not sampled"):
        load_nvf(complete)
    sampled = save_nvf(NVFResult("ab" * 32, {0: v}, "exact", 10, {"layers": layers, "sample": 0.5}),
                       tmp_path / "b.nvf")
    assert np.isnan(load_nvf(sampled).values[0][5])
