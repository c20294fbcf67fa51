"""The deployment path on a host: driver + emulated device (+ C-sim) against the bit-true executor alone.

For LeNet-5 (trained on digits, ``split`` on 5 % of its neurons), per batch of images:

* ``executor``  -- ``Executor.run``: the bit-true reference, the floor;
* ``emulator``  -- ``Accelerator.run`` on ``EmulatedAccelerator``: register protocol, inputs into the
  packed image, decode (cached by the image's bytes), executor, outputs back to DDR, counters;
* ``emulator, naive`` -- the same with the decode cache cleared before every run (what a fault campaign
  would pay per fault without it);
* ``csim``      -- ``Accelerator.run`` on the C-simulated HLS C++ (``--csim``; compiles once).

Printed: milliseconds per run and per image, the emulator's overhead over the executor, and the ratio
of the naive emulator to the cached one. Timings are noisy on a shared 2-core machine; nothing asserts them.

    python benchmarks/deploy.py [--batch 64] [--repeat 5] [--csim]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from resilq.arith import Scheme
from resilq.data import load_dataset
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.faults import Fault
from resilq.hls.config import DEFAULT_CONFIG
from resilq.ir import Executor, Protection
from resilq.ui import table


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--csim", action="store_true", help="also time the C-simulated accelerator")
    args = parser.parse_args()

    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    model = train_and_export("lenet5", "digits", config=TrainConfig(epochs=1, seed=0), verify_inputs=0).model
    rng = np.random.default_rng(0)
    model = model.with_protection({i: Protection(Scheme.SPLIT, np.sort(rng.choice(model.out_size(i), max(
        1, model.out_size(i) // 20), replace=False)).astype(np.int32)) for i in model.neuron_layers})
    x = model.quantize_input(load_dataset("digits", "test").images[:args.batch])
    fault = Fault.bit_flip(model.neuron_layers[0], 100, 6)
    executor = Executor(model)
    device = EmulatedAccelerator()
    accel = Accelerator(device, model, DEFAULT_CONFIG, batch=args.batch)

    def naive() -> None:
        device._cache = None
        accel.run(x, fault)

    rows = []
    t_exec = best_of(args.repeat, lambda: executor.run(x, faults=[fault]))
    t_emu = best_of(args.repeat, lambda: accel.run(x, fault))
    t_naive = best_of(args.repeat, naive)
    rows += [("executor", t_exec), ("emulator", t_emu), ("emulator, naive (no decode cache)", t_naive)]
    if args.csim:
        from resilq.deploy.targets import CsimTarget

        sim = Accelerator(CsimTarget.open(DEFAULT_CONFIG), model, DEFAULT_CONFIG, batch=args.batch)
        rows.append(("csim", best_of(max(1, args.repeat // 2), lambda: sim.run(x, fault))))
    table(f"{model.name} (split 5 %), {args.batch} images per run, one fault, best of {args.repeat}",
          ("path", "ms per run", "us per image", "vs executor"),
          [(name, 1e3 * t, 1e6 * t / args.batch, f"{t / t_exec:.2f}x") for name, t in rows],
          caption=f"naive emulator / cached emulator = {t_naive / t_emu:.2f}x")


if __name__ == "__main__":
    main()
