"""Step ``harden``: protect neurons with each configured scheme -- by default the neurons with the largest
exact protection gain within a slot budget (SPEC §8), or by the paper's NVF rule -- with the overhead and
the fault-free agreement with the unprotected network."""

from __future__ import annotations

import math

import numpy as np

from ...arith import Scheme
from ...harden import (
    Granularity,
    HardeningPlan,
    Threshold,
    TopK,
    cost_of,
    fault_free_agreement,
    harden,
    harden_by_gain,
    scheme_comparison,
)
from ...ir import save_model
from ...ui import say
from ..context import Context

AUTO = "auto"


def accel_config(ctx: Context):
    from resilq.hls.config import AccelConfig

    return AccelConfig(pe=ctx.config.hls.pe, simd=ctx.config.hls.simd)


def criterion(ctx: Context, n_neurons: int):
    cfg = ctx.config.harden
    if cfg.protect_fraction > 0:
        return TopK(max(1, math.ceil(cfg.protect_fraction * n_neurons)))
    return Threshold(cfg.threshold)


def budget_slots(ctx: Context, n_neurons: int) -> int:
    """``harden.budget`` in extra slots (as ``resilq sweep-budget`` counts them)."""
    from ...campaign.budget import budget_slots as slots

    return slots(n_neurons, ctx.config.harden.budget)


def gain_analysis(ctx: Context, model):
    """The exact protection gain of every neuron over the NVF's inputs (saved as ``harden/model.gain``)."""
    from ...gain import exact_gain, save_gain

    cfg = ctx.config.analysis
    data = ctx.dataset(cfg.split).take(cfg.inputs)
    gain = exact_gain(model, model.quantize_input(data.images), jobs=cfg.jobs,
                      metadata={"dataset": ctx.summary("train")["dataset"], "split": cfg.split})
    save_gain(gain, ctx.dir("harden") / "model.gain")
    return gain


def _protect(ctx: Context, model, nvf, gain, label: str, fallback):
    """The hardened network of one configured scheme (``auto``: per layer by gain)."""
    cfg = ctx.config.harden
    scheme = None if label == AUTO else Scheme.parse(label)
    if cfg.select == "gain":
        return harden_by_gain(model, gain, scheme, budget_slots(ctx, model.n_neurons),
                              fallback=fallback if scheme is Scheme.SPLIT else None)
    plan = HardeningPlan(scheme, criterion(ctx, model.n_neurons), Granularity(cfg.granularity),
                         fallback if scheme is Scheme.SPLIT else None)
    return harden(model, nvf, plan)


def run(ctx: Context) -> dict:
    from resilq.hls.cycles import cycles_per_inference

    cfg = ctx.config.harden
    model = ctx.model()
    nvf = ctx.nvf(model)
    out = ctx.dir("harden")
    test = ctx.dataset("test")
    gain = gain_analysis(ctx, model) if cfg.select == "gain" else None
    fallback = Scheme.parse(cfg.fallback) if cfg.fallback else None
    variants, selection, models = [], None, []
    for label in cfg.schemes:
        result = _protect(ctx, model, nvf, gain, label, fallback)
        selection = selection or result.selection
        path = save_model(result.model, out / f"{label}.rq")
        agreement = fault_free_agreement(model, result.model, test.images, test.labels)
        models.append((label, result.model))
        variants.append({"scheme": label, "file": path.name, "protected": result.model.n_protected,
                         "slots": result.model.n_slots, "extra_slots": result.model.n_shadows,
                         "layer_schemes": {model.layers[i].name: s.label for i, s in result.schemes.items()},
                         "fallback_layers": [model.layers[i].name for i in result.fallback_layers],
                         "top1_agreement": agreement.top1_agreement, "logits_identical": agreement.logits_identical,
                         "accuracy": agreement.hardened_accuracy, "unprotected_accuracy": agreement.source_accuracy})
        say(f"{label}: {result.model.n_protected} neurons protected, network size {result.model.n_slots:,}; "
            f"{agreement.describe()}")
    cycles = cycles_per_inference(accel_config(ctx))
    if cfg.select == "gain":  # each scheme has its own selection: the overhead of each variant as built
        slots = budget_slots(ctx, model.n_neurons)
        costs = [cost_of(model, "unprotected", cycles)] + [cost_of(m, label, cycles) for label, m in models]
        how = (f"the neurons with the largest exact protection gain within {slots:,} extra slots "
               f"({100 * cfg.budget:g} % of the neurons), per scheme")
        chosen = {"kind": "gain-budget", "slots": slots, "fraction": cfg.budget}
        selected, threshold = max(v["protected"] for v in variants), None
    else:
        chosen_criterion = criterion(ctx, model.n_neurons)
        picked = (np.concatenate([nvf.values[i][n] for i, n in selection.neurons.items()]) if selection.n_neurons
                  else np.zeros(0))
        costs = scheme_comparison(model, selection, fallback=fallback or Scheme.TMR, cycles=cycles)
        how = (f"the {chosen_criterion.k:,} most vulnerable neurons ({100 * cfg.protect_fraction:g} %)"
               if isinstance(chosen_criterion, TopK) else f"every neuron with NVF ≥ {100 * cfg.threshold:g} %")
        chosen = chosen_criterion.describe()
        selected, threshold = selection.n_neurons, float(picked.min()) if picked.size else None
    return {"criterion": how, "criterion_spec": chosen, "select": cfg.select, "selected": selected,
            "neurons": model.n_neurons, "equivalent_threshold": threshold, "gain_file": "model.gain" if gain else None,
            "variants": variants,
            "overhead": [{"variant": c.label, "neurons": c.neurons, "protected": c.protected, "shadows": c.shadows,
                          "network_size": c.slots, "macs": c.macs, "cycles": c.cycles} for c in costs]}
