"""PNG plots of an NVF result (matplotlib, Agg backend): the distribution per layer, a heat-map per conv
layer (one panel per output channel), and the Table I curve."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..paths import file_component, inside
from .result import NVFResult
from .table import layer_info, table_i


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(result: NVFResult) -> str:
    name = result.metadata.get("model", "model")
    return f"{name}: {result.method} NVF over {result.inputs:,} inputs"


def plot_distributions(result: NVFResult, path: Path) -> Path:
    plt = _pyplot()
    infos = layer_info(result)
    fig, axes = plt.subplots(1, len(infos), figsize=(3.2 * len(infos), 3.0), squeeze=False)
    bins = np.linspace(0, max(0.05, float(np.nanmax(result.all_values()) if result.n_neurons else 0)), 41)
    for ax, info in zip(axes[0], infos):
        v = result.values[info.index]
        v = v[np.isfinite(v)]
        ax.hist(v, bins=bins, color="#4477aa")
        ax.set_yscale("log")
        for t, style in ((0.1, ":"), (0.2, "--")):
            ax.axvline(t, color="#cc3311", linestyle=style, linewidth=1)
        ax.set_title(f"{info.name} ({v.size:,})", fontsize=9)
        ax.set_xlabel("NVF")
    axes[0][0].set_ylabel("neurons")
    fig.suptitle(_title(result), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_heatmap(result: NVFResult, info, path: Path) -> Path:
    """One panel per output channel: the NVF of each spatial position."""
    plt = _pyplot()
    c, h, w = info.shape
    v = result.values[info.index].reshape(c, h, w)
    cols = min(c, 8)
    rows = int(np.ceil(c / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 0.8, 1.6 * rows + 0.6), squeeze=False)
    vmax = float(np.nanmax(v)) if np.isfinite(v).any() else 1.0
    image = None
    for k, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if k < c:
            image = ax.imshow(v[k], cmap="viridis", vmin=0, vmax=max(vmax, 1e-9))
            ax.set_title(f"ch {k}", fontsize=7)
        else:
            ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="NVF")
    fig.suptitle(f"{info.name}: NVF per channel and position", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_table(result: NVFResult, path: Path, paper: tuple[int, ...] | None = None) -> Path:
    plt = _pyplot()
    rows = table_i(result)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot([100 * t for t, _, _ in rows], [100 * p for _, _, p in rows], "o-", label=result.method)
    if paper is not None:
        ax.plot([100 * t for t, _, _ in rows], [100 * n / paper[0] for n in paper], "s--", label="paper")
    ax.set_xlabel("NVF threshold (%)")
    ax.set_ylabel("critical neurons (%)")
    ax.set_title(_title(result), fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
