"""Fault-free behaviour of a protected network against its unprotected source (SPEC §4).

``tmr``, ``dup-and`` and ``dup-min`` copies compute the full neuron, so without faults their correctors
return it unchanged and the network is bit-identical to the source. ``split`` halves compute
``round(acc / 2**(s+1))`` clamped to [0, 63] and the LCU writes back twice that: within one LSB of the full
value (odd values lose their LSB, 127 becomes 126). That changes a few logits, and occasionally a top-1
class; :func:`fault_free_agreement` measures it instead of hiding it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.executor import Executor
from ..ir.model import Model
from ..ui import progress


@dataclass(frozen=True)
class Agreement:
    inputs: int
    top1_agree: int  # inputs whose top-1 class equals the unprotected network's
    logits_identical: int  # inputs whose logits are bit-identical
    source_correct: int | None = None
    hardened_correct: int | None = None

    @property
    def top1_agreement(self) -> float:
        return self.top1_agree / self.inputs if self.inputs else float("nan")

    @property
    def identical(self) -> bool:
        return self.logits_identical == self.inputs

    @property
    def source_accuracy(self) -> float | None:
        return None if self.source_correct is None else self.source_correct / self.inputs

    @property
    def hardened_accuracy(self) -> float | None:
        return None if self.hardened_correct is None else self.hardened_correct / self.inputs

    def describe(self) -> str:
        text = (f"fault-free top-1 agreement with the unprotected network: {self.top1_agreement:.2%} "
                f"({self.top1_agree:,}/{self.inputs:,} inputs); bit-identical logits on {self.logits_identical:,}")
        if self.source_correct is not None:
            text += (f"; accuracy {self.source_accuracy:.2%} unprotected -> {self.hardened_accuracy:.2%} protected "
                     f"({self.hardened_accuracy - self.source_accuracy:+.2%})")
        return text


def fault_free_agreement(source: Model, hardened: Model, images: np.ndarray, labels: np.ndarray | None = None,
                         batch_size: int = 512, show_progress: bool = False) -> Agreement:
    """Run both networks without faults on float ``images`` and compare top-1 classes and logits."""
    ex_src, ex_hard = Executor(source), Executor(hardened)
    agree = identical = src_ok = hard_ok = 0
    with progress(len(images) if show_progress else 0, "fault-free agreement", "images") as advance:
        for s in range(0, len(images), batch_size):
            x = source.quantize_input(images[s:s + batch_size])
            a, b = ex_src.run(x).logits, ex_hard.run(x).logits
            pa, pb = np.argmax(a, axis=1), np.argmax(b, axis=1)
            agree += int((pa == pb).sum())
            identical += int(np.all(a == b, axis=1).sum())
            if labels is not None:
                y = labels[s:s + batch_size]
                src_ok += int((pa == y).sum())
                hard_ok += int((pb == y).sum())
            advance(len(x))
    has = labels is not None
    return Agreement(len(images), agree, identical, src_ok if has else None, hard_ok if has else None)


__all__ = ["Agreement", "fault_free_agreement"]
