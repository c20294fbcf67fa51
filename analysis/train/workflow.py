"""Train -> export -> verify, the one function behind ``resilq train`` (and its Python API)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch.nn as nn

from .. import __version__
from ..data import Dataset, load_dataset
from ..errors import ParameterError, UnsupportedModelError
from ..evaluate import accuracy
from ..ir.model import Model
from .export import ExportTrace, check_structure, export_brevitas
from .qat import TrainConfig, TrainHistory, float_accuracy, seed_everything, train
from .trust import TrustReport, compare_brevitas
from .zoo import ZOO, build


@dataclass
class TrainedModel:
    model: Model
    net: nn.Module
    trace: ExportTrace
    history: TrainHistory
    trust: TrustReport | None
    int_accuracy: float
    float_accuracy: float
    test: Dataset


def resolve_architecture(spec: str) -> tuple[str, Callable[..., nn.Module]]:
    """A zoo name, or ``path/to/file.py:factory`` for a bring-your-own Brevitas model.

    A factory is called as ``factory(input_shape, n_classes)`` and must return an ``nn.Sequential`` of
    the layers :mod:`resilq.train.export` supports.
    """
    if spec in ZOO:
        return spec, ZOO[spec]
    if ":" not in spec:
        raise UnsupportedModelError(f"unknown model {spec!r}: use one of {', '.join(ZOO)} or FILE.py:FACTORY")
    file, func = spec.rsplit(":", 1)
    path = Path(file)
    if not path.is_file():
        raise UnsupportedModelError(f"{path}: model definition file not found")
    mod_name = f"resilq_user_model_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    module_spec.loader.exec_module(module)
    if not hasattr(module, func):
        raise UnsupportedModelError(f"{path} defines no {func!r}")
    return func, getattr(module, func)


def train_and_export(architecture: str, dataset: str = "digits", data_dir: str | None = None,
                     config: TrainConfig | None = None, per_channel: bool = False,
                     verify_inputs: int | None = 1000) -> TrainedModel:
    """Train a zoo (or user) model with QAT, export it to the IR and check the chain of trust."""
    config = config or TrainConfig()
    train_set = load_dataset(dataset, "train", data_dir)
    if config.train_images is not None:
        if config.train_images < 1:
            raise ParameterError(f"train_images must be positive, got {config.train_images}")
        train_set = train_set.take(config.train_images)
    test_set = load_dataset(dataset, "test", data_dir)
    name, factory = resolve_architecture(architecture)
    n_classes = len(train_set.classes)
    seed_everything(config.seed)  # the initial weights too: the same seed gives the same network
    if factory in ZOO.values():
        net = build(name, train_set.shape, n_classes, per_channel=per_channel)
    else:
        net = factory(train_set.shape, n_classes)
    check_structure(net)
    history = train(net, train_set, config)
    import brevitas
    import torch

    metadata = {
        "name": name, "dataset": dataset, "input_shape": list(train_set.shape), "classes": list(train_set.classes),
        "train_config": asdict(config), "per_channel_weights": per_channel,
        "versions": {"resilq": __version__, "torch": torch.__version__, "brevitas": brevitas.__version__},
    }
    model, trace = export_brevitas(net, train_set.shape, metadata, with_trace=True)
    trust = None
    if verify_inputs:
        trust = compare_brevitas(net, model, trace, test_set.images[:verify_inputs])
    int_acc = accuracy(model, test_set)
    flt_acc = float_accuracy(net, test_set.images, test_set.labels)
    model = model.replace(metadata={**model.metadata, "test_accuracy": int_acc, "float_test_accuracy": flt_acc,
                                    "train_loss": history.loss[-1] if history.loss else None})
    return TrainedModel(model, net, trace, history, trust, int_acc, flt_acc, test_set)
