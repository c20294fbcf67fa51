"""Does the default protection pay? Campaigns of the harden step's variants against the unprotected network.

Issue #16 asks the report to say plainly whether the pipeline's default protection lowers *both* the accuracy
loss and the critical-inference rate below the unprotected network's with non-overlapping 95 % intervals.
:func:`protection_campaigns` runs one campaign per variant of step ``harden`` with the sweep's fault settings
(the same faults where the populations agree, outcomes shared with the sweep's cache, stored beside it in
``campaign/default/``) and :func:`verdict` turns their intervals into that sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..campaign.statistics import CampaignSummary, Interval


def _interval(i: Interval) -> dict[str, float]:
    return {"value": i.value, "low": i.low, "high": i.high}


def _row(label: str, s: CampaignSummary, protected: int, slots: int) -> dict[str, Any]:
    return {"variant": label, "protected": protected, "network_size": slots, "faults": s.faults, "images": s.images,
            "accuracy_loss": _interval(s.accuracy_loss), "critical_rate": _interval(s.critical_rate)}


def protection_campaigns(ctx, model, data, config, sweep_dir: Path) -> list[dict[str, Any]]:
    """The unprotected network's campaign (the sweep's) and one campaign per variant of step ``harden``."""
    from ..campaign import FaultEvaluator, run_campaign
    from ..campaign.runner import Sharing
    from ..campaign.sweep import SHARED, SharedOutcomes, outcome_keys
    from ..ir import load_model

    out = ctx.dir("campaign") / "default"
    cache = SharedOutcomes(sweep_dir / SHARED) if config.kind.kind == "output" else None
    rows = []
    try:
        for label, network in [("unprotected", model)] + [
                (v["scheme"], load_model(ctx.file("harden", v["file"]))) for v in ctx.summary("harden")["variants"]]:
            sharing = None
            if cache is not None:
                def sharing(sample, golden, network=network):
                    return Sharing(cache, outcome_keys(network, golden, data, sample))
            report = run_campaign(network, data, out / f"{network.hash[:16]}.db", config,
                                  evaluator=FaultEvaluator(network, data), sharing=sharing,
                                  description=f"default protection: {label}")
            rows.append(_row(label, report.summary, network.n_protected, network.n_slots))
    finally:
        if cache is not None:
            cache.close()
    return rows


def _below(a: dict[str, float], b: dict[str, float]) -> bool:
    """``a``'s 95 % interval lies entirely below ``b``'s."""
    return a["high"] < b["low"]


def _pct(i: dict[str, float]) -> str:
    return f"{100 * i['value']:.3f} % [{100 * i['low']:.3f}, {100 * i['high']:.3f}]"


def verdict(rows: list[dict[str, Any]], how: str) -> dict[str, Any]:
    """``{"pays": bool, "lines": [...]}``: one sentence per variant, measured numbers filled in."""
    base, lines, pays = rows[0], [], False
    for r in rows[1:]:
        loss, crit = _below(r["accuracy_loss"], base["accuracy_loss"]), _below(r["critical_rate"], base["critical_rate"])
        numbers = (f"accuracy loss {_pct(r['accuracy_loss'])} vs {_pct(base['accuracy_loss'])}, critical inferences "
                   f"{_pct(r['critical_rate'])} vs {_pct(base['critical_rate'])}")
        if loss and crit:
            pays = True
            lines.append(f"{r['variant']}: YES, lowers both the accuracy loss and the critical-inference rate below "
                         f"the unprotected network's with non-overlapping 95 % intervals ({numbers}).")
        else:
            missing = " and ".join(name for name, ok in (("the accuracy loss", loss), ("the critical-inference rate",
                                                                                         crit)) if not ok)
            lines.append(f"{r['variant']}: NO, it does not lower {missing} below the unprotected network's with "
                         f"non-overlapping 95 % intervals ({numbers}).")
    head = (f"Default protection ({how}), {base['faults']:,} faults x {base['images']:,} images per campaign: "
            + ("at least one variant pays." if pays else "no variant pays with non-overlapping intervals."))
    return {"pays": pays, "headline": head, "lines": lines, "rows": rows}


__all__ = ["protection_campaigns", "verdict"]
