"""Start-up of a campaign's workers: golden chunks divided between processes by claims vs computed by each.

    python benchmarks/golden_startup.py --model alexnet.rq --dataset fashion-mnist-rgb32 [--images 2000]

``--workers`` processes (default 2) build a :class:`resilq.faultsim.FaultSimulator` on the same inputs at once,
with a golden cache smaller than the inputs (so the chunks go through the spill, as in a large campaign):
first each on a spill folder of its own (the naive way: every process computes every chunk), then all on one
shared folder (claims: each chunk computed once, read back by the others). Prints each process's wall time
and the ratio of the slowest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from multiprocessing import get_context

from resilq.validation import positive_int


def _build(model_path: str, dataset: str, data_dir: str | None, images: int, batch: int, cache: int,
           spill: str, queue) -> None:
    os.environ.setdefault("RESILQ_QUIET", "1")
    from resilq.campaign import EvaluationSet
    from resilq.data import load_dataset
    from resilq.faultsim import FaultSimulator
    from resilq.faultsim.allocator import tune_for_arrays
    from resilq.ir import load_model

    tune_for_arrays()
    model = load_model(model_path)
    x = EvaluationSet.from_dataset(model, load_dataset(dataset, "test", data_dir), images).x
    t0 = time.perf_counter()
    sim = FaultSimulator(model, x, batch_size=batch, cache_bytes=cache, spill_dir=spill, blas_threads=1)
    queue.put((time.perf_counter() - t0, sim.n_chunks))


def run(args, shared: bool) -> list[float]:
    root = tempfile.mkdtemp(prefix="resilq-startup-")
    try:
        ctx = get_context("spawn")
        queue = ctx.Queue()
        folders = [root if shared else os.path.join(root, str(w)) for w in range(args.workers)]
        procs = [ctx.Process(target=_build, args=(args.model, args.dataset, args.data_dir, args.images, args.batch,
                                                  args.cache_mib << 20, f, queue)) for f in folders]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            if p.exitcode:
                raise SystemExit(f"a worker failed (exit code {p.exitcode})")
        return sorted(queue.get()[0] for _ in procs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--images", type=positive_int, default=2000)
    p.add_argument("--batch", type=positive_int, default=250, help="images per golden chunk")
    p.add_argument("--cache-mib", type=positive_int, default=300, help="golden cache per process (smaller than the inputs)")
    p.add_argument("--workers", type=positive_int, default=2)
    args = p.parse_args(argv)
    alone = run(args, shared=False)
    claims = run(args, shared=True)
    print(f"{args.workers} processes, {args.images:,} images in chunks of {args.batch} "
          f"(load {os.getloadavg()[0]:.1f}):")
    print("  own spill each (every chunk computed by every process): " + ", ".join(f"{t:.1f} s" for t in alone))
    print("  one shared spill (claims: each chunk computed once):     " + ", ".join(f"{t:.1f} s" for t in claims))
    print(f"  slowest process: {alone[-1] / claims[-1]:.2f}x faster with claims")
    return 0


if __name__ == "__main__":
    sys.exit(main())
