"""Scaling law of the fault-propagation core: cost per NVF triple and per faulty inference, layer by layer.

    python benchmarks/scaling.py --model lenet5.rq --model mlp7.rq --model alexnet.rq [--inputs 20] [--neurons 48]
        [--inputs-file inputs-lenet5.npy --inputs-file ...]   # inputs saved by benchmarks/zoo_models.py

For every neuron layer of every model (one process, one BLAS thread, as the analysis and campaigns run):

* NVF: ``critical_flips`` on ``--neurons`` evenly spread neurons of the layer over ``--inputs`` inputs: CPU
  seconds per (input, neuron, bit) triple;
* campaign: ``--faults`` single-bit faults on evenly spread neurons of the layer over the same inputs through
  :class:`resilq.faultsim.FaultSimulator`: CPU seconds per faulty inference;
* the naive way for reference: one full executor pass per input (the cost of ONE faulty inference or
  triple without propagation), and the share of the cases each step retired (where time goes).

Each model's test inputs come from the dataset it records (``--dataset`` overrides it). The machine is
shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("RESILQ_QUIET", "1")

from resilq.data import load_dataset  # noqa: E402
from resilq.faults import Fault  # noqa: E402
from resilq.faultsim import FaultSimulator  # noqa: E402
from resilq.ir import Executor, load_model  # noqa: E402
from resilq.nvf.exact import critical_flips  # noqa: E402
from resilq.nvf.runner import Context, Unit, single_threaded_blas  # noqa: E402
from resilq.ui import table  # noqa: E402


def spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


def cpu(fn) -> tuple[float, object]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def load_inputs(model, dataset: str | None, inputs_file: str | None, inputs: int) -> np.ndarray:
    """``inputs`` int8 test inputs: from ``inputs_file`` (a .npy of float images, benchmarks/zoo_models.py) when
    given, else from the dataset the model records (or ``dataset``)."""
    if inputs_file:
        return model.quantize_input(np.load(inputs_file)[:inputs])
    data = load_dataset(dataset or model.metadata.get("dataset", "digits"), "test")
    return model.quantize_input(data.take(inputs).images)


def measure(path: str, dataset: str | None, inputs: int, neurons: int, faults: int,
            inputs_file: str | None = None) -> list[list]:
    model = load_model(path)
    x = load_inputs(model, dataset, inputs_file, inputs)
    inputs = x.shape[0]
    rows = []
    with single_threaded_blas():
        full, _ = cpu(lambda: Executor(model).run(x))
        per_inference = full / inputs
        ctx = Context(model, x, False)
        ctx.golden(0, inputs)
        sim = FaultSimulator(model, x)
        rng = np.random.default_rng(0)
        weighted = []
        for depth, layer in enumerate(model.neuron_layers):
            idx = spread(model.out_size(layer), neurons)
            before = dict(ctx.propagator.stats.counts)
            t_nvf, _ = cpu(lambda layer=layer, idx=idx: critical_flips(ctx, Unit(0, inputs, layer, idx)))
            after = ctx.propagator.stats.counts
            cases = after["cases"] - before.get("cases", 0)
            same = after["same value"] - before.get("same value", 0)
            pooled = sum(v - before.get(k, 0) for k, v in after.items() if k.startswith("masked by"))
            fl = [Fault.bit_flip(layer, int(n), int(rng.integers(0, 8))) for n in spread(model.out_size(layer), faults)]
            t_camp, _ = cpu(lambda fl=fl: sim.predictions(fl))
            per_triple = t_nvf / (idx.size * inputs * 8)
            per_fault = t_camp / (len(fl) * inputs)
            rows.append([model.name, depth + 1, model.layers[layer].name, f"{model.out_size(layer):,}",
                         f"{per_triple * 1e6:,.1f}", f"{per_fault * 1e6:,.1f}", f"{per_inference * 1e6:,.0f}",
                         f"{per_inference / per_fault:,.0f}x",
                         f"{(same + pooled) / max(cases, 1):.0%}"])
            weighted.append((model.out_size(layer), per_triple))
    sizes = np.array([w for w, _ in weighted], dtype=np.float64)
    mean = float(np.dot(sizes, [t for _, t in weighted]) / sizes.sum())
    print(f"{model.name}: {model.n_neurons:,} neurons, full inference {per_inference * 1e6:,.0f} µs; NVF cost per "
          f"triple averaged over all neurons {mean * 1e6:,.2f} µs -> exact NVF of every neuron over 100 inputs "
          f"{mean * model.n_neurons * 800:,.0f} s on one core (load {os.getloadavg()[0]:.2f})", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, help=".rq file (repeat for several)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--inputs-file", action="append", default=None,
                   help=".npy of float images per --model, in the same order (benchmarks/zoo_models.py)")
    p.add_argument("--inputs", type=int, default=20)
    p.add_argument("--neurons", type=int, default=48, help="neurons per layer for the NVF triples")
    p.add_argument("--faults", type=int, default=48, help="faults per layer for the campaign cost")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.inputs} inputs, CPU time",
          flush=True)
    rows = []
    files = args.inputs_file or [None] * len(args.model)
    if len(files) != len(args.model):
        p.error("give one --inputs-file per --model")
    for path, inputs_file in zip(args.model, files):
        rows += measure(path, args.dataset, args.inputs, args.neurons, args.faults, inputs_file)
    table("cost per NVF triple and per faulty inference, by layer (µs of CPU, one BLAS thread)",
          ["model", "depth", "layer", "neurons", "µs / triple", "µs / faulty inference", "µs / full inference",
           "full / faulty", "triples retired at the site or pool"], rows)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
