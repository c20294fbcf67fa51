"""Class 2: ``resilq package --out`` never deletes or overwrites what resilq did not write.

Each test puts something precious where the package goes -- a folder of someone's work with a foreign
``manifest.json``, a symlink to it, the model being packaged -- and checks that the command is refused
with a message naming the reason, exit 2, and that every pre-existing byte is still there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_resilq

from resilq.cli import main


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def package(model: Path, out: Path, *extra: str):
    return run_resilq("package", str(model), "--out", str(out), "--overlay-dir", str(out.parent / "no-overlay"),
                      *extra)


def test_folder_with_a_foreign_manifest_is_not_wiped(tiny_model_file, tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "manifest.json").write_text(json.dumps({"title": "my thesis", "chapters": 7}))
    (thesis / "chapter1.tex").write_text("\\chapter{Introduction}")
    before = snapshot(thesis)
    proc = package(tiny_model_file, thesis)
    assert_one_line_error(proc, f"--out {thesis} exists and is not a resilq package")
    assert snapshot(thesis) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"], "no temporary folder left behind"


def test_real_package_holding_foreign_files_is_not_replaced(built_package, tiny_model_file, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(built_package, pkg)
    (pkg / "results.json").write_text('{"accuracy": 0.97}')
    before = snapshot(pkg)
    assert_one_line_error(package(tiny_model_file, pkg), "also holds results.json, which resilq did not write")
    assert snapshot(pkg) == before


def test_manifest_of_another_format_is_not_a_package(built_package, tiny_model_file, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(built_package, pkg)
    manifest = json.loads((pkg / "manifest.json").read_text())
    del manifest["lib"]
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(pkg)
    assert_one_line_error(package(tiny_model_file, pkg), "is not a resilq package", "lacks 'lib'")
    assert snapshot(pkg) == before


def test_symlink_as_out_is_refused(built_package, tiny_model_file, tmp_path):
    target = tmp_path / "real"
    shutil.copytree(built_package, target)  # even a link to a genuine package: the link could point anywhere
    link = tmp_path / "link"
    link.symlink_to(target)
    before = snapshot(target)
    assert_one_line_error(package(tiny_model_file, link), f"--out {link} is a symbolic link")
    assert link.is_symlink() and snapshot(target) == before


def test_packaging_a_packages_own_model_into_it_is_refused(built_package, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(built_package, pkg)
    before = snapshot(pkg)
    assert_one_line_error(package(pkg / "model.rq", pkg), f"the model {pkg / 'model.rq'} lies inside --out {pkg}")
    assert snapshot(pkg) == before


def test_data_folder_inside_the_target_is_refused(built_package, tiny_model_file, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(built_package, pkg)
    proc = package(tiny_model_file, pkg, "--dataset", "mnist", "--data-dir", str(pkg / "lib"))
    assert_one_line_error(proc, "the data folder", "lies inside --out")


def test_a_file_as_out_is_refused(tiny_model_file, tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    assert_one_line_error(package(tiny_model_file, precious), "exists and is not a folder")
    assert precious.read_text() == "keep me"


def test_replacing_a_package_is_atomic_and_keeps_the_mode(built_package, tiny_model_file, tmp_path, capsys):
    pkg = tmp_path / "pkg"
    shutil.copytree(built_package, pkg)
    (pkg / "README.txt").write_text("old")
    assert main(["package", str(tiny_model_file), "--out", str(pkg), "--overlay-dir", str(tmp_path / "none")]) == 0
    assert (pkg / "README.txt").read_text() != "old" and (pkg / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"], "temporary siblings removed"
    umask = os.umask(0)
    os.umask(umask)
    assert (pkg.stat().st_mode & 0o777) == (0o777 & ~umask)


def test_a_failed_build_leaves_the_old_package_and_no_debris(built_package, tmp_path, capsys):
    pkg = tmp_path / "pkg"
    shutil.copytree(built_package, pkg)
    before = snapshot(pkg)
    broken = tmp_path / "broken.rq"
    broken.write_bytes(b"PK\x03\x04 not a model")
    assert main(["package", str(broken), "--out", str(pkg)]) == 2
    assert "error:" in capsys.readouterr().err
    assert snapshot(pkg) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.rq", "pkg"]


def test_an_empty_folder_is_used(tiny_model_file, tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["package", str(tiny_model_file), "--out", str(out), "--overlay-dir", str(tmp_path / "none")]) == 0
    assert (out / "manifest.json").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_parent_is_one_line(tiny_model_file, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        proc = package(tiny_model_file, parent / "pkg")
    finally:
        parent.chmod(0o755)
    assert_one_line_error(proc, "Permission denied (EACCES)")
    assert list(parent.iterdir()) == []
