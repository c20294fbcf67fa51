"""Exact NVF of every neuron of LeNet-5: the fault-propagation core against the naive way, in one run.

    python benchmarks/nvf.py [--model lenet5.rq --dataset fashion-mnist] [--inputs 1000] [--jobs 2]

* fast: ``exact_nvf`` of all neurons x 8 bits over the inputs (wall and CPU time);
* naive: the integer executor's full forward pass for each flipped bit, batched over the inputs (as
  PyTorchFI-style tools do), timed on a sample of neurons (all 8 bits each) and extrapolated to every
  neuron; the sample's counts must equal the fast result exactly (checked);
* where the triples (input, neuron, bit) were decided, from a single-process pass over a subset;
* the interval-bound pre-filter on and off on the same subset.

Without ``--model`` a LeNet-5 is trained on the bundled digits (3 epochs). The machine is shared: the load
average is printed next to the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from resilq.data import load_dataset
from resilq.ir import Executor, load_model
from resilq.nvf.bruteforce import brute_force_flips
from resilq.nvf.exact import critical_flips, exact_nvf
from resilq.nvf.runner import Context, Unit, single_threaded_blas


def get_model(args):
    if args.model:
        model = load_model(args.model)
        return model, args.dataset or model.metadata.get("dataset", "digits")
    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    print("training LeNet-5 on digits (3 epochs) ...", flush=True)
    return train_and_export("lenet5", "digits", config=TrainConfig(epochs=3, seed=0), verify_inputs=0).model, "digits"


def stage_breakdown(model, x, use_bounds: bool) -> tuple[float, dict]:
    ctx = Context(model, x, use_bounds)
    start = time.process_time()
    with single_threaded_blas():
        for layer in model.neuron_layers:
            critical_flips(ctx, Unit(0, x.shape[0], layer, np.arange(model.out_size(layer))))
    return time.process_time() - start, dict(ctx.propagator.stats.counts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--split", default="train")
    p.add_argument("--inputs", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--naive-neurons", type=int, default=6, help="neurons (x 8 bits) timed the naive way")
    p.add_argument("--subset", type=int, default=100, help="inputs of the single-process breakdown")
    args = p.parse_args()
    os.environ.setdefault("RESILQ_QUIET", "1")

    model, dataset = get_model(args)
    x = model.quantize_input(load_dataset(dataset, args.split).take(args.inputs).images)
    n, neurons = x.shape[0], model.n_neurons
    print(f"model {model.name}: {neurons:,} neurons; {n:,} {dataset}/{args.split} inputs; "
          f"{neurons * 8 * n:,} (input, neuron, bit) triples; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores", flush=True)

    # ---------------------------------------------------------------- fast
    before = os.times()
    wall = time.perf_counter()
    result = exact_nvf(model, x, jobs=args.jobs)
    wall = time.perf_counter() - wall
    after = os.times()
    cpu = sum(after[k] - before[k] for k in range(4))  # this process and its (finished) workers
    print(f"fast exact NVF, {args.jobs} job(s): {wall:.1f} s wall, {cpu:.1f} s CPU in total", flush=True)

    # ---------------------------------------------------------------- naive, same run
    rng = np.random.default_rng(0)
    executor = Executor(model)
    golden = executor.run(x).predictions
    sample = [(layer, int(rng.integers(0, model.out_size(layer)))) for layer in
              rng.choice(model.neuron_layers, args.naive_neurons, p=[model.out_size(i) / neurons
                                                                      for i in model.neuron_layers])]
    t = time.perf_counter()
    with single_threaded_blas():
        counts = [int(brute_force_flips(model, x, layer, [neuron], executor, golden)[0]) for layer, neuron in sample]
    naive_each = (time.perf_counter() - t) / (8 * len(sample))
    for (layer, neuron), c in zip(sample, counts):
        fast = result.values[layer][neuron] * 8 * n
        if round(fast) != c:
            print(f"MISMATCH at layer {layer} neuron {neuron}: fast {fast} vs naive {c}", file=sys.stderr)
            return 1
    naive_total = naive_each * 8 * neurons
    print(f"naive way: {naive_each * 1000:.0f} ms per flipped bit (full forward of {n:,} inputs), measured on "
          f"{8 * len(sample)} flips (their counts equal the fast result) -> {naive_total:,.0f} s for all "
          f"{8 * neurons:,} flips ({naive_total / 3600:.1f} h)")
    print(f"speed-up: {naive_total / wall:,.0f}x (target >= 100x; fast run under 180 s: {'yes' if wall < 180 else 'NO'})")

    # ---------------------------------------------------------------- where triples are decided
    sub = x[:args.subset]
    cpu_off, stats = stage_breakdown(model, sub, use_bounds=False)
    cpu_on, stats_on = stage_breakdown(model, sub, use_bounds=True)
    total = stats["cases"]
    print(f"\nwhere the {total:,} triples of {sub.shape[0]} inputs are decided (single process, "
          f"{cpu_off:.1f} s CPU; {1e6 * cpu_off / total:.2f} µs per triple):")
    distinct = stats.get("distinct", 0)
    masked = {k: v for k, v in stats.items() if k.startswith("masked by")}
    for k, v in masked.items():
        print(f"  {k:<28} {v:>11,}  {v / total:6.1%}  (one comparison each)")
    print(f"  {'merged (same pooled value)':<28} {total - sum(masked.values()) - distinct:>11,}  "
          f"{(total - sum(masked.values()) - distinct) / total:6.1%}")
    print(f"  {'propagated through cones':<28} {distinct:>11,}  {distinct / total:6.1%}")
    for k, v in stats.items():
        if k.startswith("unchanged after"):
            print(f"    {k:<26} {v:>11,}  {v / total:6.1%}")
    critical = int(round(result.all_values().sum() * 8 * n))
    print(f"critical triples (top-1 changed) over all {n:,} inputs: {critical:,} "
          f"({critical / (neurons * 8 * n):.3%})")
    proven = stats_on.get("proven by bounds", 0)
    print(f"\ninterval-bound pre-filter: proves {proven:,} of {stats_on.get('distinct', 0):,} propagated cases "
          f"harmless; CPU {cpu_on:.1f} s with it vs {cpu_off:.1f} s without (default: off)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
