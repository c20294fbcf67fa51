"""Step ``analyze``: the NVF of every neuron, Table I, and the per-layer plots."""

from __future__ import annotations

import time

from ...nvf import save_nvf
from ...nvf.table import fitted_thresholds, layer_info, paper_column, table_i, write_csv
from ...ui import say
from ..context import Context

PAPER_MODELS = ("lenet5", "mlp7", "alexnet")


def run(ctx: Context) -> dict:
    from ...nvf.deltarange import deltarange_nvf
    from ...nvf.exact import exact_nvf
    from ...nvf.plots import captions, save_plots

    cfg = ctx.config.analysis
    model = ctx.model()
    out = ctx.dir("analyze")
    dataset = ctx.summary("train")["dataset"]
    data = ctx.dataset(cfg.split).take(cfg.inputs)
    analysis = exact_nvf if cfg.method == "exact" else deltarange_nvf
    start = time.perf_counter()
    result = analysis(model, model.quantize_input(data.images), jobs=cfg.jobs,
                      metadata={"dataset": dataset, "split": cfg.split})
    seconds = time.perf_counter() - start
    path = save_nvf(result, out / "model.nvf")
    arch = ctx.config.model.arch if not ctx.config.model.path else model.name
    paper = arch if arch in PAPER_MODELS else None
    write_csv(out / "table1.csv", result, paper=paper)
    plots = save_plots(result, out / "plots", paper_column(paper))
    ref = paper_column(paper)
    rows = [{"threshold": t, "critical": int(c), "portion": p,
             **({"paper_critical": ref[k], "paper_portion": ref[k] / ref[0]} if ref else {})}
            for k, (t, c, p) in enumerate(table_i(result))]
    fitted = [{"threshold": t, "critical": int(c), "portion": p}
              for t, c, p in table_i(result, fitted_thresholds(result))]
    layers = [{"name": info.name, "neurons": int(result.values[info.index].size),
               "mean": float(result.values[info.index].mean()), "max": float(result.values[info.index].max())}
              for info in layer_info(result)]
    say(f"{cfg.method} NVF of {model.n_neurons:,} neurons over {len(data)} {dataset}/{cfg.split} inputs in "
        f"{seconds:.1f} s; max NVF {max(layer['max'] for layer in layers):.2%}")
    return {"nvf_file": path.name, "method": cfg.method, "inputs": len(data), "split": cfg.split, "seconds": seconds,
            "table1": rows, "table1_fitted": fitted, "paper": paper, "layers": layers,
            "plots": [ctx.relative(p) for p in plots], "plot_captions": captions(result, plots),
            "bit_critical": result.metadata.get("bit_critical")}
