"""What a campaign measured, with 95 % confidence intervals (SPEC §5).

The sampling unit is the **fault**: a campaign draws n faults without replacement from a finite
population of N candidate faults and applies each to the *whole* evaluation set, which is fixed. Each
fault therefore yields one number per metric -- its accuracy under fault ``a_i = correct_i / images`` and
its critical rate ``c_i = changed_i / images`` -- and the campaign's estimates are means of those numbers.

Interval: Student t on the per-fault values with the finite-population correction,
``mean ± t(0.975, n-1) · s/√n · √(1 - n/N)``. This is the interval that Leveugle's sample-size formula
(which has the same finite-population term) is designed around. A binomial interval over the n × images
inferences would be far too narrow: the inferences of one fault are not independent (one fault hits
every input), so the effective sample size is the number of faults, not the number of inferences.

When no sampled fault changed any prediction (e.g. TMR protecting every neuron), every ``c_i`` is 0 and the
t-interval would collapse to [0, 0]; the upper bound is then the Wilson score bound on the fraction of
faults that change anything (0 of n observed), valid because ``c_i <= 1{c_i > 0}``; accuracy can move at
most as far as predictions change, so the accuracy loss gets the same half-width, clipped like every other
interval to the range the metric can reach (a loss lies in [acc0 - 1, acc0], a rate in [0, 1]).

The fault-free accuracy is a property of the fixed evaluation set; its interval (Wilson, over images)
describes how well that set represents the data distribution, and is reported for context only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import How, Outcomes
from .sampling import FaultSample, SlotKind

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def percent(self, digits: int = 2) -> str:
        return f"{100 * self.value:.{digits}f} % [{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"

    def shifted(self, offset: float, negate: bool = False) -> Interval:
        """``offset - self`` (negate=True) or ``offset + self``."""
        if negate:
            return Interval(offset - self.value, offset - self.high, offset - self.low)
        return Interval(offset + self.value, offset + self.low, offset + self.high)


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a binomial proportion."""
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan)
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high)


def mean_interval(values: np.ndarray, population: int, confidence: float = CONFIDENCE,
                  bounds: tuple[float, float] = (-math.inf, math.inf)) -> Interval:
    """t-interval of the population mean from a simple random sample without replacement of ``values``.

    ``bounds``: the range the values (hence the mean) cannot leave; the interval is clipped to it.
    """
    y = np.asarray(values, dtype=np.float64)
    n = y.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(y.mean())
    if n == 1:  # no spread to estimate: the interval is the whole reachable range
        return Interval(mean, bounds[0], bounds[1]) if population > 1 else Interval(mean, mean, mean)
    from scipy.stats import t

    fpc = max(0.0, 1.0 - n / population) if population else 1.0
    se = float(y.std(ddof=1)) / math.sqrt(n) * math.sqrt(fpc)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * se
    return Interval(mean, max(bounds[0], mean - half), min(bounds[1], mean + half))


def _critical_and_loss(changed: np.ndarray, correct: np.ndarray, golden_correct: int, images: int, population: int,
                       confidence: float) -> tuple[Interval, Interval]:
    """(critical-rate interval, accuracy-loss interval), with the all-masked fallback.

    The per-fault accuracy loss ``(golden_correct - correct_i) / images`` is formed from integers, so a
    fault that changes nothing contributes exactly 0.
    """
    crit = mean_interval(changed / images, population, confidence, bounds=(0.0, 1.0))
    acc0 = golden_correct / images  # a fault's loss lies in [acc0 - 1, acc0]
    loss = mean_interval((golden_correct - correct) / images, population, confidence, bounds=(acc0 - 1.0, acc0))
    if changed.size and not changed.any() and changed.size < population:
        upper = wilson(0, int(changed.size), confidence).high
        crit = Interval(0.0, 0.0, upper)
        loss = Interval(0.0, max(acc0 - 1.0, -upper), min(acc0, upper))  # clipped to the reachable range
    return crit, loss


@dataclass(frozen=True)
class GroupRow:
    """One line of a breakdown (a layer, a bit, a kind of slot)."""

    label: str
    population: int
    faults: int
    critical_rate: Interval
    accuracy_loss: Interval
    effective_faults: int  # faults that changed at least one prediction
    share: float  # fraction of all changed inferences that this group produced


@dataclass(frozen=True)
class CampaignSummary:
    """Everything ``resilq campaign`` reports, computed from the store alone (no model needed)."""

    images: int
    faults: int
    sample_size: int
    population: int
    fault_free_accuracy: Interval
    accuracy_under_fault: Interval
    accuracy_loss: Interval
    critical_rate: Interval
    critical_faults: Interval  # fraction of faults that change at least one prediction (Wilson)
    how: dict[str, int]
    by_layer: list[GroupRow]
    by_bit: list[GroupRow]
    by_kind: list[GroupRow]

    @property
    def complete(self) -> bool:
        return self.faults == self.sample_size


def summarize(meta: Mapping[str, Any], sample: FaultSample, idx: np.ndarray, outcomes: Outcomes,
              confidence: float = CONFIDENCE) -> CampaignSummary:
    """Statistics of the finished faults ``idx`` (rows of ``sample``) of a campaign described by ``meta``."""
    if meta.get("fault_kind", "output") != "output":  # lane / weight / ber: that kind's breakdowns
        from .kinds import summarize_kind

        return summarize_kind(meta, sample, idx, outcomes, confidence)
    images = int(meta["images"])
    population = int(meta["population"])
    golden_correct = int(meta["fault_free_correct"])
    acc0 = golden_correct / images
    changed, correct = outcomes.changed, outcomes.correct
    crit, loss = _critical_and_loss(changed, correct, golden_correct, images, population, confidence)
    layer, mask, kind = sample.layer[idx], sample.mask[idx], sample.kind[idx]
    n_masks = int(meta["masks"])
    total_changed = max(int(changed.sum()), 1)

    def group(label: str, rows: np.ndarray, group_population: int) -> GroupRow:
        c, lo = _critical_and_loss(changed[rows], correct[rows], golden_correct, images, group_population, confidence)
        return GroupRow(label, group_population, int(rows.size), c, lo,
                        int((changed[rows] > 0).sum()), float(changed[rows].sum()) / total_changed)

    by_layer = []
    for spec in meta["layers"]:
        slots = int(spec["neurons"]) + int(spec["shadows"])
        by_layer.append(group(spec["name"], np.flatnonzero(layer == spec["index"]), slots * n_masks))
    n_slots = sum(int(s["neurons"]) + int(s["shadows"]) for s in meta["layers"])
    by_bit = [group(_mask_label(int(m)), np.flatnonzero(mask == m), n_slots) for m in meta["mask_values"]]
    kind_slots = {SlotKind.NEURON: sum(int(s["neurons"]) - int(s["protected"]) for s in meta["layers"]),
                  SlotKind.PROTECTED: sum(int(s["protected"]) for s in meta["layers"]),
                  SlotKind.SHADOW: sum(int(s["shadows"]) for s in meta["layers"])}
    by_kind = [group(k.label, np.flatnonzero(kind == k), n * n_masks) for k, n in kind_slots.items() if n]
    how = {h.name.lower(): int((outcomes.how == h).sum()) for h in How}
    return CampaignSummary(images, int(idx.size), int(meta["sample_size"]), population,
                           wilson(golden_correct, images, confidence), loss.shifted(acc0, negate=True), loss, crit,
                           wilson(int((changed > 0).sum()), int(idx.size), confidence), how, by_layer, by_bit,
                           by_kind)


def _mask_label(mask: int) -> str:
    if mask & (mask - 1) == 0:
        return f"bit {mask.bit_length() - 1}"
    return "bits " + ",".join(str(b) for b in range(8) if mask >> b & 1)


#: What a breakdown's rate cells say for a group no sampled fault fell in (instead of "nan %").
NO_FAULT = "n/a: no fault sampled here"


def breakdown_rows(rows: Sequence[GroupRow]) -> list[list[Any]]:
    """Table rows of a breakdown, as printed by the CLI."""
    return [[r.label, r.population, r.faults, r.effective_faults,
             r.critical_rate.percent() if r.faults else NO_FAULT, r.accuracy_loss.percent() if r.faults else NO_FAULT,
             f"{100 * r.share:.1f} %"] for r in rows]


BREAKDOWN_COLUMNS = ("group", "population", "faults", "effective", "critical rate (95 % CI)",
                     "accuracy loss (95 % CI)", "share of changes")
