"""Step ``harden``: protect the most vulnerable neurons with each configured scheme; overhead and the
fault-free agreement with the unprotected network."""

from __future__ import annotations

import math

import numpy as np

from ...arith import Scheme
from ...harden import Granularity, HardeningPlan, Threshold, TopK, fault_free_agreement, harden, scheme_comparison
from ...ir import save_model
from ...ui import say
from ..context import Context


def accel_config(ctx: Context):
    from resilq.hls.config import AccelConfig

    return AccelConfig(pe=ctx.config.hls.pe, simd=ctx.config.hls.simd)


def criterion(ctx: Context, n_neurons: int):
    cfg = ctx.config.harden
    if cfg.protect_fraction > 0:
        return TopK(max(1, math.ceil(cfg.protect_fraction * n_neurons)))
    return Threshold(cfg.threshold)


def run(ctx: Context) -> dict:
    from resilq.hls.cycles import cycles_per_inference

    cfg = ctx.config.harden
    model = ctx.model()
    nvf = ctx.nvf(model)
    out = ctx.dir("harden")
    test = ctx.dataset("test")
    chosen = criterion(ctx, model.n_neurons)
    fallback = Scheme.parse(cfg.fallback) if cfg.fallback else None
    variants, selection = [], None
    for label in cfg.schemes:
        scheme = Scheme.parse(label)
        plan = HardeningPlan(scheme, chosen, Granularity(cfg.granularity), fallback if scheme is Scheme.SPLIT else None)
        result = harden(model, nvf, plan)
        selection = result.selection
        path = save_model(result.model, out / f"{scheme.label}.rq")
        agreement = fault_free_agreement(model, result.model, test.images, test.labels)
        variants.append({"scheme": scheme.label, "file": path.name, "protected": result.model.n_protected,
                         "slots": result.model.n_slots, "fallback_layers": [model.layers[i].name for i in result.fallback_layers],
                         "top1_agreement": agreement.top1_agreement, "logits_identical": agreement.logits_identical,
                         "accuracy": agreement.hardened_accuracy, "unprotected_accuracy": agreement.source_accuracy})
        say(f"{scheme.label}: {result.model.n_protected} neurons protected, network size {result.model.n_slots:,}; "
            f"{agreement.describe()}")
    picked = np.concatenate([nvf.values[i][n] for i, n in selection.neurons.items()]) if selection.n_neurons else np.zeros(0)
    costs = scheme_comparison(model, selection, fallback=fallback or Scheme.TMR, cycles=cycles_per_inference(accel_config(ctx)))
    how = (f"the {chosen.k:,} most vulnerable neurons ({100 * cfg.protect_fraction:g} %)" if isinstance(chosen, TopK)
           else f"every neuron with NVF >= {100 * cfg.threshold:g} %")
    return {"criterion": how, "criterion_spec": chosen.describe(), "selected": selection.n_neurons, "neurons": model.n_neurons,
            "equivalent_threshold": float(picked.min()) if picked.size else None,
            "variants": variants,
            "overhead": [{"variant": c.label, "neurons": c.neurons, "protected": c.protected, "shadows": c.shadows,
                          "network_size": c.slots, "macs": c.macs, "cycles": c.cycles} for c in costs]}
