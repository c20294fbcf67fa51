"""Chain-of-trust link #1: the Brevitas model and the integer executor, compared bit for bit.

Runs both on the same float images and compares the integers at every layer: the quantized input, each
layer's int8 output (after requantization/ReLU, after pooling, after flattening) and the classifier's
int32 accumulators. Integers are compared with ``==``, never a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..ir.executor import Executor
from ..ir.model import Model
from .export import ExportTrace


@dataclass
class LayerCheck:
    name: str
    elements: int
    mismatches: int


@dataclass
class TrustReport:
    inputs: int
    layers: list[LayerCheck] = field(default_factory=list)
    top1_agreement: float = 0.0

    @property
    def identical(self) -> bool:
        return all(c.mismatches == 0 for c in self.layers) and self.top1_agreement == 1.0

    def rows(self) -> list[tuple]:
        return [(c.name, c.elements, c.mismatches) for c in self.layers]


def _as_int(tensor, scale_exp: np.ndarray | None = None) -> np.ndarray:
    """Integer view of a Brevitas output: ``QuantTensor.int()`` or ``value / 2**exp`` checked integral."""
    if hasattr(tensor, "int") and hasattr(tensor, "scale"):
        return tensor.int().detach().numpy().astype(np.int64)
    values = tensor.detach().double().numpy()
    scaled = values * np.exp2(-scale_exp.astype(np.float64))
    ints = np.rint(scaled)
    if not np.array_equal(ints, scaled):
        raise AssertionError("Brevitas logits are not integral at the accumulator scale")
    return ints.astype(np.int64)


def compare_brevitas(net: nn.Module, model: Model, trace: ExportTrace, images: np.ndarray,
                     batch_size: int = 256) -> TrustReport:
    """Compare every layer of ``net`` (Brevitas) and ``model`` (integer IR) on ``images``."""
    modules = dict(net.named_modules())
    taps = [trace.input_module, *trace.layer_modules]
    names = ["input", *[layer.name for layer in model.layers]]
    last = model.layers[-1]
    exps = model.metadata.get("quant_exponents", {}).get(last.name)
    logit_exp = None
    if last.requant is None:
        if exps is None:
            raise ValueError("the model's metadata lacks the classifier's quant exponents needed to compare logits")
        logit_exp = (exps["input"] + np.asarray(exps["weight"]))[None, :]
    captured: dict[str, object] = {}
    hooks = [modules[t].register_forward_hook(lambda m, i, o, t=t: captured.__setitem__(t, o)) for t in taps]
    report = TrustReport(inputs=len(images))
    counts = np.zeros((len(taps), 2), dtype=np.int64)
    agree = 0
    executor = Executor(model)
    net.eval()
    try:
        for s in range(0, len(images), batch_size):
            batch = images[s:s + batch_size]
            with torch.no_grad():
                net(torch.from_numpy(np.ascontiguousarray(batch)))
            x_int = model.quantize_input(batch)
            ours = [x_int.astype(np.int64), *executor.run(x_int, collect=True).activations]
            for k, tap in enumerate(taps):
                theirs = _as_int(captured[tap], logit_exp if k == len(taps) - 1 else None)
                mine = ours[k].astype(np.int64)
                if theirs.shape != mine.shape:
                    raise AssertionError(f"layer {names[k]}: Brevitas shape {theirs.shape} != executor shape {mine.shape}")
                counts[k] += (mine.size, int((mine != theirs).sum()))
            agree += int((np.argmax(theirs, 1) == np.argmax(ours[-1], 1)).sum())
    finally:
        for h in hooks:
            h.remove()
    report.layers = [LayerCheck(n, int(c[0]), int(c[1])) for n, c in zip(names, counts)]
    report.top1_agreement = agree / max(len(images), 1)
    return report
