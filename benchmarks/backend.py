"""Fault-simulator backends on one workload: the naive way, the numpy core and torch (CPU), in the same run.

    python benchmarks/backend.py --model alexnet.rq --inputs-file inputs-alexnet.npy [--inputs 20] [--neurons 8]

Workload: the exact NVF triples (``critical_flips``) of ``--neurons`` evenly spread neurons of every neuron
layer over ``--inputs`` inputs, one process, one BLAS / torch thread (as the analysis runs). Backends: numpy
(im2col + matmul for a wide patch), torch with its own convolution (``F.conv2d``: oneDNN on this CPU) and
torch with unfold + matmul. Their counts must be identical (checked). For each: CPU seconds in total and inside
the two kernels (``conv`` of a wide patch, ``matmul`` of a cone), so the ratio of the kernels themselves is
printed beside the ratio of the whole analysis. The naive way (one full executor pass per flipped bit) is
timed on ``--naive-neurons`` neurons x 8 bits. The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np

os.environ.setdefault("RESILQ_QUIET", "1")

from resilq.faultsim.backend import NUMPY, TorchBackend  # noqa: E402
from resilq.ir import Executor, load_model  # noqa: E402
from resilq.nvf.bruteforce import brute_force_flips  # noqa: E402
from resilq.nvf.exact import critical_flips  # noqa: E402
from resilq.nvf.runner import Context, Unit, single_threaded_blas  # noqa: E402


class Timed:
    """Delegates to a backend and adds up the CPU seconds of each kernel."""

    def __init__(self, inner):
        self.inner, self.name, self.seconds, self.calls = inner, inner.name, Counter(), Counter()

    def _timed(self, kernel, *args):
        t = time.process_time()
        out = getattr(self.inner, kernel)(*args)
        self.seconds[kernel] += time.process_time() - t
        self.calls[kernel] += 1
        return out

    def matmul(self, a, b):
        return self._timed("matmul", a, b)

    def conv(self, grid, layer, weights):
        return self._timed("conv", grid, layer, weights)


def spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


def run(model, x, backend, neurons: int) -> tuple[float, dict]:
    ctx = Context(model, x, False)
    timed = Timed(backend)
    for step in ctx.propagator.steps.values():  # the same propagator, its kernels timed
        if hasattr(step, "backend"):
            step.backend = timed
    ctx.golden(0, x.shape[0])
    counts = {}
    t = time.process_time()
    for layer in model.neuron_layers:
        counts[layer] = critical_flips(ctx, Unit(0, x.shape[0], layer, spread(model.out_size(layer), neurons)))
    return time.process_time() - t, counts, timed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--inputs-file", required=True, help=".npy of float images (benchmarks/zoo_models.py)")
    p.add_argument("--inputs", type=int, default=20)
    p.add_argument("--neurons", type=int, default=8, help="neurons per layer")
    p.add_argument("--naive-neurons", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2, help="runs per backend (the fastest counts)")
    args = p.parse_args(argv)
    model = load_model(args.model)
    x = model.quantize_input(np.load(args.inputs_file)[: args.inputs])
    triples = sum(spread(model.out_size(i), args.neurons).size for i in model.neuron_layers) * 8 * x.shape[0]
    print(f"{model.name}: {triples:,} triples ({args.neurons} neurons per layer x 8 bits x {x.shape[0]} inputs); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    backends = [NUMPY, TorchBackend("cpu", "native"), TorchBackend("cpu", "im2col")]
    labels = ["numpy (im2col + matmul)", "torch cpu (F.conv2d)", "torch cpu (unfold + matmul)"]
    results, reference = [], None
    with single_threaded_blas():
        for backend, label in zip(backends, labels):
            best = None
            for _ in range(args.repeat):
                total, counts, timed = run(model, x, backend, args.neurons)
                if best is None or total < best[0]:
                    best = (total, timed)
            if reference is None:
                reference = counts
            elif any(not np.array_equal(counts[i], reference[i]) for i in reference):
                print(f"MISMATCH: {label} counts differ from numpy", file=sys.stderr)
                return 1
            results.append((label, *best))
            print(f"  {label:<28} {best[0]:7.2f} s CPU, {1e6 * best[0] / triples:7.2f} µs / triple; conv "
                  f"{best[1].seconds['conv']:6.2f} s ({best[1].calls['conv']:,} calls), matmul "
                  f"{best[1].seconds['matmul']:6.2f} s ({best[1].calls['matmul']:,} calls); load "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
        rng = np.random.default_rng(0)
        executor = Executor(model)
        golden = executor.run(x).predictions
        layer = int(rng.choice(model.neuron_layers))
        t = time.process_time()
        brute_force_flips(model, x, layer, spread(model.out_size(layer), args.naive_neurons), executor, golden)
        naive = (time.process_time() - t) / (8 * args.naive_neurons * x.shape[0])
    base = results[0]
    print(f"naive way: {1e6 * naive:,.0f} µs / triple (one executor pass per flipped bit, "
          f"{8 * args.naive_neurons} flips of layer {model.layers[layer].name})")
    for label, total, timed in results:
        conv = timed.seconds["conv"]
        kernel = f"conv kernel numpy/this {base[2].seconds['conv'] / conv:.2f}x" if conv else "no wide convolution"
        print(f"  {label:<28} naive/this {naive * triples / total:7.1f}x, numpy/this {base[1] / total:.2f}x, {kernel}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
