"""Campaign engine vs the naive way, on LeNet-5: faulty inferences per second, measured in the same run.

    python benchmarks/campaign.py --model lenet5.rq --dataset mnist --data-dir DIR [--images 10000]
    python benchmarks/campaign.py            # trains LeNet-5 on the bundled digits first (~1 min)
    python benchmarks/campaign.py --kinds output,lane,weight,ber --model lenet5.rq   # ratio per fault kind
                                             # (benchmarks/campaign_kinds.py)

*Naive*: one full forward pass of the bit-true executor per fault, batched over the images
(:class:`resilq.campaign.ExecutorBackend`). *Engine*: :class:`resilq.campaign.FaultEvaluator` with the
default fault-propagation backend, faults masked at their site decided from golden values. Both get the
same faults (a Leveugle-ordered sample, seed 0) on the same images; the faults the naive way runs are
also checked to give identical predictions in both. Three networks: unprotected, and split / TMR on the
neurons with NVF >= 20 % (``--nvf``; when that selects none, on the 4 % of the neurons with the highest
NVF) or, without an NVF file, on a seeded random 4 % of the neurons (the paper's LeNet-5 protects 3.99 %
at NVF >= 20 %).

Projections: the paper's full LeNet-5 campaign (7,650 faults x 10,000 images) from the measured engine
rate (setup included). The 11-threshold x 3-scheme sweep (``none,split,tmr`` at ``0:0.5:0.05``) is
projected twice: as an upper bound without any sharing (33 campaigns at the measured rates), and, with
``--nvf``, from a real :func:`resilq.campaign.sweep.run_sweep` of ``--sweep-faults`` faults per point on the
same images, i.e. with exactly the sharing the sweep does (points whose hardened networks are identical run
once; faults whose outcome provably does not depend on the threshold come from the shared cache; faults
masked at their site are never propagated). Its projection keeps each distinct network's setup (golden run
and simulator, measured on its own) and scales everything else linearly to 7,650 faults per point.
The engine runs one BLAS thread per process (see ``resilq.faultsim.simulator.BLAS_THREADS``); the naive
way is timed with the machine's BLAS threads and with one, and the faster counts. Timings on a shared machine are noisy: the load
average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_limits

os.environ.setdefault("RESILQ_QUIET", "1")

from protections import random_protection  # noqa: E402  (benchmarks/, on sys.path when run as a script)

from resilq.arith import Scheme  # noqa: E402
from resilq.campaign import (  # noqa: E402
    CampaignConfig,
    EvaluationSet,
    ExecutorBackend,
    FaultEvaluator,
    How,
    sample_faults,
)
from resilq.campaign.engine import DEFAULT_BACKEND  # noqa: E402
from resilq.campaign.sweep import harden, parse_schemes, parse_thresholds, run_sweep  # noqa: E402
from resilq.data import load_dataset  # noqa: E402
from resilq.ir import load_model  # noqa: E402
from resilq.nvf import load_nvf  # noqa: E402
from resilq.ui import table  # noqa: E402

PAPER_FAULTS, PAPER_IMAGES = 7650, 10000
SWEEP_SCHEMES, SWEEP_THRESHOLDS = "none,split,tmr", "0:0.5:0.05"


def _model(args):
    if args.model:
        return load_model(args.model)
    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    print("no --model: training LeNet-5 on the bundled digits (3 epochs) ...", flush=True)
    return train_and_export("lenet5", "digits", config=TrainConfig(epochs=3, seed=0), verify_inputs=0).model


def _nvf_protection(model, nvf, scheme: Scheme, threshold: float = 0.2, fraction: float = 0.04):
    """``scheme`` on the neurons with NVF >= 20 % as in the paper; if that selects none (small NVFs), on the
    top 4 % of the neurons by NVF instead (the paper's LeNet-5 protects 3.99 % at 20 %)."""
    from resilq.harden import HardeningPlan, TopK
    from resilq.harden import harden as protect

    net = harden(model, nvf, scheme, threshold)
    if net.n_protected:
        return f"{scheme.label} @ NVF>={threshold:.0%}", net
    k = max(1, round(fraction * model.n_neurons))
    fallback = Scheme.TMR if scheme is Scheme.SPLIT else None
    net = protect(model.unprotected(), nvf, HardeningPlan(scheme, TopK(k), fallback=fallback)).model
    return f"{scheme.label}, top {fraction:.0%} NVF", net


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
    naive = {}
    for threads in (None, 1):  # the naive way at its best: the machine's BLAS threads, or one (less contention)
        with threadpool_limits(limits=threads, user_api="blas"):
            t0 = time.perf_counter()
            naive_pred = naive_backend.predictions(sample[:naive_faults])
            naive[threads] = time.perf_counter() - t0
    naive_threads = min(naive, key=naive.get)
    naive = naive[naive_threads]
    pred, _ = evaluator.predictions(sample[:naive_faults])
    identical = bool(np.array_equal(pred, naive_pred))
    n = len(data)
    masked = int((outcomes.how == 1).sum())
    return {"setup": setup, "engine_rate": faults * n / engine, "naive_rate": naive_faults * n / naive,
            "naive_threads": "1" if naive_threads == 1 else "all",
            "identical": identical, "masked": masked, "faults": faults}


def measure_sweep(model, nvf, data, faults: int) -> dict:
    """Run the paper's sweep with ``faults`` faults per point; time it, and each distinct network's setup."""
    schemes, thresholds = parse_schemes(SWEEP_SCHEMES), parse_thresholds(SWEEP_THRESHOLDS)
    with tempfile.TemporaryDirectory(prefix="resilq-bench-sweep-") as out:
        t0 = time.perf_counter()
        result = run_sweep(model, nvf, data, out, schemes, thresholds, CampaignConfig(faults=faults, seed=0))
        total = time.perf_counter() - t0
    campaigns = {}
    for point, report in result.points:
        campaigns.setdefault(str(report.path), (point, report))
    how = np.concatenate([r.outcomes.how for _, r in campaigns.values()])
    setups = 0.0
    for point, report in campaigns.values():
        net = harden(model, nvf, point.scheme, point.threshold)
        t0 = time.perf_counter()
        evaluator = FaultEvaluator(net, data)
        if np.any(report.outcomes.how == How.PROPAGATED):  # the sweep built this network's simulator too
            evaluator.backend  # noqa: B018
        setups += time.perf_counter() - t0
    return {"points": len(result.points), "campaigns": len(campaigns), "total": total, "setup": setups,
            "faults": faults, "counts": {h.name.lower(): int((how == h).sum()) for h in How}}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--kinds" or a.startswith("--kinds=") for a in argv):  # engine vs executor per fault kind
        from campaign_kinds import main as kinds_main

        return kinds_main(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="LeNet-5 .rq (default: train one on digits)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--images", type=int, default=PAPER_IMAGES)
    p.add_argument("--nvf", default=None, help=".nvf of the model: protect NVF >= 20 %% instead of random 4 %%, "
                   "and measure a real sweep")
    p.add_argument("--faults", type=int, default=200, help="faults the engine runs per network")
    p.add_argument("--naive-faults", type=int, default=4, help="faults the naive way runs per network")
    p.add_argument("--sweep-faults", type=int, default=300,
                   help="faults per point of the measured sweep (needs --nvf; 0: skip)")
    args = p.parse_args(argv)

    model = _model(args)
    dataset = args.dataset or model.metadata.get("dataset", "digits")
    data = EvaluationSet.from_dataset(model, load_dataset(dataset, "test", args.data_dir), args.images)
    nvf = load_nvf(args.nvf, model) if args.nvf else None
    if nvf is not None:
        nets = [("unprotected", model)] + [_nvf_protection(model, nvf, s) for s in (Scheme.SPLIT, Scheme.TMR)]
    else:
        nets = [("unprotected", model), ("split, random 4%", random_protection(model, Scheme.SPLIT, 0.04)),
                ("TMR, random 4%", random_protection(model, Scheme.TMR, 0.04))]
    print(f"{model.name}: {model.n_neurons:,} neurons; {data.describe()}; engine backend: {DEFAULT_BACKEND.value}; "
          f"{args.faults} engine faults, {args.naive_faults} naive faults per network; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    rows, results = [], []
    for label, net in nets:
        r = measure(net, data, args.faults, args.naive_faults)
        results.append(r)
        rows.append([label, net.n_slots, net.n_protected, f"{r['setup']:.1f} s", f"{r['masked']}/{r['faults']}",
                     f"{r['naive_rate']:,.0f} ({r['naive_threads']})", f"{r['engine_rate']:,.0f}",
                     f"{r['engine_rate'] / r['naive_rate']:.1f}x", "yes" if r["identical"] else "NO"])
    table("faulty inferences per second: engine vs naive (one full executor pass per fault)",
          ["network", "slots", "protected", "engine setup", "masked at site", "naive inf/s (BLAS threads)", "engine inf/s", "ratio",
           "identical"], rows)
    full = PAPER_FAULTS * PAPER_IMAGES
    unprot = results[0]
    campaign = unprot["setup"] + full / unprot["engine_rate"]
    per_point = {"split": results[1], "tmr": results[2]}
    bound = campaign + sum(11 * (r["setup"] + full / r["engine_rate"]) for r in per_point.values())
    naive_campaign = full / unprot["naive_rate"]
    scale = PAPER_IMAGES / len(data)
    print(f"projected full LeNet-5 campaign ({PAPER_FAULTS:,} faults x {PAPER_IMAGES:,} images): engine "
          f"{campaign / 60:.1f} min (target < 5 min), naive {naive_campaign / 3600:.1f} h")
    print(f"projected 11-threshold x 3-scheme sweep, upper bound without any sharing: {bound / 60:.1f} min")
    if nvf is not None and args.sweep_faults > 0:
        print(f"measuring the sweep ({SWEEP_SCHEMES} at {SWEEP_THRESHOLDS}, {args.sweep_faults} faults per point, "
              f"{len(data):,} images) ...", flush=True)
        s = measure_sweep(model, nvf, data, args.sweep_faults)
        per_fault = (s["total"] - s["setup"]) / s["faults"]
        projected = scale * (s["setup"] + per_fault * PAPER_FAULTS)
        counts = ", ".join(f"{v:,} {k}" for k, v in s["counts"].items())
        print(f"  {s['points']} points -> {s['campaigns']} distinct campaigns; outcomes: {counts}; "
              f"{s['total']:.1f} s ({s['setup']:.1f} s of it setup), load average {os.getloadavg()[0]:.2f}")
        print(f"projected 11-threshold x 3-scheme sweep with its sharing ({PAPER_FAULTS:,} faults per point x "
              f"{PAPER_IMAGES:,} images): {projected / 60:.1f} min (target < 20 min)")
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
