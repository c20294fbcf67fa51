"""Engine vs executor per fault kind (output, lane, weight, ber): faulty inferences per second, same run.

    python benchmarks/campaign_kinds.py --model lenet5.rq --dataset digits [--images 1000] [--faults 24]
    python benchmarks/campaign.py --kinds ...        # the same, from the campaign benchmark

For each network (unprotected, split / TMR on a seeded random 4 % of the neurons) and each kind, the same
sampled faults (``resilq.campaign.kinds.sample_kind``, seed 0; ``SPECS`` names the variants: BER p = 1e-3 on
outputs per run by default, 1e-4 per run, on weights, per inference) run through the fast engine
(``FaultSimulator.predictions``: the change map of one layer propagated by ``Propagator.exact``; faults spanning
several layers layer by layer over the inputs they reach, ``resilq.faultsim.multi.several_layers``) and through
the naive way (one executor pass per fault, ``ExecutorBackend``); the predictions are compared fault by fault and
input by input. ``lane`` faults are one layer each (``lane_scope='layer'``), as the campaign samples them by
default; ``lane-all`` puts each in every neuron layer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("RESILQ_QUIET", "1")

from protections import random_protection  # noqa: E402  (benchmarks/, on sys.path when run as a script)

from resilq.arith import Scheme  # noqa: E402
from resilq.campaign import EvaluationSet, ExecutorBackend, sample_faults  # noqa: E402
from resilq.campaign.kinds import KindSpec, sample_kind  # noqa: E402
from resilq.campaign.sampling import SINGLE_BIT  # noqa: E402
from resilq.data import load_dataset  # noqa: E402
from resilq.faultsim import FaultSimulator  # noqa: E402
from resilq.faultsim.simulator import limit_blas_threads  # noqa: E402
from resilq.ir import load_model  # noqa: E402
from resilq.ui import table  # noqa: E402
from resilq.validation import positive_int  # noqa: E402

#: The measured variants: a kind's name alone is its campaign default; the others are the populations whose faults
#: span several layers (``several_layers``: a lane in every layer, BER draws per run and per inference).
SPECS = {"output": KindSpec("output"), "lane": KindSpec("lane"), "weight": KindSpec("weight"),
         "ber": KindSpec("ber", ber=(1e-3,), repetitions=4),
         "lane-all": KindSpec("lane", lane_scope="all"),
         "ber-1e-4": KindSpec("ber", ber=(1e-4,), repetitions=8),
         "ber-weights": KindSpec("ber", ber=(1e-4,), ber_sites="weights", repetitions=8),
         "ber-inference": KindSpec("ber", ber=(1e-4,), ber_per="inference", repetitions=4)}


def faults_of(model, kind: str, n: int):
    if kind == "output":
        return sample_faults(model, SINGLE_BIT, n, 0).faults()
    spec = SPECS[kind]
    return sample_kind(model, spec, SINGLE_BIT, None if spec.kind == "ber" else n, 0).faults()


def measure(model, x, kind: str, n: int) -> dict:
    faults = faults_of(model, kind, n)
    with limit_blas_threads(1):
        t0 = time.perf_counter()
        sim = FaultSimulator(model, x)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = sim.predictions(faults)
        engine = time.perf_counter() - t0
    naive = ExecutorBackend(model, x)
    t0 = time.perf_counter()
    slow = naive.predictions(faults)
    executor = time.perf_counter() - t0
    if not np.array_equal(fast, slow):
        raise SystemExit(f"{kind}: the engine and the executor disagree")
    inferences = len(faults) * x.shape[0]
    return {"kind": kind, "faults": len(faults), "engine": inferences / engine, "executor": inferences / executor,
            "setup": setup, "changed": float((fast != sim.golden[None]).mean())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--images", type=positive_int, default=1000)
    p.add_argument("--faults", type=positive_int, default=24, help="faults per kind and network (BER: 4 draws)")
    p.add_argument("--kinds", default="output,lane,weight,ber",
                   help=f"comma-separated, from {', '.join(SPECS)}")
    args = p.parse_args(argv)
    model = load_model(args.model)
    data = load_dataset(args.dataset or model.metadata.get("dataset", "digits"), "test", args.data_dir)
    x = EvaluationSet.from_dataset(model, data, args.images).x
    rows = []
    for label, net in (("unprotected", model), ("split 4 %", random_protection(model, Scheme.SPLIT)),
                       ("tmr 4 %", random_protection(model, Scheme.TMR))):
        for kind in args.kinds.split(","):
            if kind not in SPECS:
                raise SystemExit(f"unknown kind {kind!r}: expected one of {', '.join(SPECS)}")
            r = measure(net, x, kind, args.faults)
            rows.append([label, kind, r["faults"], f"{r['engine']:,.0f}", f"{r['executor']:,.0f}",
                         f"{r['engine'] / r['executor']:.1f}x", f"{100 * r['changed']:.2f} %"])
            print(*rows[-1], sep=" | ", flush=True)
    table(f"engine vs executor per kind ({x.shape[0]:,} images, load {os.getloadavg()[0]:.1f})",
          ["network", "kind", "faults", "engine inf/s", "executor inf/s", "ratio", "changed top-1"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
