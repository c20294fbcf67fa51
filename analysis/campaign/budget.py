"""The slot-budget sweep (issue #16): protection methods compared at equal extra slots, not at NVF thresholds.

A threshold means nothing across networks (our LeNet-5's largest NVF is ~9 %, the paper's reaches 20 % for
4 % of its neurons); extra slots are what the hardware pays. For every budget ``f`` (extra slots as a
fraction of the unprotected network's neurons, e.g. 0.05 = 5 % more slots) the sweep builds:

* ``nvf-split``, ``nvf-tmr``: the paper's rule -- neurons in decreasing NVF while their shadow slots fit
  (:class:`resilq.harden.Budget`; split layers without ReLU get TMR, as ``resilq harden --fallback tmr``);
* ``gain-split``, ``gain-tmr``, ``gain-auto``: the neurons (and, for auto, the scheme per layer) with the
  largest summed exact protection gain within the budget (:func:`resilq.harden.harden_by_gain`);
* ``clip+best``: range restriction on top of whichever of the above measured the lowest critical-inference
  rate at that budget (ties: lower accuracy loss, then the order above);

and, at 0 extra slots, ``none`` (unprotected) and ``clip`` (range restriction alone; bounds profiled once
on the unprotected network's training inputs and shared by every clipped point; a layer whose bound is 127,
the int8 maximum, clips nothing and is left unclipped, so where every bound is 127 ``clip`` *is* the
unprotected network and ``clip+best`` the best).

Every point is an ordinary campaign store (``campaigns/<model hash>.db``, resumable); points that build the
same network share one store, and outcomes are shared between stores exactly as in the threshold sweep
(:mod:`.sweep`: the sharing key contains the network hash, which includes the clip, so clipped and unclipped
networks never share). ``budget.json`` lists the points. Re-running the same command resumes; the
``clip+best`` choice is read from the stored results, so it is the same on every run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..arith import INT8_MAX, Scheme
from ..errors import ParameterError
from ..gain import GainResult
from ..ir.model import Model
from ..nvf.result import NVFResult
from .engine import DEFAULT_BACKEND, BackendFactory, BackendKind, EvaluationSet, FaultEvaluator
from .runner import CampaignConfig, CampaignReport, Sharing, run_campaign
from .statistics import CampaignSummary
from .sweep import SHARED, SharedOutcomes, open_manifest, outcome_keys, read_manifest, write_manifest

MANIFEST = "budget.json"
#: Every variant, in the order they are run, tabled and plotted.
VARIANTS = ("none", "clip", "nvf-split", "nvf-tmr", "gain-split", "gain-tmr", "gain-auto", "clip+best")
#: The variants ``clip+best`` chooses from.
PROTECTED = ("nvf-split", "nvf-tmr", "gain-split", "gain-tmr", "gain-auto")
UNBUDGETED = ("none", "clip")


@dataclass(frozen=True)
class BudgetPoint:
    """One point: a variant at a budget (a fraction of the unprotected network's neurons; 0 for none/clip)."""

    variant: str
    fraction: float

    @property
    def label(self) -> str:
        return self.variant if self.variant in UNBUDGETED else f"{self.variant}@{self.fraction:.12g}"


def parse_budgets(text: str) -> list[float]:
    """``0.01,0.02,0.05`` -> sorted distinct fractions in (0, 1] (extra slots / neurons)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"--budgets takes comma-separated fractions of the neurons (e.g. 0.01,0.05), got "
                             f"{text!r}") from None
    if not values:
        raise ParameterError("no budgets given; e.g. --budgets 0.01,0.02,0.05,0.1,0.2")
    for v in values:
        if not 0.0 < v <= 1.0:
            raise ParameterError(f"a budget is a fraction of the neurons in (0, 1] (0.05 = 5 % extra slots), got {v!r}")
    return sorted(set(values))


def parse_variants(text: str) -> list[str]:
    """``none,gain-auto`` -> the variants in :data:`VARIANTS` order; ``clip+best`` needs a protected variant."""
    asked = [v.strip().lower() for v in text.split(",") if v.strip()]
    unknown = [v for v in asked if v not in VARIANTS]
    if unknown or not asked:
        raise ParameterError(f"unknown variant(s) {', '.join(unknown) or repr(text)}; expected a comma list of "
                             f"{', '.join(VARIANTS)}")
    if "clip+best" in asked and not any(v in PROTECTED for v in asked):
        raise ParameterError(f"clip+best needs at least one of {', '.join(PROTECTED)} to choose from")
    return [v for v in VARIANTS if v in asked]


def budget_slots(neurons: int, fraction: float) -> int:
    """Extra slots of a budget for a network of ``neurons``: ``round(fraction * neurons)``, at least 1."""
    return max(1, round(fraction * neurons))


def build(model: Model, variant: str, fraction: float, nvf: NVFResult, gain: GainResult) -> Model:
    """The unclipped network of a point (``clip`` and ``clip+best`` add the clip afterwards)."""
    from ..harden import Budget, HardeningPlan, harden, harden_by_gain

    base = model.unprotected().without_clip()
    if variant in UNBUDGETED:
        return base
    method, label = variant.split("-", 1)
    slots = budget_slots(base.n_neurons, fraction)
    scheme = None if label == "auto" else Scheme.parse(label)
    fallback = Scheme.TMR if scheme is Scheme.SPLIT else None
    if method == "nvf":
        return harden(base, nvf, HardeningPlan(scheme, Budget(slots), fallback=fallback)).model
    return harden_by_gain(base, gain, scheme, slots, fallback=fallback).model


def effective_bounds(bounds: dict[int, int]) -> dict[int, int]:
    """The clip bounds that can change a value: a bound of 127 clips nothing an int8 can hold, so those layers
    are left unclipped (and a network whose every bound is 127 is the unclipped one, sharing its campaign)."""
    return {i: int(b) for i, b in bounds.items() if b < INT8_MAX}


def best_of(reports: dict[str, CampaignSummary]) -> str:
    """The variant with the lowest critical-inference rate (then accuracy loss, then :data:`PROTECTED` order)."""
    order = {v: k for k, v in enumerate(PROTECTED)}
    return min(reports, key=lambda v: (reports[v].critical_rate.value, reports[v].accuracy_loss.value, order[v]))


@dataclass
class BudgetResult:
    points: list[tuple[BudgetPoint, CampaignReport]]
    shared: int


class _Runner:
    """Runs the campaign of a network once (a store per network hash) and remembers its report."""

    def __init__(self, data: EvaluationSet, out: Path, config: CampaignConfig, backend, client, cache):
        self.data, self.out, self.config, self.backend, self.client, self.cache = data, out, config, backend, client, cache
        self.reports: dict[str, CampaignReport] = {}

    def run(self, network: Model, label: str) -> CampaignReport:
        h = network.hash
        if h not in self.reports:
            evaluator = FaultEvaluator(network, self.data, self.backend) if self.client is None else None
            sharing = None
            if self.cache is not None:
                def sharing(sample, golden, network=network):
                    return Sharing(self.cache, outcome_keys(network, golden, self.data, sample))
            self.reports[h] = run_campaign(network, self.data, self.out / "campaigns" / f"{h[:16]}.db", self.config,
                                           backend=self.backend, client=self.client, evaluator=evaluator,
                                           sharing=sharing, description=label)
        return self.reports[h]


def run_budget_sweep(model: Model, nvf: NVFResult, gain: GainResult, data: EvaluationSet, out_dir: str | os.PathLike,
                     fractions: Sequence[float], variants: Sequence[str] = VARIANTS, *, clip_bounds: dict[int, int],
                     clip_variant: str = "bound", config: CampaignConfig = CampaignConfig(),
                     backend: BackendKind | BackendFactory = DEFAULT_BACKEND, client: Any = None,
                     share: bool = True) -> BudgetResult:
    """Run (or resume) every campaign of the budget sweep in ``out_dir``; see the module docstring."""
    from ..harden.clip import with_clip

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nvf.check_model(model)
    gain.check_model(model)
    if model.is_protected or model.has_clip:
        raise ParameterError(f"model {model.name} is already protected or clipped; sweep the plain network")
    if any(v not in VARIANTS for v in variants):
        raise ParameterError(f"unknown variants {list(variants)}; expected some of {', '.join(VARIANTS)}")
    identity = {"network_hash": model.network_hash, "nvf_digest": nvf.digest, "gain_digest": gain.digest,
                "data_digest": data.digest, "fault_model": config.fault_model.label, "seed": int(config.seed),
                "faults": config.faults, "fault_kind": config.kind.kind, "kind_params": config.kind.params,
                "clip_variant": clip_variant, "clip_bounds": {str(i): int(b) for i, b in sorted(clip_bounds.items())}}
    manifest = open_manifest(out, identity, MANIFEST)
    cache = SharedOutcomes(out / SHARED) if share and config.kind.kind == "output" else None
    runner = _Runner(data, out, config, backend, client, cache)
    results: list[tuple[BudgetPoint, CampaignReport]] = []
    known = {p["label"] for p in manifest["points"]}

    active = effective_bounds(clip_bounds)

    def clipped(network: Model) -> Model:
        return with_clip(network, active, clip_variant) if active else network

    def record(point: BudgetPoint, network: Model, report: CampaignReport, **extra: Any) -> None:
        results.append((point, report))
        if point.label in known:
            return
        known.add(point.label)
        slots = 0 if point.variant in UNBUDGETED else budget_slots(model.n_neurons, point.fraction)
        manifest["points"].append({"label": point.label, "variant": point.variant, "fraction": point.fraction,
                                   "budget_slots": slots, "campaign": f"campaigns/{network.hash[:16]}.db",
                                   "model_hash": network.hash, "n_neurons": network.n_neurons,
                                   "n_slots": network.n_slots, "n_protected": network.n_protected,
                                   "schemes": sorted({p.scheme.label for i in network.neuron_layers
                                                      if (p := network.protection(i)) is not None and p.n_protected}),
                                   **extra})
        write_manifest(out, manifest, MANIFEST)

    try:
        todo = [BudgetPoint(v, 0.0) for v in variants if v in UNBUDGETED]
        todo += [BudgetPoint(v, f) for f in fractions for v in variants if v in PROTECTED]
        for n, point in enumerate(todo, start=1):
            network = build(model, point.variant, point.fraction, nvf, gain)
            if point.variant == "clip":
                network = clipped(network)
            record(point, network, runner.run(network, f"[{n}/{len(todo)}] {point.label}"))
        if "clip+best" in variants:
            for f in fractions:
                at = {p.variant: r.summary for p, r in results if p.variant in PROTECTED and p.fraction == f}
                choice = best_of(at)
                network = clipped(build(model, choice, f, nvf, gain))
                point = BudgetPoint("clip+best", f)
                record(point, network, runner.run(network, f"{point.label} (clip + {choice})"), best_of=choice)
        return BudgetResult(results, len(cache) if cache is not None else 0)
    finally:
        if cache is not None:
            cache.close()


def read_budget_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    return read_manifest(out_dir, MANIFEST)


__all__ = ["MANIFEST", "PROTECTED", "VARIANTS", "BudgetPoint", "BudgetResult", "best_of", "effective_bounds", "budget_slots", "build",
           "parse_budgets", "parse_variants", "read_budget_manifest", "run_budget_sweep"]
