"""Campaign engine vs the naive way, on LeNet-5: faulty inferences per second, measured in the same run.

    python benchmarks/campaign.py --model lenet5.rq --dataset mnist --data-dir DIR [--images 10000]
    python benchmarks/campaign.py            # trains LeNet-5 on the bundled digits first (~1 min)

*Naive*: one full forward pass of the bit-true executor per fault, batched over the images
(:class:`resilq.campaign.ExecutorBackend`). *Engine*: :class:`resilq.campaign.FaultEvaluator` with the
default fault-propagation backend, faults masked at their site decided from golden values. Both get the
same faults (a Leveugle-ordered sample, seed 0) on the same images; the faults the naive way runs are
also checked to give identical predictions in both. Three networks: unprotected, and split / TMR on the
neurons with NVF >= 20 % (``--nvf``) or, without an NVF file, on a seeded random 4 % of the neurons
(the paper's LeNet-5 protects 3.99 % at NVF >= 20 %).

Projections: the paper's full LeNet-5 campaign (7,650 faults x 10,000 images) and an 11-threshold x
3-scheme sweep, from the measured engine rates (setup time included, sharing between sweep points not
counted, so the sweep projection is an upper bound). Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("RESILQ_QUIET", "1")

from resilq.arith import Scheme  # noqa: E402
from resilq.campaign import EvaluationSet, ExecutorBackend, FaultEvaluator, sample_faults  # noqa: E402
from resilq.campaign.engine import DEFAULT_BACKEND  # noqa: E402
from resilq.campaign.sweep import harden  # noqa: E402
from resilq.data import load_dataset  # noqa: E402
from resilq.ir import Protection, load_model  # noqa: E402
from resilq.nvf import load_nvf  # noqa: E402
from resilq.ui import table  # noqa: E402

PAPER_FAULTS, PAPER_IMAGES = 7650, 10000


def _model(args):
    if args.model:
        return load_model(args.model)
    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    print("no --model: training LeNet-5 on the bundled digits (3 epochs) ...", flush=True)
    return train_and_export("lenet5", "digits", config=TrainConfig(epochs=3, seed=0), verify_inputs=0).model


def _random_protection(model, scheme, fraction, seed=0):
    rng = np.random.default_rng(seed)
    prots = {}
    for i in model.neuron_layers:
        n = model.out_size(i)
        prots[i] = Protection(scheme, np.sort(rng.choice(n, max(1, round(fraction * n)), replace=False)).astype(np.int32))
    return model.with_protection(prots)


def measure(model, data, faults, naive_faults):
    sample = sample_faults(model, n=faults, seed=0).faults()
    t0 = time.perf_counter()
    evaluator = FaultEvaluator(model, data)
    evaluator.backend  # noqa: B018 -- build it now, so setup is timed on its own
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    outcomes = evaluator.evaluate(sample)
    engine = time.perf_counter() - t0
    naive_backend = ExecutorBackend(model, data.x)
    t0 = time.perf_counter()
    naive_pred = naive_backend.predictions(sample[:naive_faults])
    naive = time.perf_counter() - t0
    pred, _ = evaluator.predictions(sample[:naive_faults])
    identical = bool(np.array_equal(pred, naive_pred))
    n = len(data)
    masked = int((outcomes.how == 1).sum())
    return {"setup": setup, "engine_rate": faults * n / engine, "naive_rate": naive_faults * n / naive,
            "identical": identical, "masked": masked, "faults": faults}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="LeNet-5 .rq (default: train one on digits)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--images", type=int, default=PAPER_IMAGES)
    p.add_argument("--nvf", default=None, help=".nvf of the model: protect NVF >= 20 %% instead of random 4 %%")
    p.add_argument("--faults", type=int, default=200, help="faults the engine runs per network")
    p.add_argument("--naive-faults", type=int, default=4, help="faults the naive way runs per network")
    args = p.parse_args(argv)

    model = _model(args)
    dataset = args.dataset or model.metadata.get("dataset", "digits")
    data = EvaluationSet.from_dataset(model, load_dataset(dataset, "test", args.data_dir), args.images)
    if args.nvf:
        nvf = load_nvf(args.nvf, model)
        nets = [("unprotected", model), ("split @ NVF>=20%", harden(model, nvf, Scheme.SPLIT, 0.2)),
                ("TMR @ NVF>=20%", harden(model, nvf, Scheme.TMR, 0.2))]
    else:
        nets = [("unprotected", model), ("split, random 4%", _random_protection(model, Scheme.SPLIT, 0.04)),
                ("TMR, random 4%", _random_protection(model, Scheme.TMR, 0.04))]
    print(f"{model.name}: {model.n_neurons:,} neurons; {data.describe()}; engine backend: {DEFAULT_BACKEND.value}; "
          f"{args.faults} engine faults, {args.naive_faults} naive faults per network", flush=True)
    rows, results = [], []
    for label, net in nets:
        r = measure(net, data, args.faults, args.naive_faults)
        results.append(r)
        rows.append([label, net.n_slots, f"{r['setup']:.1f} s", f"{r['masked']}/{r['faults']}",
                     f"{r['naive_rate']:,.0f}", f"{r['engine_rate']:,.0f}", f"{r['engine_rate'] / r['naive_rate']:.1f}x",
                     "yes" if r["identical"] else "NO"])
    table("faulty inferences per second: engine vs naive (one full executor pass per fault)",
          ["network", "slots", "engine setup", "masked at site", "naive inf/s", "engine inf/s", "ratio",
           "identical"], rows)
    full = PAPER_FAULTS * PAPER_IMAGES
    unprot = results[0]
    campaign = unprot["setup"] + full / unprot["engine_rate"]
    per_point = {"split": results[1], "tmr": results[2]}
    sweep = campaign + sum(11 * (r["setup"] + full / r["engine_rate"]) for r in per_point.values())
    naive_campaign = full / unprot["naive_rate"]
    print(f"projected full LeNet-5 campaign ({PAPER_FAULTS:,} faults x {PAPER_IMAGES:,} images): engine "
          f"{campaign / 60:.1f} min (target < 5 min), naive {naive_campaign / 3600:.1f} h")
    print(f"projected 11-threshold x 3-scheme sweep without sharing: {sweep / 60:.1f} min (target < 20 min)")
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
