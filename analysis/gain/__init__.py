"""Protection gain (SPEC §8): for every neuron and scheme, the exact number of misclassifying single-bit-flip
events that protecting that neuron alone removes, with per-bit, per-direction detail, on disk as ``.gain``.

``exact_gain(model, x)`` -> :class:`GainResult` (``gain``, ``cost``, ``net``, ``changed`` per scheme) ->
``save_gain`` / ``load_gain``. numpy only; built on the fault-propagation core.
"""

from .analysis import exact_gain
from .layout import BITS, BLOCKS, DIRECTIONS, ROWS
from .result import GainResult, load_gain, save_gain

__all__ = ["BITS", "BLOCKS", "DIRECTIONS", "GainResult", "ROWS", "exact_gain", "load_gain", "save_gain"]
