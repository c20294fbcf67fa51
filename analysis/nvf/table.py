"""Table I for any NVF result: critical neurons per threshold, overall and per layer, as rows and CSV.

A sampled result (NaN for unvisited neurons) gives *estimated* counts: per stratum (output channel of a
conv layer, the whole of a dense layer) the visited fraction above the threshold times the stratum size.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from .paper import PAPER_TABLE_I
from .result import _EPS, TABLE_THRESHOLDS, NVFResult, check_threshold


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str
    shape: tuple[int, ...]

    @property
    def strata(self) -> tuple[int, int]:
        if len(self.shape) == 3:
            return self.shape[0], self.shape[1] * self.shape[2]
        return 1, int(np.prod(self.shape))


def layers_metadata(model) -> dict[str, dict]:
    """What an NVF result records about its layers so that tables and plots need no model file."""
    return {str(i): {"name": model.layers[i].name, "shape": list(model.out_shape(i))} for i in model.neuron_layers}


def layer_info(result: NVFResult) -> list[LayerInfo]:
    """Names and shapes of the analysed layers (recorded by the analysis; flat vectors otherwise)."""
    meta = result.metadata.get("layers", {})
    out = []
    for i in result.layers:
        m = meta.get(str(i), {})
        out.append(LayerInfo(i, str(m.get("name", f"layer {i}")), tuple(m.get("shape", [result.values[i].size]))))
    return out


def parse_thresholds(text: str | None) -> tuple[float, ...]:
    if text is None:
        return TABLE_THRESHOLDS
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ParameterError(f"thresholds must be a comma-separated list of fractions, got {text!r}") from None
    if not values:
        raise ParameterError("give at least one threshold")
    return tuple(check_threshold(t) for t in values)


def fitted_thresholds(result: NVFResult, steps: int = 10) -> tuple[float, ...]:
    """A Table I grid over the measured range: 0 and ``steps``-ish round steps (1, 2, 2.5 or 5 x 10^k) up to
    the first step at or above the largest NVF, so that every row but the last says something."""
    values = result.all_values()
    values = values[np.isfinite(values)]
    peak = float(values.max()) if values.size else 0.0
    if peak <= 0:
        return (0.0,)
    raw = peak / steps
    decade = 10.0 ** np.floor(np.log10(raw))
    step = next(m * decade for m in (1, 2, 2.5, 5, 10) if m * decade >= raw - 1e-15)
    count = int(np.ceil(peak / step - 1e-9))
    return tuple(float(min(1.0, round(k * step, 12))) for k in range(count + 1))


def critical_count(values: np.ndarray, info: LayerInfo, threshold: float) -> float:
    """Neurons of one layer with NVF >= threshold; estimated per stratum when some were not visited."""
    if np.isfinite(values).all():
        return float(np.count_nonzero(values >= threshold - _EPS))
    n_strata, per = info.strata
    total = 0.0
    for row in values.reshape(n_strata, per):
        seen = row[np.isfinite(row)]
        if seen.size:
            total += per * np.count_nonzero(seen >= threshold - _EPS) / seen.size
    return total


def is_sampled(result: NVFResult) -> bool:
    return not np.isfinite(result.all_values()).all()


def table_i(result: NVFResult, thresholds=TABLE_THRESHOLDS) -> list[tuple[float, float, float]]:
    """``(threshold, critical neurons, portion)`` rows; counts are estimates for a sampled result."""
    thresholds = tuple(check_threshold(t) for t in thresholds)
    infos = layer_info(result)
    n = result.n_neurons
    rows = []
    for t in thresholds:
        count = sum(critical_count(result.values[i.index], i, t) for i in infos)
        rows.append((t, count, count / n if n else 0.0))
    return rows


def per_layer_rows(result: NVFResult, thresholds=(0.1, 0.2)) -> list[list]:
    """Per layer: neurons, mean / max NVF, critical counts at ``thresholds``."""
    rows = []
    for info in layer_info(result):
        v = result.values[info.index]
        seen = v[np.isfinite(v)]
        rows.append([info.name, v.size, int(seen.size), float(seen.mean()) if seen.size else float("nan"),
                     float(seen.max()) if seen.size else float("nan"),
                     *[round(critical_count(v, info, t), 1) for t in thresholds]])
    return rows


def paper_column(name: str | None) -> tuple[int, ...] | None:
    if name is None:
        return None
    key = name.lower().replace("-", "")
    if key not in PAPER_TABLE_I:
        raise ParameterError(f"the paper's Table I has no row for {name!r}; choose one of {', '.join(PAPER_TABLE_I)}")
    return PAPER_TABLE_I[key]


def write_csv(path: str | os.PathLike, result: NVFResult, thresholds=TABLE_THRESHOLDS, paper: str | None = None) -> Path:
    """Table I as CSV: threshold, critical, portion (+ the paper's column when asked)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = paper_column(paper)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        header = ["threshold", "critical_neurons", "portion"]
        if ref is not None:
            header += [f"paper_{paper}_neurons", f"paper_{paper}_portion"]
        w.writerow(header)
        for t, count, portion in table_i(result, thresholds):
            row = [f"{t:.2f}", f"{count:.1f}" if is_sampled(result) else int(count), f"{portion:.6f}"]
            if ref is not None and t in TABLE_THRESHOLDS:
                p = ref[TABLE_THRESHOLDS.index(t)]
                row += [p, f"{p / ref[0]:.6f}"]
            w.writerow(row)
    return path


def per_bit_rows(result: NVFResult) -> list[list] | None:
    """Per layer, the critical fraction of flips of each bit (exact results record it), or None."""
    bits = result.metadata.get("bit_critical")
    if not bits:
        return None
    return [[info.name, *[f"{100 * b:.2f}" for b in bits[str(info.index)]]] for info in layer_info(result)]
