"""``resilq prune``: structured output-channel pruning ranked by vulnerability or L1 norm, then fine-tuning."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import load_dataset
from ..evaluate import accuracy
from ..harden.overhead import CycleModel
from ..ir import Model, load_model, save_model
from ..nvf import load_nvf
from ..prune import FinetuneConfig, Ranking, check_ratio, prune
from ..ui import say, table
from ..validation import cli_number, learning_rate, non_negative_int
from .harden import layer_names
from .options import add_dataset_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="remove the least important output channels (by vulnerability or L1 norm) "
                       "and fine-tune")
    p.add_argument("model", help="an unprotected .rq model")
    p.add_argument("--by", required=True, choices=[r.value for r in Ranking],
                   help="vulnerability: prune the channels with the lowest mean NVF (needs --nvf); "
                        "l1: prune the smallest L1 weight norms (the conventional baseline)")
    p.add_argument("--nvf", default=None, help="the model's .nvf file (for --by vulnerability)")
    p.add_argument("--ratio", type=cli_number(0.0, 1.0, what="a fraction in (0, 1)"), required=True,
                   help="fraction of the output channels removed from every pruned layer, in (0, 1)")
    p.add_argument("--layers", type=layer_names, default=None, metavar="A,B",
                   help="prune only these layers (default: every Conv2d/Linear layer but the classifier)")
    p.add_argument("--finetune", type=non_negative_int, default=0, metavar="EPOCHS",
                   help="Brevitas QAT epochs after pruning (0: keep the pruned integer model as is)")
    p.add_argument("--lr", type=learning_rate, default=1e-3, help="fine-tuning learning rate (Adam)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="fine-tuning seed (default: 0)")
    add_dataset_args(p, default=None)
    p.add_argument("--out", type=Path, required=True, help="output .rq file (the pruned model)")
    p.set_defaults(func=run)


def variant_rows(variants: list[tuple[str, Model, float]], cycles: CycleModel | None = None) -> tuple[list, list]:
    """``(label, model, accuracy)`` -> accuracy, neurons, MACs, params (and cycles with a cycle model) of each
    variant, compared with the first."""
    cols = ["variant", "accuracy", "Δ accuracy", "neurons", "MACs", "Δ MACs", "params", "cycles"]
    rows, base_acc, base_macs = [], None, None
    for label, model, acc in variants:
        macs = model.macs()
        base_acc = acc if base_acc is None else base_acc
        base_macs = macs if base_macs is None else base_macs
        rows.append([label, f"{acc:.2%}", f"{acc - base_acc:+.2%}", model.n_neurons, macs,
                     f"{(macs - base_macs) / base_macs:+.2%}", model.params(),
                     _or_dash(cycles(model) if cycles is not None else None)])
    return cols, rows


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    ranking = Ranking(args.by)
    check_ratio(args.ratio)
    nvf = load_nvf(args.nvf, model) if args.nvf else None
    finetune = FinetuneConfig(args.finetune, lr=args.lr, seed=args.seed)
    dataset = args.dataset or model.metadata.get("dataset", "digits")
    test = load_dataset(dataset, "test", args.data_dir)
    train = load_dataset(dataset, "train", args.data_dir) if finetune.epochs else None
    result = prune(model, ranking, args.ratio, nvf, args.layers, finetune, train)
    plan = result.plan
    rows = [[model.layers[i].name, int(plan.importance[i].size), int(plan.keep[i].size),
             int(plan.importance[i].size - plan.keep[i].size)] for i in sorted(plan.keep)]
    table(f"pruning by {ranking.value}, ratio {plan.ratio:g}", ["layer", "channels", "kept", "removed"], rows)
    variants = [("original", model, accuracy(model, test)), ("pruned", result.pruned, accuracy(result.pruned, test))]
    if finetune.epochs:
        variants.append((f"pruned + {finetune.epochs} epoch(s) fine-tuning", result.model, accuracy(result.model, test)))
    from resilq.hls.cycles import cycles_per_inference

    cols, rows = variant_rows(variants, cycles_per_inference())
    table(f"{model.name}: pruned by {ranking.value} on {test.describe()}", cols, rows,
          caption="cycles: one inference on the default PE x SIMD accelerator build (resilq.hls.cycles)")
    final = result.model
    final = final.replace(metadata={**final.metadata, "test_accuracy": variants[-1][2], "dataset": dataset})
    path = save_model(final, args.out)
    say(f"wrote {path} ({final.n_neurons:,} neurons, {final.macs():,} MACs, hash {final.hash[:16]}); analyse it "
        "(resilq analyze) before hardening: the pruned network has its own NVF")
    return 0


def _or_dash(value):
    return "—" if value is None else value
