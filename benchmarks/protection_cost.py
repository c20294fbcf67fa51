"""Protection's cycle cost on a trained network, with the paper's selection (issue #14: "split's and TMR's extra
cycles stay proportional to their extra slots").

`benchmarks/accelerator.py` draws its protected sets at random, neuron by neuron: the pessimistic case for the
PE array, whose shadow passes recompute a whole tile position for every lane where its protected neurons need
more shadow values than the dedicated shadow lanes take in the position's own pass. Here the set is the paper's: the top-k neurons by exact NVF of a LeNet-5 trained on the bundled
digits (or any .rq model and its .nvf, ``--model``/``--nvf``), k = 4 % of the neurons (the paper's 187 of
4,684 at NVF >= 20 %), protected by split and by TMR, each also tile-packed; beside it, a random set of the same
size per layer. For 8 x 8 and every widest build that fits, the extra cycles per image over the unprotected
network at batch 1 and 16, and their ratio to the extra slots (1.0 = proportional). Cycles are the cycle
model's (the C-sim counter equals it in the test suite), not a board measurement.

    python benchmarks/protection_cost.py [--model M.rq --nvf M.nvf] [--portion 0.04]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from accelerator import widest_builds

from resilq.arith import Scheme
from resilq.boards import load_board
from resilq.harden import Granularity, HardeningPlan, TopK, harden
from resilq.hls.config import AccelConfig
from resilq.hls.cycles import cycle_report
from resilq.hls.tile_packing import pack_tiles
from resilq.ir import Protection, load_model
from resilq.ui import say, table
from resilq.validation import cli_number

BATCH = 16


def trained_lenet5():
    """LeNet-5 trained on digits (the README's default data) and its exact NVF over 1,000 training inputs."""
    from resilq.data import load_dataset
    from resilq.nvf.exact import exact_nvf
    from resilq.train.workflow import train_and_export

    say("training LeNet-5 on digits (about a minute) ...")
    model = train_and_export("lenet5", "digits", verify_inputs=None).model
    x = load_dataset("digits", "train").take(1000).images
    say("exact NVF over 1,000 training inputs ...")
    return model, exact_nvf(model, model.quantize_input(x))


def random_like(model, hardened, seed: int = 1):
    """A random set with the same number of protected neurons in every layer as ``hardened`` (and its scheme)."""
    rng = np.random.default_rng(seed)
    prots = {}
    for i in model.neuron_layers:
        prot = hardened.protection(i)
        if prot is not None and prot.n_protected:
            chosen = rng.choice(model.out_size(i), prot.n_protected, replace=False)
            prots[i] = Protection(prot.scheme, np.sort(chosen).astype(np.int32))
    return model.with_protection(prots)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="an unprotected .rq model (default: train LeNet-5 on digits)")
    p.add_argument("--nvf", help="its .nvf file (resilq analyze)")
    p.add_argument("--portion", type=cli_number(0.0, 0.5, positive=True, what="a share in (0, 0.5]"), default=0.04, help="share of the neurons protected (top-k by NVF)")
    p.add_argument("--board", default="pynq-z2")
    args = p.parse_args()
    if bool(args.model) != bool(args.nvf):
        p.error("--model and --nvf go together")
    if args.model:
        from resilq.nvf import load_nvf

        model = load_model(args.model)
        nvf = load_nvf(args.nvf, model)
    else:
        model, nvf = trained_lenet5()
    board = load_board(args.board)
    # 8 x 8 without and with its dedicated shadow lanes, then every widest build that fits (with the most shadow
    # lanes that fit: widest_builds keeps only the builds that fit)
    builds = [AccelConfig(shadow_units=0), AccelConfig(), *widest_builds(board)]
    k = max(1, math.ceil(args.portion * model.n_neurons))
    sets = {}
    for scheme in (Scheme.SPLIT, Scheme.TMR):
        hard = harden(model, nvf, HardeningPlan(scheme, TopK(k), Granularity.NEURON, fallback=Scheme.TMR)).model
        sets[f"{scheme.label} (NVF)"] = hard
        sets[f"{scheme.label} (random)"] = random_like(model, hard)
    where = {model.layers[i].name: int(hard.protection(i).n_protected)
             for i in model.neuron_layers if hard.protection(i) is not None}
    say(f"{model.name}: top {k:,} of {model.n_neurons:,} neurons by NVF, per layer {where}")
    rows = []
    for config in builds:
        base = cycle_report(model, config)
        base_b = (base.per_inference, base.at(BATCH).per_inference)
        for name, protected in sets.items():
            slots = protected.n_shadows / model.n_neurons
            macs = protected.macs() / model.macs(include_shadows=False) - 1  # the shadows' own MACs
            for label, m in ((name, protected), (name + " + pack", pack_tiles(protected, config)[0])):
                one = cycle_report(m, config)
                extra = [a / b - 1 for a, b in zip((one.per_inference, one.at(BATCH).per_inference), base_b)]
                rows.append((f"{config.pe}x{config.simd}+{config.shadow_units}", label, f"+{slots:.1%}", f"+{macs:.1%}", f"{extra[0]:+.1%}",
                             f"{extra[1]:+.1%}", f"{extra[0] / slots:.2f} / {extra[1] / slots:.2f}",
                             f"{extra[0] / macs:.2f} / {extra[1] / macs:.2f}"))
    table(f"Protection's extra cycles per image (cycle model) vs its extra slots and MACs, batch 1 / {BATCH}",
          ("PE x SIMD + shadow lanes", "protected set", "extra slots", "extra MACs", "extra cycles b=1", f"extra cycles b={BATCH}",
           "cycles / slots b=1 / b=" + str(BATCH), "cycles / MACs"), rows,
          caption="1.00 = extra cycles proportional to the extra slots (or to the shadows' own multiply-accumulates: "
                  "a slot of a layer with a larger fan-in costs more). (NVF): the paper's top-k selection; (random): "
                  "the same count per layer drawn at random; + pack: resilq hls pack (tile packing).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
