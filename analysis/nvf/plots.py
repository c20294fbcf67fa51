"""PNG plots of an NVF result (matplotlib, Agg backend), each drawn for the full page width
(:mod:`resilq.figures`): the distribution per layer, a heat-map per conv layer (one panel per output
channel), and the Table I curve on the paper's grid and on a grid fitted to the measured range.
NVFs are shown in percent, as in every table; :func:`captions` says what each plot shows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..figures import PAGE_WIDTH_IN, pyplot, save
from ..paths import file_component, inside
from .result import TABLE_THRESHOLDS, NVFResult
from .table import fitted_thresholds, layer_info, table_i

#: The reference thresholds drawn on the distributions (the paper's 10 % and 20 %), with their line styles.
REFERENCE_LINES = ((0.1, ":"), (0.2, "--"))
REFERENCE_COLOR = "#cc3311"


def _title(result: NVFResult) -> str:
    name = result.metadata.get("model", "model")
    return f"{name}: {result.method} NVF over {result.inputs:,} inputs"


def _peak(result: NVFResult) -> float:
    v = result.all_values()
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def _count_axis(ax, top: float) -> None:
    """A log axis of neuron counts that always shows at least two labelled decades, as plain integers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.set_ylim(0.8, max(10.0, 10 ** np.ceil(np.log10(max(top, 1.0) * 1.2))))
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_distributions(result: NVFResult, path: Path) -> Path:
    """One histogram per layer on a shared NVF axis fitted to the data; the 10 % / 20 % lines where they fall."""
    plt = pyplot()
    infos = layer_info(result)
    cols = min(len(infos), 4)
    rows = int(np.ceil(len(infos) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH_IN, 2.9 * rows + 0.6), squeeze=False)
    xmax = 100 * max(0.01, _peak(result) * 1.08)
    bins = np.linspace(0, xmax, 31)
    drawn = [(100 * t, s) for t, s in REFERENCE_LINES if 100 * t <= xmax]
    for ax, info in zip(axes.ravel(), infos):
        v = result.values[info.index]
        v = 100 * v[np.isfinite(v)]
        counts, _, _ = ax.hist(v, bins=bins, color="#4477aa", label="neurons per bin")
        _count_axis(ax, float(counts.max()) if counts.size else 1.0)
        for t, style in drawn:
            ax.axvline(t, color=REFERENCE_COLOR, linestyle=style, linewidth=1.2, label=f"NVF = {t:g} %")
        ax.set_xlim(0, xmax)
        ax.set_title(f"{info.name}: {v.size:,} neurons, max {v.max() if v.size else 0:.2f} %", fontsize=9)
        ax.set_xlabel("NVF (%)")
    for ax in axes.ravel()[len(infos):]:
        ax.axis("off")
    for r in range(rows):
        axes[r][0].set_ylabel("neurons")
    handles, labels = axes[0][0].get_legend_handles_labels()
    beyond = [f"{100 * t:g} %" for t, _ in REFERENCE_LINES if 100 * t > xmax]
    if beyond:  # say so rather than stretch the axis to lines no neuron reaches
        handles.append(plt.Line2D([], [], color=REFERENCE_COLOR, linestyle="none"))
        labels.append(f"NVF = {' and '.join(beyond)}: beyond every neuron (not drawn)")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(_title(result), fontsize=11)
    fig.tight_layout(rect=(0, 0.07 if rows == 1 else 0.04, 1, 1))
    return save(fig, path)


def plot_heatmap(result: NVFResult, info, path: Path) -> Path:
    """One panel per output channel: the NVF (%) of each spatial position, one colour scale for the layer."""
    plt = pyplot()
    c, h, w = info.shape
    v = 100 * result.values[info.index].reshape(c, h, w)
    cols = min(c, 8)
    rows = int(np.ceil(c / cols))
    panel = min(1.6, (PAGE_WIDTH_IN - 1.2) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH_IN, (panel + 0.3) * rows + 0.6), squeeze=False,
                             layout="constrained")
    vmax = float(np.nanmax(v)) if np.isfinite(v).any() else 1.0
    image = None
    for k, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if k < c:
            image = ax.imshow(v[k], cmap="viridis", vmin=0, vmax=max(vmax, 1e-9))
            peak = float(np.nanmax(v[k])) if np.isfinite(v[k]).any() else float("nan")
            ax.set_title(f"ch {k}: max {peak:.2f} %", fontsize=9)
        else:
            ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, label="NVF (%)", fraction=0.03, pad=0.01)
    fig.suptitle(f"{info.name}: NVF per output channel and position ({c} channels of {h}×{w})", fontsize=11)
    return save(fig, path)


def plot_table(result: NVFResult, path: Path, paper: tuple[int, ...] | None = None) -> Path:
    """Table I as curves: (a) the paper's 0-50 % grid, ours beside the paper's; (b) a grid fitted to our range."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.8))
    rows = table_i(result, TABLE_THRESHOLDS)
    left.plot([100 * t for t, _, _ in rows], [100 * p for _, _, p in rows], "o-", label=f"ours ({result.method})")
    if paper is not None:
        left.plot([100 * t for t, _, _ in rows], [100 * n / paper[0] for n in paper], "s--", color="tab:gray",
                  label="paper")
    left.set_title("(a) the paper's grid", loc="left", fontsize=10)
    fitted = [(t, c) for t, c, _ in table_i(result, fitted_thresholds(result)) if c > 0]  # log axis: 0 not drawn
    right.plot([100 * t for t, _ in fitted], [c for _, c in fitted], "o-", label=f"ours ({result.method})")
    _count_axis(right, max((c for _, c in fitted), default=1.0))
    right.set_title("(b) a grid fitted to the measured range (log scale)", loc="left", fontsize=10)
    right.set_ylabel("critical neurons")
    left.set_ylabel("critical neurons (% of all)")
    left.set_ylim(-2, 102)
    for ax in (left, right):
        ax.set_xlabel("NVF threshold (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(_title(result) + ": share of neurons with NVF ≥ threshold", fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def captions(result: NVFResult, files: list[Path]) -> list[str]:
    """What each plot of :func:`save_plots` shows and what to look at, in the order of ``files``."""
    peak = 100 * _peak(result)
    beyond = [f"{100 * t:g} %" for t, _ in REFERENCE_LINES if 100 * t > peak * 1.08]
    out = []
    for path in files:
        name = Path(path).stem
        if name == "nvf_distribution":
            text = (f"How many neurons of each layer have each NVF (log scale): most neurons sit near 0 %, and "
                    f"the few to the right are the ones worth protecting (largest NVF {peak:.2f} %).")
            if beyond:
                text += f" The paper's {' and '.join(beyond)} thresholds lie beyond every neuron."
        elif name == "nvf_table1":
            text = ("Table I as curves: the share of neurons whose NVF reaches each threshold, (a) on the paper's "
                    "5 % grid beside the paper's network (where given), (b) as neuron counts on a grid fitted to our "
                    "measured range, where our curve is visible.")
        elif name.startswith("nvf_heatmap_"):
            layer = name[len("nvf_heatmap_"):]
            text = (f"{layer}: the NVF of every neuron, one panel per output channel (rows and columns are the "
                    "feature map's positions); bright spots are the vulnerable neurons, and channels that stay "
                    "dark need no protection.")
        else:
            text = name.replace("_", " ")
        out.append(text)
    return out


def save_plots(result: NVFResult, directory: str | os.PathLike, paper: tuple[int, ...] | None = None) -> list[Path]:
    """Write every plot of ``result`` into ``directory``; returns the files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = [plot_distributions(result, directory / "nvf_distribution.png"),
             plot_table(result, directory / "nvf_table1.png", paper)]
    for info in layer_info(result):
        if len(info.shape) == 3:
            name = f"nvf_heatmap_{file_component(info.name)}.png"  # the layer name comes from the file
            files.append(plot_heatmap(result, info, inside(directory, directory / name)))
    return files
