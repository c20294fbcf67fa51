"""Finished work units of an analysis, kept on disk next to its output so that an interrupted run continues.

``OUT.nvf`` is written at the end of an analysis; until then every finished unit's per-neuron sums sit in
``OUT.nvf.parts/unit-NNNNNN.npy`` (written to a temporary name and renamed, so a file is either complete or
absent). ``plan.json`` records what the units belong to (the network, the inputs, the analysis, every unit's
inputs and neurons); a re-run with the same plan loads the finished units and computes only the others, a
re-run with another plan is refused (the directory belongs to another analysis). The sums are integers (or
small dyadic fractions) in float64, added in any order to the same total: a resumed run equals a fresh one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..archive import read_json_file
from ..errors import FormatError, MismatchError, ParameterError

PLAN_FILE = "plan.json"


def parts_dir(out: str | os.PathLike) -> Path:
    """Where the finished units of the analysis that writes ``out`` are kept."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def plan_digest(identity: dict, units) -> str:
    """SHA-256 of what an analysis is (``identity``: network, inputs, method...) and of its split into units."""
    h = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for u in units:
        h.update(f"{u.start}:{u.stop}:{u.layer}:".encode())
        h.update(np.ascontiguousarray(u.neurons, dtype=np.int64).tobytes())
    return h.hexdigest()


class Partials:
    """The on-disk store of one analysis' finished units (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, digest: str, identity: dict):
        self.directory = Path(directory)
        self.digest = digest
        plan = self.directory / PLAN_FILE
        if self.directory.is_symlink() or (self.directory.exists() and not self.directory.is_dir()):
            raise ParameterError(f"{self.directory} (where an analysis keeps its finished units) is a symbolic link "
                                "or a file; resilq keeps them only in a real folder: move it or choose another --out")
        if self.directory.is_dir() and not plan.exists() and any(self.directory.iterdir()):
            raise ParameterError(f"{self.directory} exists and was not written by resilq (no {PLAN_FILE}); it is "
                                "left alone: move it or choose another --out")
        if plan.exists():
            try:
                recorded = read_json_file(plan, "analysis plan")["digest"]  # size- and depth-capped
            except (FormatError, KeyError, TypeError):
                recorded = None
            if recorded != digest:
                raise MismatchError(f"{self.directory} holds finished units of another analysis (other model, "
                                    "inputs, method or neuron sample); delete it or choose another --out")
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._write_text(plan, json.dumps({"digest": digest, **identity}, sort_keys=True, indent=1))

    @staticmethod
    def _write_text(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no partial file
            raise

    def _path(self, index: int) -> Path:
        return self.directory / f"unit-{index:06d}.npy"

    def done(self) -> dict[int, np.ndarray]:
        """The finished units: ``{unit index: sums (rows, neurons of the unit)}``."""
        found = {}
        for path in sorted(self.directory.glob("unit-*.npy")):
            try:
                found[int(path.stem.split("-")[1])] = np.load(path, allow_pickle=False)
            except (OSError, ValueError):  # pragma: no cover - a torn file cannot exist (rename), but be safe
                path.unlink(missing_ok=True)
        return found

    def save(self, index: int, sums: np.ndarray) -> None:
        path = self._path(index)
        tmp = path.with_name(path.stem + ".tmp.npy")
        try:
            np.save(tmp, np.ascontiguousarray(sums, dtype=np.float64), allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        """Drop the store once the analysis' output is written (:func:`remove_parts`)."""
        remove_parts(self.directory)


def remove_parts(directory: str | os.PathLike) -> None:
    """Delete the files an analysis wrote into ``directory`` (plan, units, their temporary names), then the
    folder if nothing else is in it -- never a whole tree, never through a symbolic link."""
    directory = Path(directory)
    if directory.is_symlink() or not directory.is_dir():
        return
    for path in directory.iterdir():
        name = path.name
        ours = name in (PLAN_FILE, PLAN_FILE + ".tmp") or (name.startswith("unit-") and name.endswith(".npy"))
        if ours and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass


def open_partials(directory: str | os.PathLike | None, model, x: np.ndarray, method: str, units,
                  **settings) -> Partials | None:
    """The store of the analysis ``method`` of ``model`` over ``x`` split into ``units`` (None: no store)."""
    if directory is None:
        return None
    from .runner import inputs_key

    identity = {"network_hash": model.network_hash, "inputs": inputs_key(x), "n_inputs": int(x.shape[0]),
                "method": method, "units": len(units), **settings}
    return Partials(directory, plan_digest(identity, units), identity)
