"""The pipeline's named steps, in data-flow order. Each module has ``run(ctx) -> dict`` (its summary)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import analyze, campaign, deploy, harden, hls, report, train


@dataclass(frozen=True)
class Step:
    name: str
    module: ModuleType
    description: str


STEPS: tuple[Step, ...] = (
    Step("train", train, "Brevitas QAT (or a given .rq), export to the integer IR, Brevitas ⇄ IR check"),
    Step("analyze", analyze, "NVF of every neuron, Table I, per-layer plots"),
    Step("harden", harden, "protect the neurons with the largest exact gain within a slot budget (or by NVF) with "
                           "each scheme; overhead, fault-free agreement"),
    Step("campaign", campaign, "Fig. 4 sweep of fault-injection campaigns, the default variants' campaigns and "
                               "verdict; engine ⇄ executor check"),
    Step("hls", hls, "accelerator resources vs the board, cycles, HLS project; C-sim ⇄ executor check"),
    Step("deploy", deploy, "deployment packages run through the driver on the emulator; device campaign check"),
    Step("report", report, "self-contained HTML report, JSON and CSV"),
)
NAMES = tuple(s.name for s in STEPS)
