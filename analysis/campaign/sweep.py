"""The NVF-threshold sweep behind the paper's Fig. 4: one campaign per (scheme, threshold), sharing results.

Each point of a sweep is an ordinary, self-contained campaign store (``campaigns/<model hash>.db``); points
whose hardened networks are identical (e.g. every scheme at a threshold no neuron reaches) share one.
``sweep.json`` lists the points; ``shared.db`` holds outcomes that several points can use.

**What is shared, exactly.** The outcome of a fault (its top-1 vector on every input) is a function of

1. the fault-free input of its layer L (digest of the golden output of the previous neuron layer, or of
   the data set for the first layer),
2. the fault-free output of layer L (its golden digest) and the value the faulty neuron holds after its
   corrector, which is fixed by the neuron's accumulator (from 1), its scheme (none, split, tmr, ...), the
   copy hit (original or shadow k), the mask and the fault mode,
3. the function computed by the layers after L. Fault-free, TMR/duplication correctors give back their
   input (``maj(a, a, a) = a & a = min(a, a) = a``), so downstream they compute exactly what the
   unprotected network computes; a split neuron computes ``2·half(acc)``, a different function. So the
   downstream function is fixed by the network and the set of split neurons in each later layer.

The sharing key is a hash of all of these (plus the network and data digests): two campaigns with equal
keys for a fault get bit-identical outcomes, so the outcome is computed once. Consequences: every fault
of a TMR point on an unprotected neuron reuses the unprotected campaign's result (and its faults on
protected neurons are masked at the site, never propagated), and split points share with each other and
with the unprotected network wherever the split neurons upstream do not change fault-free values and the
downstream split sets agree. Coordinated sampling (:mod:`.sampling`) makes the points inject the same
faults wherever their populations agree, so these keys actually meet.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..archive import read_json_file
from ..arith import Scheme
from ..errors import FormatError, MismatchError, ParameterError
from ..ir.model import Model
from ..nvf.result import NVFResult, check_threshold
from ..ui import say
from .engine import DEFAULT_BACKEND, BackendFactory, BackendKind, EvaluationSet, FaultEvaluator, GoldenRun, Outcomes
from .runner import CampaignConfig, CampaignReport, Sharing, run_campaign
from .sampling import FaultSample

MANIFEST = "sweep.json"
SHARED = "shared.db"
MANIFEST_VERSION = 1


# ---------------------------------------------------------------------------------------------- points
@dataclass(frozen=True)
class SweepPoint:
    """One point of Fig. 4: a scheme (None: unprotected) at an NVF threshold (None for the unprotected net)."""

    scheme: Scheme | None
    threshold: float | None

    @property
    def scheme_label(self) -> str:
        return "none" if self.scheme is None else self.scheme.label

    @property
    def label(self) -> str:
        return "none" if self.scheme is None else f"{self.scheme.label}@{self.threshold:.12g}"  # exact, not rounded


def parse_schemes(text: str) -> list[Scheme | None]:
    """``none,split,tmr`` -> ``[None, Scheme.SPLIT, Scheme.TMR]``."""
    out: list[Scheme | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            scheme = None if part.lower() in ("none", "unprotected") else Scheme.parse(part)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        if scheme not in out:
            out.append(scheme)
    if not out:
        raise ParameterError(f"no protection schemes in {text!r}; e.g. none,split,tmr")
    return out


def parse_thresholds(text: str) -> list[float]:
    """``0:0.5:0.05`` (start:stop:step, stop included) or a list ``0.1,0.2``; fractions in [0, 1]."""
    text = text.strip()
    if ":" in text:
        try:
            start, stop, step = (float(v) for v in text.split(":"))
        except ValueError:
            raise ParameterError(f"thresholds range must be START:STOP:STEP, got {text!r}") from None
        if step <= 0 or stop < start:
            raise ParameterError(f"thresholds range {text!r} needs STEP > 0 and STOP >= START")
        count = int(np.floor((stop - start) / step + 1e-9)) + 1
        values = [round(start + k * step, 10) for k in range(count)]
    else:
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ParameterError(f"thresholds must be numbers, got {text!r}") from None
    if not values:
        raise ParameterError("no thresholds given")
    return sorted({check_threshold(v) for v in values})


def sweep_points(schemes: Sequence[Scheme | None], thresholds: Sequence[float]) -> list[SweepPoint]:
    points = [SweepPoint(None, None)] if None in schemes else []
    return points + [SweepPoint(s, t) for s in schemes if s is not None for t in thresholds]


def harden(model: Model, nvf: NVFResult, scheme: Scheme | None, threshold: float | None) -> Model:
    """The network of a sweep point: ``scheme`` on every neuron with NVF >= ``threshold`` (``resilq.harden``,
    neuron granularity; layers ``split`` cannot protect get TMR, as ``resilq harden --fallback tmr`` does)."""
    from ..harden import HardeningPlan, Threshold
    from ..harden import harden as protect

    base = model.unprotected()
    if scheme is None:
        return base
    fallback = Scheme.TMR if scheme is Scheme.SPLIT else None
    return protect(base, nvf, HardeningPlan(scheme, Threshold(threshold), fallback=fallback)).model


def empty_points_warning(nvf: NVFResult, protected: Sequence[tuple[SweepPoint, int]]) -> str:
    """A warning naming the points of a sweep that protect no neuron (they repeat the unprotected network),
    with the largest NVF and what to ask instead; empty when every protected point protects something."""
    empty = sorted({p.threshold for p, n in protected if p.scheme is not None and n == 0})
    if not empty:
        return ""
    peak = max((float(np.nanmax(v)) for v in nvf.values.values() if np.isfinite(v).any()), default=0.0)
    shown = ", ".join(f"{t:.12g}" for t in empty[:6]) + (f" and {len(empty) - 6} more" if len(empty) > 6 else "")
    return (f"warning: {len(empty)} threshold(s) protect no neuron ({shown}): the largest NVF is {peak:.6g}, so these "
            f"points repeat the unprotected network; sweep thresholds below {peak:.6g}, or protect a budget or the "
            "top-k neurons (resilq harden --budget / --top-k)")


# ---------------------------------------------------------------------------------------------- sharing
def outcome_keys(model: Model, golden: GoldenRun, data: EvaluationSet, sample: FaultSample) -> list[bytes]:
    """The sharing key of every fault of ``sample`` (see the module docstring for why it is exact)."""
    layers = list(model.neuron_layers)
    split_digest = {}
    for i in layers:
        prot = model.protection(i)
        split = prot is not None and prot.scheme is Scheme.SPLIT and prot.n_protected
        split_digest[i] = hashlib.sha256(prot.neurons.astype("<i8").tobytes()).hexdigest() if split else "-"
    upstream = {i: (data.digest if k == 0 else golden.layer_digests[layers[k - 1]]) for k, i in enumerate(layers)}
    downstream = {i: ",".join(split_digest[j] for j in layers[k + 1:]) for k, i in enumerate(layers)}
    scheme_of: dict[int, np.ndarray] = {}
    for i in layers:
        prot = model.protection(i)
        codes = np.zeros(model.neurons_in(i), dtype=np.int64)
        if prot is not None and prot.n_protected:
            codes[prot.neurons] = int(prot.scheme)
        scheme_of[i] = codes
    context = {i: hashlib.sha256(f"{model.network_hash}|{data.digest}|{i}|{upstream[i]}|{golden.layer_digests[i]}|"
                                 f"{downstream[i]}".encode()).digest() for i in layers}
    keys = []
    for L, neuron, copy, mask in zip(sample.layer.tolist(), sample.neuron.tolist(), sample.copy.tolist(),
                                     sample.mask.tolist()):
        h = hashlib.blake2b(context[L], digest_size=20)
        h.update(f"{neuron}|{copy}|{mask}|{int(sample.mode)}|{scheme_of[L][neuron]}".encode())
        keys.append(h.digest())
    return keys


class SharedOutcomes:
    """The sweep's outcome cache: SQLite, key -> (changed, correct, top-1 digest); safe to interrupt.

    Every row carries a SHA-256 checksum of its key and outcome, verified when it is read: a damaged or
    edited row is refused (naming the file) instead of being copied, with a fresh checksum, into a campaign.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("CREATE TABLE IF NOT EXISTS outcomes(key BLOB PRIMARY KEY, changed INTEGER NOT NULL, "
                            "correct INTEGER NOT NULL, digest BLOB NOT NULL, checksum BLOB NOT NULL)")
            columns = [r[1] for r in self.db.execute("PRAGMA table_info(outcomes)")]
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{self.path}: not a usable sweep outcome cache ({exc}); it only holds shared "
                              "outcomes: delete it and run the sweep again") from None
        if "checksum" not in columns:
            self.db.close()
            raise FormatError(f"{self.path}: an outcome cache of an older resilq (no checksums); it only holds "
                              "shared outcomes: delete it and run the sweep again")

    @staticmethod
    def _checksum(key: bytes, changed: int, correct: int, digest: bytes) -> bytes:
        h = hashlib.sha256(b"resilq-shared-outcome")
        h.update(struct.pack("<I", len(key)) + bytes(key) + struct.pack("<2q", int(changed), int(correct)))
        h.update(bytes(digest))
        return h.digest()

    def get(self, keys: Sequence[bytes]) -> dict[bytes, tuple[int, int, bytes]]:
        found: dict[bytes, tuple[int, int, bytes]] = {}
        keys = list(keys)
        damaged = 0
        try:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                rows = self.db.execute(f"SELECT key, changed, correct, digest, checksum FROM outcomes WHERE key IN "
                                       f"({','.join('?' * len(part))})", part).fetchall()
                for k, c, r, d, check in rows:
                    ok = isinstance(c, int) and isinstance(r, int) and isinstance(d, bytes) and c >= 0 and r >= 0
                    if not ok or check != self._checksum(k, c, r, d):
                        damaged += 1
                        continue
                    found[bytes(k)] = (int(c), int(r), bytes(d))
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{self.path}: the sweep outcome cache is damaged ({exc}); delete it and run the "
                              "sweep again") from None
        if damaged:
            raise FormatError(f"{self.path}: {damaged} shared outcome rows are damaged or were edited (checksum "
                              "mismatch); the file only holds shared outcomes: delete it and run the sweep again")
        return found

    def put(self, keys: Sequence[bytes], outcomes: Outcomes) -> None:
        rows = [(k, int(c), int(r), d, self._checksum(k, c, r, d))
                for k, c, r, d in zip(keys, outcomes.changed, outcomes.correct, outcomes.digest)]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])

    def close(self) -> None:
        self.db.close()


# ---------------------------------------------------------------------------------------------- the sweep
def _identity(model: Model, nvf: NVFResult, data: EvaluationSet, config: CampaignConfig) -> dict[str, Any]:
    identity = {"network_hash": model.network_hash, "nvf_digest": nvf.digest, "data_digest": data.digest,
                "fault_model": config.fault_model.label, "seed": int(config.seed), "faults": config.faults}
    if config.kind.kind != "output":  # output sweeps keep the identity they always had
        identity.update(fault_kind=config.kind.kind, kind_params=config.kind.params)
    return identity


@dataclass
class SweepResult:
    points: list[tuple[SweepPoint, CampaignReport]]
    shared: int  # outcomes in the shared cache


def run_sweep(model: Model, nvf: NVFResult, data: EvaluationSet, out_dir: str | os.PathLike,
              schemes: Sequence[Scheme | None], thresholds: Sequence[float],
              config: CampaignConfig = CampaignConfig(), *, backend: BackendKind | BackendFactory = DEFAULT_BACKEND,
              client: Any = None, share: bool = True) -> SweepResult:
    """Run (or resume) every campaign of the sweep in ``out_dir``; see the module docstring."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nvf.check_model(model)
    points = sweep_points(schemes, thresholds)
    identity = _identity(model, nvf, data, config)
    manifest = open_manifest(out, identity)
    models: dict[str, tuple[Model, list[SweepPoint]]] = {}
    for point in points:
        hardened = harden(model, nvf, point.scheme, point.threshold)
        models.setdefault(hardened.hash, (hardened, []))[1].append(point)
    warning = empty_points_warning(nvf, [(p, hardened.n_protected) for hardened, pts in models.values() for p in pts])
    if warning:
        say(warning)
    known = {(p["scheme"], p["threshold"]) for p in manifest["points"]}
    for h, (hardened, pts) in models.items():
        for p in pts:
            if (p.scheme_label, p.threshold) not in known:
                manifest["points"].append({"scheme": p.scheme_label, "threshold": p.threshold,
                                           "campaign": f"campaigns/{h[:16]}.db", "model_hash": h,
                                           "n_neurons": hardened.n_neurons, "n_slots": hardened.n_slots,
                                           "n_protected": hardened.n_protected})
    write_manifest(out, manifest)
    # Sharing keys identify an output fault by its slot; other kinds are not shared between points.
    cache = SharedOutcomes(out / SHARED) if share and config.kind.kind == "output" else None
    results: list[tuple[SweepPoint, CampaignReport]] = []
    try:
        for n, (h, (hardened, pts)) in enumerate(models.items(), start=1):
            evaluator = FaultEvaluator(hardened, data, backend) if client is None else None
            sharing = None
            if cache is not None:
                def sharing(sample, golden, hardened=hardened):
                    return Sharing(cache, outcome_keys(hardened, golden, data, sample))
            label = f"[{n}/{len(models)}] {pts[0].label}" + (f" (= {len(pts) - 1} more points)" if len(pts) > 1 else "")
            report = run_campaign(hardened, data, out / "campaigns" / f"{h[:16]}.db", config, backend=backend,
                                  client=client, evaluator=evaluator, sharing=sharing, description=label)
            results.extend((p, report) for p in pts)
        return SweepResult(results, len(cache) if cache is not None else 0)
    finally:
        if cache is not None:
            cache.close()


def open_manifest(out: Path, identity: dict[str, Any], name: str = MANIFEST) -> dict[str, Any]:
    """The manifest ``name`` of a sweep directory (new if absent), refused if it describes another sweep."""
    path = out / name
    if not path.exists():
        return {"version": MANIFEST_VERSION, **identity, "points": []}
    manifest = read_manifest(out, name)
    diffs = [f"{k}: stored {manifest.get(k)!r}, requested {v!r}" for k, v in identity.items() if manifest.get(k) != v]
    if manifest.get("fault_kind", "output") != identity.get("fault_kind", "output") and "fault_kind" not in identity:
        diffs.append(f"fault_kind: stored {manifest['fault_kind']!r}, requested 'output'")
    if diffs:
        raise MismatchError(f"{out} holds a sweep of another configuration; refusing to mix results "
                            "(use another --out directory): " + "; ".join(diffs))
    return manifest


def write_manifest(out: Path, manifest: dict[str, Any], name: str = MANIFEST) -> None:
    tmp = out / (name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / name)


def read_manifest(out_dir: str | os.PathLike, name: str = MANIFEST) -> dict[str, Any]:
    path = Path(out_dir) / name
    if not path.is_file():
        command = "sweep-budget" if name != MANIFEST else "sweep"
        raise FormatError(f"{out_dir}: not a sweep directory (no {name}); run `resilq {command} ... --out {out_dir}`")
    manifest = read_json_file(path, "sweep manifest")  # size- and depth-capped (docs/security.md)
    if (not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION
            or not isinstance(manifest.get("points"), list)):
        raise FormatError(f"{path}: malformed sweep manifest (unknown version or no points)")
    return manifest
