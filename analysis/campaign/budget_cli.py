"""``resilq sweep-budget``: campaigns comparing protection methods at equal extra slots (issue #16)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..arith import CLIP_VARIANTS
from ..cli.options import positive_int
from ..data import load_dataset
from ..errors import ParameterError
from ..ir import load_model
from ..nvf import load_nvf
from ..ui import say, table


def register(sub: argparse._SubParsersAction, add_campaign_args) -> None:
    from .budget import VARIANTS

    p = sub.add_parser("sweep-budget", help="campaigns at slot budgets: unprotected, split/TMR by NVF, split/TMR/auto "
                                            "by gain, clip, clip + the best (resumable)",
                       description="For every budget (extra slots as a fraction of the neurons) protect the network "
                                   "by each variant, run one campaign per distinct network (the same faults where "
                                   "the populations agree, outcomes shared exactly), and write budget.csv and "
                                   "budget.png into --out. Re-running the same command resumes.")
    p.add_argument("model", help="the unprotected .rq model")
    p.add_argument("--nvf", required=True, help=".nvf file of the model (resilq analyze): the paper's selection")
    p.add_argument("--gain", required=True, help=".gain file of the model (resilq gain): selection by gain")
    p.add_argument("--budgets", default="0.01,0.02,0.05,0.1,0.2",
                   help="extra slots as fractions of the neurons (default 0.01,0.02,0.05,0.1,0.2)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--clip-inputs", type=positive_int, default=5000, metavar="N",
                   help="training inputs the clip bounds are profiled on (default 5000, as resilq clip)")
    p.add_argument("--clip-variant", choices=CLIP_VARIANTS, default="bound",
                   help="bound: values above the bound become the bound (Ranger); zero: they become 0")
    add_campaign_args(p)
    p.add_argument("--no-share", action="store_true", help="do not share results between points (slower; a check)")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--out", type=Path, required=True, help="sweep directory, e.g. runs/budget")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gain import load_gain
    from ..harden.clip import profile_bounds
    from .budget import parse_budgets, parse_variants, run_budget_sweep
    from .budget_plots import budget_rows, budget_table, plot_budget, write_budget_csv
    from .cli import _client, _setup

    model = load_model(args.model)
    nvf, gain = load_nvf(args.nvf, model), load_gain(args.gain, model)
    fractions, variants = parse_budgets(args.budgets), parse_variants(args.variants)
    data, backend, config = _setup(args, model)
    bounds = {}
    if any(v.startswith("clip") for v in variants):
        dataset = args.dataset or model.metadata.get("dataset")
        train = load_dataset(dataset, "train", args.data_dir).take(args.clip_inputs, 0)
        if len(train) == 0:
            raise ParameterError(f"no {dataset}/train inputs to profile the clip bounds on")
        bounds = profile_bounds(model, model.quantize_input(train.images))
    say(f"budget sweep: {model.name} ({model.n_neurons:,} neurons) on {data.describe()}, budgets "
        f"{', '.join(f'{100 * f:g} %' for f in fractions)}, variants {', '.join(variants)}, "
        f"{config.faults or 'Leveugle'} {config.fault_model.label} faults per point, seed {config.seed} -> {args.out}")
    start = time.perf_counter()
    with _client(args) as client:
        result = run_budget_sweep(model, nvf, gain, data, args.out, fractions, variants, clip_bounds=bounds,
                                  clip_variant=args.clip_variant, config=config, backend=backend, client=client,
                                  share=not args.no_share)
    rows = budget_rows(args.out)
    table(f"budget sweep {args.out}", *budget_table(rows),
          caption="budget: extra slots asked (% of neurons); extra slots: used; clip + best: clip on the variant in "
                  "brackets (the lowest critical rate at that budget)")
    png = plot_budget(rows, args.out / "budget.png", title=args.title or f"{model.name}: protection at equal extra slots")
    csv_path = write_budget_csv(rows, args.out / "budget.csv")
    say(f"{len(result.points)} points in {time.perf_counter() - start:.1f} s; {result.shared:,} shared outcomes; "
        f"wrote {png} and {csv_path}")
    return 0
