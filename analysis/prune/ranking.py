"""Which output channels to prune: ranked by vulnerability (the hardening-and-pruning paper) or by L1 norm.

Both rankings give every output channel of a layer an importance; the channels with the LOWEST importance
are pruned, the same number in every pruned layer (``floor(out_channels * ratio)``, homogeneous pruning as in
the paper's public code, SentinelNN).

* ``vulnerability``: a channel's vulnerability is the mean NVF of its neurons (its channel vulnerability
  factor: the probability that a random single-bit flip in a random neuron of the channel misclassifies).
  Following the paper (channels sorted by vulnerability, the most vulnerable kept and duplicated), the
  LEAST vulnerable channels are pruned first: they matter least to the output, and what remains is the
  part worth hardening. All layers are ranked with the NVF of the unpruned network (one shot).
* ``l1``: the L1 norm of the channel's real-valued weights (``sum |w_int| * 2**e_w``), the conventional
  filter-pruning baseline (Li et al., ICLR 2017); the smallest norms are pruned first.

Ties keep the channel with the lower index, so a plan is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import ParameterError
from ..harden.selection import channel_scores, resolve_layers
from ..ir.model import Model
from ..nvf import NVFResult


class Ranking(Enum):
    VULNERABILITY = "vulnerability"
    L1 = "l1"


def check_ratio(ratio: float) -> float:
    if not isinstance(ratio, (int, float, np.floating)) or not 0.0 < float(ratio) < 1.0:
        raise ParameterError(f"pruning ratio must lie strictly between 0 and 1 (the fraction of output channels "
                             f"removed from each pruned layer), got {ratio!r}")
    return float(ratio)


def l1_importance(model: Model, index: int) -> np.ndarray:
    layer = model.layers[index]
    rows = np.abs(layer.weight.reshape(layer.out_channels, -1).astype(np.float64)).sum(axis=1)
    exps = model.metadata.get("quant_exponents", {}).get(layer.name) if isinstance(
        model.metadata.get("quant_exponents"), dict) else None
    if exps is not None:
        rows = rows * np.exp2(np.broadcast_to(np.asarray(exps["weight"], dtype=np.float64), rows.shape))
    return rows


def vulnerability_importance(model: Model, nvf: NVFResult, index: int) -> np.ndarray:
    scores = channel_scores(model, nvf, index)
    if np.isnan(scores).any():
        bad = np.flatnonzero(np.isnan(scores))[:5].tolist()
        raise ParameterError(f"the NVF has no value for any neuron of channel(s) {bad} of layer "
                             f"{model.layers[index].name!r}; cannot rank them by vulnerability")
    return scores


@dataclass(frozen=True, eq=False)
class PruningPlan:
    ranking: Ranking
    ratio: float
    keep: dict[int, np.ndarray]  # layer index -> kept output channels (original numbering)
    importance: dict[int, np.ndarray]  # layer index -> importance of every original channel

    def removed(self, index: int) -> np.ndarray:
        return np.setdiff1d(np.arange(self.importance[index].size), self.keep[index])


def plan_pruning(model: Model, ranking: Ranking, ratio: float, nvf: NVFResult | None = None,
                 layers: Sequence[str] | None = None) -> PruningPlan:
    """Decide which output channels of ``layers`` (default: every neuron layer) to keep."""
    ranking = Ranking(ranking)
    ratio = check_ratio(ratio)
    indices = resolve_layers(model, tuple(layers) if layers is not None else None, what="pruned")
    if ranking is Ranking.VULNERABILITY:
        if nvf is None:
            raise ParameterError("vulnerability-ranked pruning needs the model's NVF (--nvf FILE.nvf)")
        nvf.check_model(model)
    keep, importance = {}, {}
    for i in indices:
        if ranking is Ranking.VULNERABILITY:
            if i not in nvf.values:
                raise ParameterError(f"the NVF result has no values for layer {model.layers[i].name!r}")
            score = vulnerability_importance(model, nvf, i)
        else:
            score = l1_importance(model, i)
        n = score.size
        n_keep = n - int(np.floor(n * ratio + 1e-9))  # 1e-9: 100 * 0.29 is 28.999... in binary
        order = np.argsort(-score, kind="stable")
        keep[i] = np.sort(order[:n_keep])
        importance[i] = score
    return PruningPlan(ranking, ratio, keep, importance)


__all__ = ["PruningPlan", "Ranking", "check_ratio", "l1_importance", "plan_pruning", "vulnerability_importance"]
