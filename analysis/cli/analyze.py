"""``resilq analyze``: the NVF of every neuron of a model over an input set (exact, or the paper's δ-range)."""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from enum import Enum
from pathlib import Path

from ..errors import ParameterError
from ..faultsim.allocator import tune_for_arrays
from ..faultsim.backend import DEVICES, array_backend
from ..ir import load_model
from ..nvf import save_nvf
from ..ui import say
from ..validation import cli_number
from .nvf_table import print_table
from .options import add_analysis_input_args, analysis_inputs, non_negative_int, positive_int


class Method(str, Enum):
    EXACT = "exact"
    DELTARANGE = "deltarange"

    def __str__(self) -> str:  # what argparse shows in --help and in its error messages
        return self.value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="Neuron Vulnerability Factors of every neuron (exact, or the paper's δ-range)")
    p.add_argument("model", help="a .rq file (unprotected)")
    add_analysis_input_args(p)
    p.add_argument("--method", type=Method, default=Method.EXACT, choices=list(Method),
                   help="exact (every bit flip decided exactly; default) or deltarange (the paper's Algorithm 1)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="worker processes on this machine (default 1; at most the number of cores)")
    p.add_argument("--sample", type=cli_number(0.0, 1.0, positive=True, what="a fraction in (0, 1]"), default=None, metavar="F",
                   help="analyse a stratified fraction F of the neurons of every channel (large networks)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the neuron sample (default 0)")
    p.add_argument("--scheduler", default=None, metavar="local|tcp://HOST:PORT|slurm",
                   help="run the work units on a Dask cluster (default: this machine, --jobs processes)")
    p.add_argument("--workers", type=positive_int, default=2,
                   help="Dask workers for --scheduler local (processes) or slurm (jobs); default 2")
    p.add_argument("--device", default=None, choices=DEVICES,
                   help="run the fault simulator's products on torch tensors on this device (exact, same results; "
                   "default: numpy)")
    p.add_argument("--out", required=True, help="output .nvf file (finished work units are kept in OUT.parts/ "
                   "until it is written: an interrupted run continues where it stopped)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..nvf.deltarange import deltarange_nvf
    from ..nvf.exact import exact_nvf
    from ..nvf.partials import parts_dir, remove_parts

    tune_for_arrays()  # this process is ours: large numpy temporaries (resilq.faultsim.allocator)

    if Path(args.out).is_dir():
        raise ParameterError(f"--out {args.out} is a folder; give a file name for the nvf file")
    model = load_model(args.model)
    dataset, chosen = analysis_inputs(args, model)
    x = model.quantize_input(chosen.images)
    if args.device is not None:
        array_backend(args.device)  # refuse a missing torch or CUDA before any work
    where = f"{args.jobs} job(s)" if args.scheduler is None else f"Dask {args.scheduler}, {args.workers} worker(s)"
    if args.device is not None:
        where += f", torch on {args.device}"
    say(f"{args.method.value} NVF of {model.name} ({model.n_neurons:,} neurons x 8 bits) over {len(chosen):,} "
        f"{dataset}/{args.split} inputs, {where}")
    meta = {"dataset": dataset, "split": args.split, "offset": args.offset}
    analysis = exact_nvf if args.method is Method.EXACT else deltarange_nvf
    parts = parts_dir(args.out)
    if parts.is_dir():
        say(f"continuing from the finished work units in {parts}")
    start = time.perf_counter()
    with _client(args) as client:
        result = analysis(model, x, jobs=args.jobs, sample=args.sample, seed=args.seed, metadata=meta,
                          client=client, parts=parts, device=args.device)
    elapsed = time.perf_counter() - start
    result.metadata["seconds"] = round(elapsed, 3)
    path = save_nvf(result, args.out)
    remove_parts(parts)  # the result is written: the units are no longer needed
    print_table(result)
    say(f"wrote {path} ({elapsed:.1f} s)")
    return 0


def _client(args: argparse.Namespace):
    if args.scheduler is None:
        return nullcontext(None)
    from ..campaign.distributed import dask_client

    return dask_client(args.scheduler, args.workers)
