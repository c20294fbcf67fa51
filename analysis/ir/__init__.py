"""resilq's integer IR: the one representation that training exports and every later stage consumes.

numpy only: this package runs in the PYNQ board's own Python next to the driver.
"""

from .executor import Executor, RunResult, predict, run, top1
from .io import load_model, save_model
from .layers import Clip, Conv2d, Flatten, Linear, MaxPool2d, Protection, Requant
from .model import InputQuant, Model

__all__ = [
    "Clip", "Conv2d", "Executor", "Flatten", "InputQuant", "Linear", "MaxPool2d", "Model", "Protection", "Requant",
    "RunResult", "load_model", "predict", "run", "save_model", "top1",
]
