"""The budget sweep's table, CSV and figure: accuracy loss and critical-inference rate vs extra slots (%)."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import FormatError
from .budget import UNBUDGETED, VARIANTS, read_budget_manifest
from .runner import load_campaign


@dataclass(frozen=True)
class BudgetRow:
    """One point of a budget sweep, as tabled and written to the CSV (rates as fractions)."""

    label: str
    variant: str
    budget: float  # asked: extra slots / neurons (0 for none and clip)
    budget_slots: int
    extra_slots: int  # used: network size - neurons
    extra_fraction: float  # extra_slots / neurons
    n_protected: int
    network_size: int
    schemes: str
    best_of: str
    faults_done: int
    sample_size: int
    images: int
    fault_free_accuracy: float
    accuracy_loss: float
    accuracy_loss_low: float
    accuracy_loss_high: float
    critical_rate: float
    critical_rate_low: float
    critical_rate_high: float
    campaign: str


def budget_rows(out_dir: str | os.PathLike) -> list[BudgetRow]:
    """Every finished (or partial) point of the budget sweep in ``out_dir``, in variant then budget order."""
    out = Path(out_dir)
    manifest = read_budget_manifest(out)
    reports: dict[str, object] = {}
    rows = []
    for p in manifest["points"]:
        path = out / p["campaign"]
        if not path.is_file():
            continue
        if p["campaign"] not in reports:
            reports[p["campaign"]] = load_campaign(path)
        rep = reports[p["campaign"]]
        if rep.idx.size == 0:
            continue
        s = rep.summary
        extra = p["n_slots"] - p["n_neurons"]
        rows.append(BudgetRow(p["label"], p["variant"], p["fraction"], p["budget_slots"], extra,
                              extra / p["n_neurons"], p["n_protected"], p["n_slots"], "+".join(p["schemes"]),
                              p.get("best_of", ""), s.faults, s.sample_size, s.images, s.fault_free_accuracy.value,
                              s.accuracy_loss.value, s.accuracy_loss.low, s.accuracy_loss.high, s.critical_rate.value,
                              s.critical_rate.low, s.critical_rate.high, p["campaign"]))
    order = {v: k for k, v in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (order.get(r.variant, len(order)), r.budget))
    return rows


def write_budget_csv(rows: list[BudgetRow], path: str | os.PathLike) -> Path:
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(BudgetRow.__dataclass_fields__))
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
    return path


STYLE = {"none": ("unprotected", "tab:red", "s", "--"), "clip": ("clip alone", "tab:gray", "P", ":"),
         "nvf-split": ("split by NVF (paper)", "tab:cyan", "o", "-"),
         "nvf-tmr": ("TMR by NVF", "tab:olive", "^", "-"),
         "gain-split": ("split by gain", "tab:blue", "o", "-"), "gain-tmr": ("TMR by gain", "tab:green", "^", "-"),
         "gain-auto": ("auto by gain", "tab:purple", "D", "-"), "clip+best": ("clip + best", "k", "*", "-")}


def plot_budget(rows: list[BudgetRow], path: str | os.PathLike, title: str = "") -> Path:
    """Two panels against the extra slots actually used (%): accuracy loss and critical inferences, 95 % CIs."""
    from ..figures import PAGE_WIDTH_IN, pyplot, save

    if not rows:
        raise FormatError("the budget sweep has no finished points to plot yet")
    plt = pyplot()
    xmax = max([100 * r.extra_fraction for r in rows] + [1.0])
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4.4), sharex=True)
    panels = (("(a) accuracy loss (%)", "accuracy_loss"), ("(b) critical inferences (%)", "critical_rate"))
    for ax, (ylabel, field) in zip(axes, panels):
        for variant in dict.fromkeys(r.variant for r in rows):
            label, color, marker, line = STYLE.get(variant, (variant, None, "x", "-"))
            pts = sorted((r for r in rows if r.variant == variant), key=lambda r: r.extra_fraction)
            if variant in UNBUDGETED:  # one network at 0 extra slots: a flat line and its band
                r = pts[0]
                ax.plot([0, xmax], [100 * getattr(r, field)] * 2, color=color, linestyle=line, label=label)
                ax.axhspan(100 * getattr(r, field + "_low"), 100 * getattr(r, field + "_high"), color=color,
                           alpha=0.12)
                continue
            x = [100 * r.extra_fraction for r in pts]
            y = [100 * getattr(r, field) for r in pts]
            err = [[100 * (getattr(r, field) - getattr(r, field + "_low")) for r in pts],
                   [100 * (getattr(r, field + "_high") - getattr(r, field)) for r in pts]]
            ax.errorbar(x, y, yerr=err, color=color, marker=marker, linestyle=line, label=label, capsize=3,
                        markersize=5)
        ax.set_xlabel("extra slots (% of the unprotected network's neurons)")
        ax.set_title(ylabel, loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=9)
    fig.suptitle(title or "Protection at equal extra slots (bars, bands: 95 % CIs)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05 + 0.045 * ((len(labels) + 3) // 4), 1, 1))
    return save(fig, path)


def budget_table(rows: list[BudgetRow]) -> tuple[list[str], list[list[str]]]:
    """The printed table: one line per point."""
    cols = ["variant", "budget", "extra slots", "protected", "schemes", "faults", "accuracy",
            "acc. loss [95 % CI]", "critical [95 % CI]"]
    body = [[r.variant + (f" ({r.best_of})" if r.best_of else ""),
             "-" if r.variant in UNBUDGETED else f"{100 * r.budget:g} %",
             f"{r.extra_slots:,} ({100 * r.extra_fraction:.2f} %)", f"{r.n_protected:,}", r.schemes or "-",
             f"{r.faults_done:,}/{r.sample_size:,}", f"{100 * r.fault_free_accuracy:.2f} %",
             f"{100 * r.accuracy_loss:.3f} [{100 * r.accuracy_loss_low:.3f}, {100 * r.accuracy_loss_high:.3f}]",
             f"{100 * r.critical_rate:.3f} [{100 * r.critical_rate_low:.3f}, {100 * r.critical_rate_high:.3f}]"]
            for r in rows]
    return cols, body


__all__ = ["BudgetRow", "budget_rows", "budget_table", "plot_budget", "write_budget_csv"]
