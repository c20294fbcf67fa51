"""Fault-injection campaigns on the accelerator: the Python engine's fault list, injected by register pokes.

:func:`run_device_campaign` is :func:`resilq.campaign.run_campaign` with a device in place of the
fault-propagation core: the same sample (:func:`resilq.campaign.sample_faults`: same model, fault model
and seed -> the same faults in the same order), the same evaluation set and the same SQLite store, so a
board (or emulator, or C-sim) campaign and a Python one can be compared fault by fault
(:func:`compare_campaigns`, ``resilq campaign-compare A.db B.db``). For every fault the driver writes
FI_LAYER/FI_SLOT/FI_MASK/FI_MODE, enables FI_CTRL and runs the whole evaluation set; nothing is decided
on the host: the engine's "masked at the site" shortcut is off, every outcome is measured on the device.
The fault-free run on the device must equal the bit-true executor's before any fault is injected.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resilq.campaign.engine import EvaluationSet, FaultEvaluator, GoldenRun
from resilq.campaign.runner import CampaignConfig, CampaignReport, load_campaign, run_campaign
from resilq.campaign.store import IDENTITY_KEYS
from resilq.errors import MismatchError
from resilq.faults import Fault

from .driver import Accelerator


class DeviceBackend:
    """A campaign backend whose every fault runs on the device: ``predictions(faults)`` is (F, N)."""

    def __init__(self, accel: Accelerator, x: np.ndarray):
        self.accel = accel
        self.x = x
        self.golden = accel.run_all(x).predictions
        self.runs = 0

    def predictions(self, faults: Sequence[Fault]) -> np.ndarray:
        out = np.empty((len(faults), self.x.shape[0]), dtype=np.int64)
        for row, fault in enumerate(faults):
            out[row] = self.accel.run_all(self.x, fault).predictions
            self.runs += 1
        return out


class DeviceEvaluator(FaultEvaluator):
    """The campaign engine's evaluator with every fault injected (no masking decided on the host)."""

    def masked(self, faults: Sequence[Fault]) -> np.ndarray:
        for fault in faults:
            fault.check(self.model)
        return np.zeros(len(faults), dtype=bool)


def run_device_campaign(accel: Accelerator, data: EvaluationSet, out: str | os.PathLike, config: CampaignConfig,
                        target: str, golden: GoldenRun | None = None) -> CampaignReport:
    """Run (or resume) the campaign ``config`` on ``accel``'s device; results in the store ``out``."""
    def factory(model, x):
        return DeviceBackend(accel, x)

    factory.__name__ = f"device:{target}"
    evaluator = DeviceEvaluator(accel.model, data, factory, golden)
    return run_campaign(accel.model, data, out, config, backend=factory, evaluator=evaluator,
                        description=f"faults injected by register pokes on the {target}")


@dataclass
class Comparison:
    """Two campaigns of the same plan, fault by fault."""

    a: CampaignReport
    b: CampaignReport
    compared: np.ndarray  # fault numbers finished in both
    mismatched: np.ndarray  # those whose outcome differs (top-1 digest, changed or correct count)

    @property
    def identical(self) -> bool:
        return self.mismatched.size == 0 and self.compared.size > 0


def compare_campaigns(path_a: str | Path, path_b: str | Path) -> Comparison:
    """Outcome of every fault finished in both stores; :class:`MismatchError` if they are not one campaign."""
    a, b = load_campaign(path_a), load_campaign(path_b)
    diffs = [f"{k}: {a.meta.get(k)!r} vs {b.meta.get(k)!r}" for k in IDENTITY_KEYS if a.meta.get(k) != b.meta.get(k)]
    if diffs:
        raise MismatchError(f"{path_a} and {path_b} are not the same campaign (same model, data, fault model, seed "
                            "and sample), so they cannot be compared fault by fault: " + "; ".join(diffs))
    common, ia, ib = np.intersect1d(a.idx, b.idx, return_indices=True)
    oa, ob = a.outcomes.take(ia), b.outcomes.take(ib)
    same = (oa.changed == ob.changed) & (oa.correct == ob.correct) & np.array(
        [x == y for x, y in zip(oa.digest, ob.digest)], dtype=bool)
    return Comparison(a, b, common, common[~same])


def quick_summary(report: CampaignReport) -> list[tuple[str, str]]:
    """Point estimates without scipy (the board): the confidence intervals and breakdowns of
    ``resilq report`` need scipy and are computed on the host from the same store."""
    meta, out = report.meta, report.outcomes
    images = int(meta["images"])
    rows = [("faults done", f"{report.idx.size:,} of {len(report.sample):,}"),
            ("fault-free accuracy", f"{100 * meta['fault_free_correct'] / images:.2f} %")]
    if report.idx.size:
        rows += [("accuracy under fault (mean)", f"{100 * float(np.mean(out.correct)) / images:.3f} %"),
                 ("critical-fault rate (inferences)", f"{100 * float(np.mean(out.changed)) / images:.3f} %"),
                 ("faults changing >= 1 prediction", f"{100 * float(np.mean(out.changed > 0)):.2f} %")]
    return rows
