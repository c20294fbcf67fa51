"""Exact, incremental fault simulation on the integer IR (numpy only).

``FaultSimulator(model, x)`` answers "what is the top-1 of every input when this ONE fault is present" for
many faults, bit-identical to :class:`resilq.ir.Executor` but recomputing only what each fault can reach.
The value-level core (:class:`Propagator`) answers "top-1 of input x when neuron n outputs v", vectorised
over many (x, n, v); the NVF analysis and the fault-injection campaigns are built on it.
"""

from .golden import Golden
from .outmap import OutputMap
from .propagate import Propagator, Stats
from .simulator import FaultSimulator

__all__ = ["FaultSimulator", "Golden", "OutputMap", "Propagator", "Stats"]
