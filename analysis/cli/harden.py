"""``resilq harden``: protect the critical neurons of a model (split+LCU, TMR, duplication) and show the cost."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..arith import Scheme
from ..data import load_dataset
from ..errors import ParameterError
from ..harden import (
    Budget,
    Granularity,
    HardeningPlan,
    Threshold,
    TopK,
    cost_rows,
    fault_free_agreement,
    harden,
    layer_rows,
    scheme_comparison,
    with_own_weights,
)
from ..ir import load_model, save_model
from ..nvf import load_nvf
from ..ui import say, table
from ..validation import cli_number
from .options import add_dataset_args, positive_int

SCHEMES = [s.label for s in Scheme]


def layer_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of layer names")
    return names


def layer_threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if sep and name.strip():
            return name.strip(), float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected NAME=THRESHOLD (e.g. conv1=0.3), got {text!r}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("harden", help="protect the neurons an NVF analysis found critical (split, tmr, dup-and, dup-min)")
    p.add_argument("model", help="the unprotected .rq model")
    p.add_argument("--by", choices=("nvf", "gain"), default="nvf",
                   help="nvf: the paper's rule (units by NVF; --threshold/--top-k/--budget); gain: the neurons and "
                        "scheme with the largest exact protection gain within --budget SLOTS (resilq gain)")
    p.add_argument("--nvf", default=None, help="the model's .nvf file (resilq analyze; for --by nvf)")
    p.add_argument("--gain", default=None, help="the model's .gain file (resilq gain; for --by gain)")
    p.add_argument("--scheme", required=True, choices=SCHEMES + ["auto"], help="split: two halves + LCU (the "
                   "paper); tmr: selective TMR; dup-and / dup-min: two full copies merged by AND / min; auto "
                   "(--by gain): per layer the scheme that buys the most gain")
    how = p.add_argument_group("selection (one of --threshold, --top-k, --budget; --layer-threshold refines "
                               "--threshold)")
    how.add_argument("--threshold", type=cli_number(0.0, 1.0, what="a fraction in [0, 1]"), default=None, metavar="T",
                     help="protect units with NVF >= T (a fraction in [0, 1], e.g. 0.2)")
    how.add_argument("--layer-threshold", type=layer_threshold, action="append", default=[], metavar="NAME=T",
                     help="a threshold for one layer (repeatable); with no --threshold only these layers are protected")
    how.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                     help="protect the K most vulnerable units")
    how.add_argument("--budget", type=positive_int, default=None, metavar="SLOTS",
                     help="protect the most vulnerable units whose shadow slots fit into SLOTS extra slots")
    p.add_argument("--granularity", choices=[g.value for g in Granularity], default="neuron",
                   help="neuron (the paper) or channel (all neurons of an output channel: filter duplication; "
                        "a channel's NVF is the mean of its neurons')")
    p.add_argument("--layers", type=layer_names, default=None, metavar="A,B",
                   help="only protect neurons of these layers")
    p.add_argument("--fallback", choices=[s for s in SCHEMES if s != "split"], default=None,
                   help="scheme for selected neurons that split cannot protect (layers without ReLU); "
                        "without it such a selection is refused")
    add_dataset_args(p, default=None)
    p.add_argument("--limit", type=positive_int, default=None,
                   help="measure the fault-free agreement on the first N test images only")
    p.add_argument("--own-weights", action="store_true",
                   help="each shadow copy stores its own copy of its channel's weights and bias, so a flipped stored "
                        "word reaches one copy (costs copies-1 rows per protected channel; the accelerator builds "
                        "shared rows only, so the result analyses and campaigns in Python but does not deploy)")
    p.add_argument("--no-agreement", action="store_true", help="skip the fault-free agreement measurement")
    p.add_argument("--out", type=Path, required=True, help="output .rq file (the protected model)")
    p.set_defaults(func=run)


def criterion_from(args: argparse.Namespace):
    chosen = [name for name, v in (("--threshold", args.threshold), ("--top-k", args.top_k),
                                   ("--budget", args.budget)) if v is not None]
    if args.layer_threshold and (args.top_k is not None or args.budget is not None):
        raise ParameterError("--layer-threshold refines --threshold; it cannot be combined with --top-k or --budget")
    if len(chosen) > 1:
        raise ParameterError(f"choose one selection criterion, got {' and '.join(chosen)}")
    if args.top_k is not None:
        return TopK(args.top_k)
    if args.budget is not None:
        return Budget(args.budget)
    if args.threshold is None and not args.layer_threshold:
        raise ParameterError("say which neurons to protect: --threshold T, --top-k K, --budget SLOTS or "
                             "--layer-threshold NAME=T")
    return Threshold(args.threshold, dict(args.layer_threshold))


def _by_gain(args: argparse.Namespace, model):
    from ..gain import load_gain
    from ..harden import harden_by_gain

    if args.gain is None or args.budget is None:
        raise ParameterError("--by gain needs --gain FILE (resilq gain) and --budget SLOTS")
    if args.threshold is not None or args.top_k is not None or args.layer_threshold or args.granularity != "neuron":
        raise ParameterError("--by gain selects neurons within --budget only (no --threshold, --top-k, "
                             "--layer-threshold or --granularity channel)")
    scheme = None if args.scheme == "auto" else Scheme.parse(args.scheme)
    gain = load_gain(args.gain, model)
    result = harden_by_gain(model, gain, scheme, args.budget, args.layers,
                            Scheme.parse(args.fallback) if args.fallback else None)
    sel = result.selection
    picked = ", ".join(f"{model.layers[i].name}: {s.label}" for i, s in result.schemes.items()) or "nothing"
    say(f"selected {sel.n_neurons:,} of {model.n_neurons:,} neurons ({sel.n_neurons / model.n_neurons:.2%}) by "
        f"exact gain within {args.budget:,} extra slots ({picked})")
    return result, sel, (scheme or Scheme.TMR), Scheme.parse(args.fallback) if args.fallback else None


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if args.by == "gain":
        result, sel, shown, fallback = _by_gain(args, model)
    else:
        if args.nvf is None:
            raise ParameterError("--by nvf needs --nvf FILE (resilq analyze)")
        if args.scheme == "auto":
            raise ParameterError("--scheme auto chooses by gain: use --by gain --gain FILE --budget SLOTS")
        nvf = load_nvf(args.nvf, model)
        plan = HardeningPlan(Scheme.parse(args.scheme), criterion_from(args), Granularity(args.granularity),
                             Scheme.parse(args.fallback) if args.fallback else None, args.layers)
        result = harden(model, nvf, plan)
        sel, shown, fallback = result.selection, plan.scheme, plan.fallback
        say(f"selected {sel.n_neurons:,} of {model.n_neurons:,} neurons ({sel.n_neurons / model.n_neurons:.2%}; "
            f"{sel.units:,} {plan.granularity.value}s) in {len(sel.neurons)} layer(s) by {_describe(plan)}")
    hard = with_own_weights(result.model) if args.own_weights else result.model
    if sel.note:
        say(sel.note)
    if result.fallback_layers:
        say(f"[yellow]{result.describe_fallbacks()}[/yellow]")
    cols, rows = layer_rows(hard)
    table(f"{hard.name}: protection per layer", cols, rows)
    from resilq.hls.cycles import cycles_per_inference

    costs = scheme_comparison(model, sel, fallback=fallback or Scheme.TMR, cycles=cycles_per_inference(),
                              own_weights=args.own_weights)
    cols, rows = cost_rows(costs)
    for row in rows:
        if row[0] == shown.label and args.scheme != "auto":
            row[0] += " *"
    table("overhead: the same selection under each scheme (network size = neurons + shadow slots)", cols, rows,
          caption="* this model; cycles: one inference on the default PE x SIMD accelerator build (resilq.hls.cycles); "
                  "—: the accelerator cannot map the variant (e.g. own weight rows per copy)")
    if not args.no_agreement:
        dataset = args.dataset or model.metadata.get("dataset", "digits")
        data = load_dataset(dataset, "test", args.data_dir).take(args.limit)
        agreement = fault_free_agreement(model, hard, data.images, data.labels, show_progress=True)
        say(f"on {data.describe()}:")
        say(agreement.describe())
        meta = dict(hard.metadata)
        meta["hardening"] = {**meta["hardening"], "fault_free_top1_agreement": agreement.top1_agreement,
                             "agreement_inputs": agreement.inputs}
        if args.limit is None:
            meta["test_accuracy"] = agreement.hardened_accuracy
        hard = hard.replace(metadata=meta)
    path = save_model(hard, args.out)
    say(f"wrote {path} ({hard.n_protected:,} protected neurons, {hard.n_slots:,} slots, hash {hard.hash[:16]})")
    return 0


def _describe(plan: HardeningPlan) -> str:
    c = plan.criterion
    if isinstance(c, Threshold):
        parts = [f"NVF >= {c.value:g}"] if c.value is not None else []
        parts += [f"{name}: NVF >= {t:g}" for name, t in c.per_layer.items()]
        return ", ".join(parts)
    if isinstance(c, TopK):
        return f"top-{c.k}"
    return f"a budget of {c.slots:,} extra slots"
