"""Quantization-aware training of a Brevitas model, seeded and reproducible on the CPU."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..data import Dataset
from ..ui import progress, say


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0
    #: Hold-out fraction of the training split used for the per-epoch validation accuracy (0 = none).
    validation: float = 0.0
    #: Train on the first N images of the training split only (None = all): a quick model with realistic
    #: activations for analysis and benchmarks, not an accurate one.
    train_images: int | None = None


@dataclass
class TrainHistory:
    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _logits(out) -> torch.Tensor:
    return out.value if hasattr(out, "value") else out


def float_accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of the Brevitas (fake-quantized) model."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(labels), batch_size):
            out = _logits(net(torch.from_numpy(images[s:s + batch_size])))
            correct += int((out.argmax(1).numpy() == labels[s:s + batch_size]).sum())
    return correct / max(len(labels), 1)


def train(net: nn.Module, data: Dataset, config: TrainConfig) -> TrainHistory:
    """Train ``net`` on ``data`` with Adam and cross-entropy; progress per batch, a summary per epoch."""
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data))
    n_val = int(round(config.validation * len(data)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(config.epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    hist = TrainHistory()
    steps = (len(train_idx) + config.batch_size - 1) // config.batch_size
    for epoch in range(1, config.epochs + 1):
        net.train()
        perm = train_idx[rng.permutation(len(train_idx))]
        total_loss, correct = 0.0, 0
        with progress(steps, f"epoch {epoch}/{config.epochs}", "batches") as advance:
            for s in range(0, len(perm), config.batch_size):
                idx = perm[s:s + config.batch_size]
                x = torch.from_numpy(data.images[idx])
                y = torch.from_numpy(data.labels[idx])
                out = _logits(net(x))
                loss = loss_fn(out, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total_loss += loss.item() * len(idx)
                correct += int((out.argmax(1) == y).sum())
                advance(1)
        sched.step()
        hist.loss.append(total_loss / len(perm))
        hist.train_accuracy.append(correct / len(perm))
        msg = f"epoch {epoch}: loss {hist.loss[-1]:.4f}, train accuracy {hist.train_accuracy[-1]:.2%}"
        if n_val:
            hist.val_accuracy.append(float_accuracy(net, data.images[val_idx], data.labels[val_idx]))
            msg += f", validation accuracy {hist.val_accuracy[-1]:.2%}"
        say(msg)
    net.eval()
    return hist
