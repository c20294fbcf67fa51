"""Prune -> (Brevitas fine-tuning) -> export: the one function behind ``resilq prune``.

Fine-tuning rebuilds the Brevitas network from the pruned IR (:func:`resilq.train.from_ir.to_brevitas`),
checks that it computes the pruned IR bit for bit before training (a broken rebuild would silently train
another network), trains with :func:`resilq.train.train`, exports, and checks the export bit for bit again.
Without fine-tuning the pruned IR is the result (pure integer surgery, no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from ..errors import MismatchError, ParameterError
from ..ir.model import Model
from ..nvf import NVFResult
from .ranking import PruningPlan, Ranking, plan_pruning
from .surgery import prune_channels

#: Inputs used for the Brevitas <-> IR bit-for-bit checks around fine-tuning.
CHECK_INPUTS = 256


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ParameterError(f"fine-tuning epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise ParameterError(f"fine-tuning learning rate must be positive, got {self.lr}")


@dataclass(frozen=True, eq=False)
class PruneResult:
    model: Model  # the final model (fine-tuned and re-exported when epochs > 0)
    pruned: Model  # the pruned IR before fine-tuning
    plan: PruningPlan
    train_loss: list[float] | None = None


def _record(model: Model, plan: PruningPlan, nvf: NVFResult | None) -> dict:
    layers = {model.layers[i].name: {"kept": int(plan.keep[i].size), "removed": plan.removed(i).tolist()}
              for i in sorted(plan.keep)}
    return {"by": plan.ranking.value, "ratio": plan.ratio, "layers": layers, "source_model_hash": model.hash,
            "source_network_hash": model.network_hash, "source_neurons": model.n_neurons,
            "source_macs": model.macs(), "nvf_hash": nvf.digest if nvf is not None else None}


def _check_trust(net, model: Model, trace, images: np.ndarray, what: str) -> None:
    from ..train.trust import compare_brevitas

    report = compare_brevitas(net, model, trace, images[:CHECK_INPUTS])
    if not report.identical:
        bad = [(c.name, c.mismatches) for c in report.layers if c.mismatches]
        raise MismatchError(f"{what}: the Brevitas network and the integer model differ ({bad}); refusing to continue")


def prune(model: Model, ranking: Ranking, ratio: float, nvf: NVFResult | None = None,
          layers: Sequence[str] | None = None, finetune: FinetuneConfig | None = None,
          train_data: Dataset | None = None) -> PruneResult:
    """Prune ``ratio`` of the output channels of every pruned layer, then fine-tune on ``train_data``."""
    plan = plan_pruning(model, ranking, ratio, nvf, layers)
    record = _record(model, plan, nvf)
    pruned = prune_channels(model, plan.keep)
    meta = {**pruned.metadata, "pruning": record}
    meta.pop("test_accuracy", None)
    meta.pop("float_test_accuracy", None)
    pruned = pruned.replace(metadata=meta)
    if finetune is None or finetune.epochs == 0:
        return PruneResult(pruned, pruned, plan)
    if train_data is None:
        raise ParameterError("fine-tuning needs training data")

    from ..train.export import export_brevitas
    from ..train.from_ir import to_brevitas
    from ..train.qat import TrainConfig, train

    net, trace = to_brevitas(pruned, with_trace=True)
    _check_trust(net, pruned, trace, train_data.images, "rebuilt network before fine-tuning")
    history = train(net, train_data, TrainConfig(epochs=finetune.epochs, batch_size=finetune.batch_size,
                                                 lr=finetune.lr, seed=finetune.seed))
    meta = {k: v for k, v in pruned.metadata.items() if k != "quant_exponents"}
    meta["pruning"] = {**record, "finetune": {"epochs": finetune.epochs, "lr": finetune.lr,
                                              "batch_size": finetune.batch_size, "seed": finetune.seed,
                                              "dataset": train_data.name}}
    tuned, trace = export_brevitas(net, pruned.input.shape, meta, with_trace=True)
    _check_trust(net, tuned, trace, train_data.images, "fine-tuned network after export")
    return PruneResult(tuned, pruned, plan, list(history.loss))


__all__ = ["FinetuneConfig", "PruneResult", "prune"]
