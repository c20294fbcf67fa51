"""``resilq train``: quantization-aware training in Brevitas, export to the integer IR, bit-true check."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ir import save_model
from ..ir.summary import summary_table
from ..ui import say, table
from ..validation import learning_rate, non_negative_int
from .options import add_dataset_args, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an int8 Brevitas model and export it to a .rq integer model")
    p.add_argument("--model", default="lenet5", metavar="NAME|FILE.py:FACTORY",
                   help="zoo model (lenet5, mlp7, alexnet) or your own Brevitas nn.Sequential factory")
    add_dataset_args(p)
    p.add_argument("--epochs", type=positive_int, default=10, help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per training step (default: %(default)s)")
    p.add_argument("--lr", type=learning_rate, default=2e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of weights and shuffling (default: %(default)s)")
    p.add_argument("--train-images", type=positive_int, default=None, metavar="N",
                   help="train on the first N training images only (a quick model, e.g. for benchmarks)")
    p.add_argument("--per-channel", action="store_true", help="one power-of-two weight scale per output channel")
    p.add_argument("--verify", type=non_negative_int, default=1000, metavar="N",
                   help="compare Brevitas and the integer executor bit for bit on N test images (0: skip)")
    p.add_argument("--checkpoint", type=Path, default=None, help="also save the Brevitas state_dict here")
    p.add_argument("--out", type=Path, required=True, help="output .rq file")
    p.set_defaults(func=run)


def report_training(result) -> bool:
    """Print the model table and the chain-of-trust check; return whether Brevitas and IR agree."""
    model = result.model
    cols, rows = summary_table(model)
    table(f"{model.name}: {model.n_neurons:,} neurons, {model.macs():,} MACs", cols, rows)
    ok = True
    if result.trust is not None:
        rep = result.trust
        table(f"chain of trust: Brevitas vs integer executor on {rep.inputs} test images",
              ["tensor", "elements", "mismatches"], rep.rows(),
              caption=f"top-1 agreement {rep.top1_agreement:.2%}")
        ok = rep.identical
        say("[green]bit-identical at every layer[/green]" if ok else "[red]MISMATCH between Brevitas and the IR[/red]")
    say(f"accuracy on {result.test.describe()}: integer {result.int_accuracy:.2%}, "
        f"Brevitas {result.float_accuracy:.2%}")
    return ok


def run(args: argparse.Namespace) -> int:
    from ..train.qat import TrainConfig
    from ..train.workflow import train_and_export

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         train_images=args.train_images)
    result = train_and_export(args.model, args.dataset, args.data_dir, config, per_channel=args.per_channel,
                              verify_inputs=args.verify)
    ok = report_training(result)
    path = save_model(result.model, args.out)
    say(f"wrote {path} ({path.stat().st_size:,} bytes, hash {result.model.hash[:16]})")
    if args.checkpoint:
        import torch

        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result.net.state_dict(), args.checkpoint)
        say(f"wrote Brevitas checkpoint {args.checkpoint}")
    return 0 if ok else 1
