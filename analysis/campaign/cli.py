"""``resilq campaign | sweep | sweep-budget | plot | report``: fault-injection campaigns from the command line."""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

from ..cli.options import add_dataset_args, non_negative_int, positive_int
from ..data import load_dataset
from ..errors import ParameterError
from ..faultsim.allocator import tune_for_arrays
from ..faultsim.backend import DEVICES, array_backend
from ..faultsim.simulator import SimulatorFactory
from ..ir import load_model
from ..nvf import load_nvf
from ..ui import say, table
from .kind_options import add_kind_args, kind_spec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("campaign", help="statistical fault-injection campaign on a .rq model (resumable)",
                       description="Inject sampled faults (Leveugle's sample size by default) into every slot of the "
                                   "model, shadows included, one fault at a time over the whole evaluation set. "
                                   "Results go to an SQLite file as they complete; re-running the same command "
                                   "resumes an interrupted campaign.")
    p.add_argument("model", help="a .rq file, or a deployment package folder (resilq package) with --target")
    _add_campaign_args(p)
    p.add_argument("--target", default=None, choices=("board", "emulator", "csim"),
                   help="inject the same faults by register pokes on a package's device (resilq.deploy.campaign); "
                        "the dataset defaults to the package's bundled images")
    p.add_argument("--out", type=Path, required=True, help="campaign database (SQLite), e.g. runs/x.db")
    p.set_defaults(func=run_campaign_cmd)

    p = sub.add_parser("sweep", help="campaigns over NVF thresholds and schemes (the paper's Fig. 4)")
    p.add_argument("model", help="the unprotected .rq model")
    p.add_argument("--nvf", required=True, help=".nvf file of the model (resilq analyze)")
    p.add_argument("--schemes", default="none,split,tmr", help="comma list of none, split, tmr, dup-and, dup-min")
    p.add_argument("--thresholds", default="0:0.5:0.05", help="START:STOP:STEP (stop included) or a comma list")
    _add_campaign_args(p)
    p.add_argument("--no-share", action="store_true", help="do not share results between points (slower; a check)")
    p.add_argument("--out", type=Path, required=True, help="sweep directory, e.g. runs/sweep")
    p.set_defaults(func=run_sweep_cmd)

    from .budget_cli import register as register_budget

    register_budget(sub, _add_campaign_args)

    p = sub.add_parser("plot", help="Fig. 4 (PNG) and a CSV of every point of a sweep directory")
    p.add_argument("sweep", type=Path, help="sweep directory (resilq sweep --out)")
    p.add_argument("--paper", default=None, metavar="NET",
                   help="mark the paper's numbers at NVF >= 20 %% (lenet5, mlp7 or alexnet)")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: SWEEP/fig4.png; CSV beside it)")
    p.add_argument("--title", default=None,
                   help="figure title (default: the sweep's title, else \"Fault injection vs NVF threshold\")")
    p.set_defaults(func=run_plot_cmd)

    p = sub.add_parser("report", help="print the results of a campaign database or a sweep directory")
    p.add_argument("path", type=Path, help="a campaign .db file or a sweep directory")
    p.set_defaults(func=run_report_cmd)


def add_fault_model_arg(p: argparse.ArgumentParser) -> None:
    """``--fault-model`` (``--model`` still accepted, hidden: ``train --model`` names an architecture)."""
    p.add_argument("--fault-model", dest="fault_model", default="single-bit", metavar="FAULT_MODEL",
                   help="single-bit (default), multi-bit:K, stuck-at-0 or stuck-at-1")
    p.add_argument("--model", dest="fault_model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _add_campaign_args(p: argparse.ArgumentParser) -> None:
    add_dataset_args(p, default=None)
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="split the faults are evaluated on (default: test)")
    p.add_argument("--images", type=positive_int, default=None, help="evaluate on the first N images (default: all)")
    p.add_argument("--offset", type=non_negative_int, default=0, help="skip the first N images")
    p.add_argument("--faults", type=positive_int, default=None,
                   help="number of faults (default: Leveugle's sample size, e = 1 %%, 95 %% confidence)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    add_fault_model_arg(p)
    add_kind_args(p)
    p.add_argument("--scheduler", default=None, metavar="local|tcp://HOST:PORT|slurm",
                   help="shard faults over a Dask cluster (default: this process)")
    p.add_argument("--workers", type=positive_int, default=2,
                   help="Dask workers for --scheduler local (processes) or slurm (jobs); default 2")
    p.add_argument("--chunk", type=positive_int, default=None,
                   help="faults per task and per committed transaction (default: 64, more when the golden tensors "
                        "of the images exceed the fault simulator's cache)")
    p.add_argument("--backend", default=None, help="fault-propagation core (default: the fastest available)")
    p.add_argument("--device", default=None, choices=DEVICES,
                   help="faultsim backend: its products on torch tensors on this device (exact; default numpy)")


def _setup(args: argparse.Namespace, model):
    from .engine import DEFAULT_BACKEND, BackendKind, EvaluationSet
    from .runner import CampaignConfig
    from .sampling import FaultModel

    dataset = args.dataset or model.metadata.get("dataset")
    if not dataset:
        raise ParameterError(f"{args.model}: the model does not record its dataset; pass --dataset")
    data = EvaluationSet.from_dataset(model, load_dataset(dataset, args.split, args.data_dir), args.images,
                                      args.offset)
    try:
        backend = DEFAULT_BACKEND if args.backend is None else BackendKind.parse(args.backend)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    if args.device is not None:
        if backend is not BackendKind.FAULTSIM:
            raise ParameterError(f"--device runs the faultsim backend on torch tensors; not with --backend {args.backend}")
        array_backend(args.device)  # refuse a missing torch or CUDA before any work
        backend = SimulatorFactory(device=args.device)
    config = CampaignConfig(FaultModel.parse(args.fault_model), args.faults, args.seed, args.chunk, kind_spec(args))
    return data, backend, config


def _client(args: argparse.Namespace):
    if args.scheduler is None:
        return nullcontext(None)
    from .distributed import dask_client

    return dask_client(args.scheduler, args.workers)


def run_campaign_cmd(args: argparse.Namespace) -> int:
    from .runner import run_campaign

    tune_for_arrays()  # this process is ours: large numpy temporaries (resilq.faultsim.allocator)
    if args.target is not None or Path(args.model).is_dir():
        from ..deploy.cli import host_package_campaign

        return host_package_campaign(args, print_report)
    model = load_model(args.model)
    data, backend, config = _setup(args, model)
    say(f"campaign: {model.name} ({model.n_neurons:,} neurons, {model.n_slots:,} slots) on {data.describe()}, "
        f"{config.kind.kind} faults, {config.fault_model.label}, seed {config.seed} -> {args.out}")
    start = time.perf_counter()
    with _client(args) as client:
        report = run_campaign(model, data, args.out, config, backend=backend, client=client,
                              description="faults simulated by the campaign engine")  # the header names the campaign
    print_report(report, time.perf_counter() - start)
    return 0


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from .sweep import parse_schemes, parse_thresholds, run_sweep

    tune_for_arrays()
    model = load_model(args.model)
    nvf = load_nvf(args.nvf, model)
    schemes, thresholds = parse_schemes(args.schemes), parse_thresholds(args.thresholds)
    data, backend, config = _setup(args, model)
    say(f"sweep: {model.name} on {data.describe()}, schemes {', '.join(s.label if s else 'none' for s in schemes)}, "
        f"thresholds {', '.join(f'{t:g}' for t in thresholds)}, {config.fault_model.label}, seed {config.seed} "
        f"-> {args.out}")
    start = time.perf_counter()
    with _client(args) as client:
        result = run_sweep(model, nvf, data, args.out, schemes, thresholds, config, backend=backend, client=client,
                           share=not args.no_share)
    print_sweep(args.out)
    say(f"{len(result.points)} points in {time.perf_counter() - start:.1f} s; {result.shared:,} shared outcomes; "
        f"plot with: resilq plot {args.out}")
    return 0


def run_plot_cmd(args: argparse.Namespace) -> int:
    from .plots import comparison_rows, paper_point, plot_fig4, sweep_rows, write_csv
    from .sweep import read_manifest

    rows = sweep_rows(args.sweep)
    png = args.out or args.sweep / "fig4.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    paper = paper_point(args.paper)
    title = args.title or read_manifest(args.sweep).get("title", "")
    plot_fig4(rows, png, title=title, paper=paper)
    csv_path = write_csv(rows, png.with_suffix(".csv"))
    print_sweep(args.sweep, rows)
    if paper is not None:
        table(f"ours vs the paper at NVF >= 20 % ({paper.name})", ["metric", "ours", "paper"],
              comparison_rows(rows, paper))
    say(f"wrote {png} and {csv_path}")
    return 0


def run_report_cmd(args: argparse.Namespace) -> int:
    from .runner import load_campaign

    if args.path.is_dir():
        print_sweep(args.path)
    else:
        print_report(load_campaign(args.path))
    return 0


# ---------------------------------------------------------------------------------------------- printing
def print_report(report, seconds: float | None = None) -> None:
    from .runner import campaign_identity
    from .statistics import BREAKDOWN_COLUMNS, breakdown_rows

    s = report.summary
    meta = report.meta
    status = "complete" if s.complete else f"PARTIAL: {s.faults:,} of {s.sample_size:,} faults (re-run to resume)"
    rows = [
        ["fault-free accuracy", f"{100 * s.fault_free_accuracy.value:.2f} %",
         f"[{100 * s.fault_free_accuracy.low:.2f}, {100 * s.fault_free_accuracy.high:.2f}]", "Wilson, images"],
        ["accuracy under fault (mean)", f"{100 * s.accuracy_under_fault.value:.3f} %",
         f"[{100 * s.accuracy_under_fault.low:.3f}, {100 * s.accuracy_under_fault.high:.3f}]", "t + FPC, faults"],
        ["accuracy loss", f"{100 * s.accuracy_loss.value:.3f} %",
         f"[{100 * s.accuracy_loss.low:.3f}, {100 * s.accuracy_loss.high:.3f}]", "t + FPC, faults"],
        ["critical-fault rate (inferences)", f"{100 * s.critical_rate.value:.3f} %",
         f"[{100 * s.critical_rate.low:.3f}, {100 * s.critical_rate.high:.3f}]", "t + FPC, faults"],
        ["faults changing >= 1 prediction", f"{100 * s.critical_faults.value:.2f} %",
         f"[{100 * s.critical_faults.low:.2f}, {100 * s.critical_faults.high:.2f}]", "Wilson, faults"],
    ]
    work = ", ".join(f"{v:,} {k}" for k, v in s.how.items())
    caption = f"{status}; {s.images:,} images x {s.faults:,} faults; {work}"
    if seconds is not None:
        caption += f"; {seconds:.1f} s"
    table(f"{campaign_identity(meta)}", ["metric", "value", "95 % CI", "interval"], rows, caption=caption)
    if meta.get("fault_kind", "output") != "output":
        from .kinds import breakdown_titles

        for title, rows_ in zip(breakdown_titles(meta), (s.by_layer, s.by_bit, s.by_kind)):
            if rows_:
                table(title, BREAKDOWN_COLUMNS, breakdown_rows(rows_))
        say(f"results: {report.path}")
        return
    table("by layer", BREAKDOWN_COLUMNS, breakdown_rows(s.by_layer))
    table("by bit" if meta["masks"] == 8 else "by mask", BREAKDOWN_COLUMNS, breakdown_rows(s.by_bit))
    if len(s.by_kind) > 1:
        table("by slot kind", BREAKDOWN_COLUMNS, breakdown_rows(s.by_kind))
    say(f"results: {report.path}")


def print_sweep(out_dir: Path, rows=None) -> None:
    from .plots import sweep_rows

    rows = sweep_rows(out_dir) if rows is None else rows
    body = [[r.scheme, "" if r.threshold is None else f"{100 * r.threshold:g} %", r.n_protected, r.network_size,
             f"{r.faults_done:,}/{r.sample_size:,}", f"{100 * r.fault_free_accuracy:.2f} %",
             f"{100 * r.accuracy_loss:.3f} ± {100 * (r.accuracy_loss_high - r.accuracy_loss_low) / 2:.3f} %",
             f"{100 * r.critical_rate:.3f} ± {100 * (r.critical_rate_high - r.critical_rate_low) / 2:.3f} %",
             f"{r.propagated:,}/{r.masked:,}/{r.shared:,}"] for r in rows]
    table(f"sweep {out_dir}", ["scheme", "NVF >=", "protected", "size", "faults", "accuracy",
                               "acc. loss ± 95 % CI", "critical ± 95 % CI", "prop/mask/shared"], body,
          caption="accuracy: fault-free; prop/mask/shared: faults propagated / masked at the site / shared")
