"""Training side of resilq: the Brevitas model zoo, quantization-aware training, export to the IR, and
the Brevitas <-> executor chain-of-trust check. Imports torch and Brevitas (host only)."""

from .export import ExportTrace, export_brevitas
from .qat import TrainConfig, TrainHistory, float_accuracy, train
from .trust import TrustReport, compare_brevitas
from .zoo import ZOO, build

__all__ = ["ExportTrace", "TrainConfig", "TrainHistory", "TrustReport", "ZOO", "build", "compare_brevitas",
           "export_brevitas", "float_accuracy", "train"]
