"""Table I of the neuron-splitting paper (Ahmadilivani et al.), for side-by-side comparison (SPEC §6).

Critical neurons (NVF >= threshold) at thresholds 0 %, 5 %, ..., 50 %, as printed in the paper.
"""

from __future__ import annotations

from .result import TABLE_THRESHOLDS

PAPER_TABLE_I: dict[str, tuple[int, ...]] = {
    "mlp7": (2816, 2513, 1382, 903, 503, 272, 184, 85, 26, 7, 0),
    "lenet5": (4684, 4380, 1659, 222, 187, 70, 3, 0, 0, 0, 0),
    "alexnet": (103168, 46322, 15818, 5171, 622, 398, 232, 147, 56, 6, 0),
}
#: The datasets the paper's networks were trained on, and their int8 test accuracy.
PAPER_SETUP = {"mlp7": ("MNIST", 0.701), "lenet5": ("MNIST", 0.891), "alexnet": ("CIFAR-10", 0.629)}

assert all(len(v) == len(TABLE_THRESHOLDS) for v in PAPER_TABLE_I.values())
