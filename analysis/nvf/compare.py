"""How far one NVF result is from another (e.g. the δ-range method, a sampled run or fewer inputs, against
the exact NVF): per-neuron errors, rank agreement, agreement of the critical sets, and Table I side by side.

Critical sets are compared two ways: at absolute thresholds (NVF >= 10 %, >= 20 %, the sets a user would
protect) and as the top 10 % / 20 % of neurons by NVF (which neurons a method ranks as most vulnerable,
meaningful even when a threshold selects few neurons). For each: sizes, intersection, Jaccard index, and the
recall / precision of the other result's set against the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MismatchError
from .result import _EPS, TABLE_THRESHOLDS, NVFResult
from .table import layer_info, table_i

THRESHOLDS = (0.1, 0.2)
TOP_FRACTIONS = (0.1, 0.2)


@dataclass(frozen=True)
class Overlap:
    label: str
    reference: int
    other: int
    both: int

    @property
    def jaccard(self) -> float:
        union = self.reference + self.other - self.both
        return self.both / union if union else 1.0

    @property
    def recall(self) -> float:
        return self.both / self.reference if self.reference else 1.0

    @property
    def precision(self) -> float:
        return self.both / self.other if self.other else 1.0


@dataclass
class Comparison:
    reference: NVFResult
    other: NVFResult
    neurons: int  # compared (finite in both)
    mae: float
    max_error: float
    bias: float  # mean(other - reference)
    spearman: float
    overlaps: list[Overlap] = field(default_factory=list)
    per_layer: list[list] = field(default_factory=list)
    table: list[tuple[float, float, float]] = field(default_factory=list)  # threshold, reference, other


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _top(values: np.ndarray, fraction: float) -> set[int]:
    k = max(1, int(round(fraction * values.size)))
    order = np.argsort(-values, kind="stable")  # ties broken by neuron index, the same way on both sides
    return set(order[:k].tolist())


def _mean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def compare(reference: NVFResult, other: NVFResult) -> Comparison:
    if reference.network_hash != other.network_hash:
        raise MismatchError(f"the two NVF files belong to different networks ({reference.network_hash[:12]}… vs "
                            f"{other.network_hash[:12]}…): compare analyses of the same model")
    if reference.layers != other.layers or any(reference.values[i].shape != other.values[i].shape
                                               for i in reference.layers):
        raise MismatchError("the two NVF files do not cover the same neuron layers")
    a, b = reference.all_values(), other.all_values()
    common = np.isfinite(a) & np.isfinite(b)
    ac, bc = a[common], b[common]
    err = np.abs(ac - bc)
    comp = Comparison(reference, other, int(common.sum()), float(err.mean()) if err.size else float("nan"),
                      float(err.max()) if err.size else float("nan"), float((bc - ac).mean()) if err.size else float("nan"),
                      spearman(ac, bc))
    for t in THRESHOLDS:
        ra, rb = ac >= t - _EPS, bc >= t - _EPS
        comp.overlaps.append(Overlap(f"NVF >= {t:.0%}", int(ra.sum()), int(rb.sum()), int((ra & rb).sum())))
    for f in TOP_FRACTIONS:
        sa, sb = _top(ac, f), _top(bc, f)
        comp.overlaps.append(Overlap(f"top {f:.0%}", len(sa), len(sb), len(sa & sb)))
    offset = 0
    for info in layer_info(reference):
        size = reference.values[info.index].size
        m = common[offset:offset + size]
        ra, rb = a[offset:offset + size], b[offset:offset + size]
        la, lb = ra[m], rb[m]
        # Layer means over everything each side analysed (a sampled side gives its estimate of the mean);
        # errors and ranks over the neurons both analysed.
        comp.per_layer.append([info.name, int(m.sum()), _mean(ra), _mean(rb),
                               float(np.abs(la - lb).mean()) if la.size else float("nan"), spearman(la, lb)])
        offset += size
    ref_rows, other_rows = table_i(reference, TABLE_THRESHOLDS), table_i(other, TABLE_THRESHOLDS)
    comp.table = [(t, r, o) for (t, r, _), (_, o, _) in zip(ref_rows, other_rows)]
    return comp
