"""Hardening: choose the neurons to protect from their NVF and protect them (SPEC §4).

``select`` (typed criteria: :class:`Threshold`, :class:`TopK`, :class:`Budget`; neuron or channel
granularity) -> ``harden`` (``split`` with the LCU, ``tmr``, ``dup-and``, ``dup-min``; a fallback for layers
split cannot protect) -> overhead accounting and the fault-free agreement with the source network.
numpy only.
"""

from .agreement import Agreement, fault_free_agreement
from .by_gain import harden_by_gain
from .overhead import Cost, CycleModel, cost_of, cost_rows, layer_rows, scheme_comparison
from .selection import Budget, Criterion, GainBudget, Granularity, Selection, Threshold, TopK, channel_scores, select
from .transform import Hardened, HardeningPlan, harden, with_own_weights

__all__ = [
    "Agreement", "Budget", "GainBudget", "harden_by_gain", "Cost", "Criterion", "CycleModel", "Granularity", "Hardened", "HardeningPlan",
    "Selection", "Threshold", "TopK", "channel_scores", "cost_of", "cost_rows", "fault_free_agreement", "harden",
    "layer_rows", "scheme_comparison", "select", "with_own_weights",
]
