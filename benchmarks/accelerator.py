"""Accelerator cycles per inference (cycle model, confirmed by the C-simulated counter) and resources.

For LeNet-5 and MLP-7 at the default PE x SIMD: unprotected vs `split` vs `tmr` with the critical set at
NVF >= 20 % (from ``--nvf`` files), cycles per inference and microseconds at the board's PL clock, the
shadow overhead, the speed-up over the naive datapath (one output lane, PE=1) computed in the same run,
and the estimated resources against the PYNQ-Z2 budget.

Without an ``.nvf`` file for a model (the NVF analysis is issue #3), the critical set falls back to a
clearly labelled proxy: the k neurons with the largest mean activation on test images, k being the
paper's Table I count at NVF >= 20 % scaled to the model (MLP-7 17.86 %, LeNet-5 3.99 %, else 5 %).

    python benchmarks/accelerator.py                         # trains both on digits (2 epochs each)
    python benchmarks/accelerator.py --model lenet5.rq --nvf lenet5.nvf --model mlp7.rq
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from resilq.arith import Scheme
from resilq.boards import load_board
from resilq.data import load_dataset
from resilq.hls.config import AccelConfig
from resilq.hls.cycles import cycle_report
from resilq.hls.resources import check_budget, utilisation_rows
from resilq.ir import Executor, Model, Protection, load_model
from resilq.nvf import load_nvf
from resilq.ui import say, table

#: Portion of neurons with NVF >= 20 % in the paper's Table I.
PAPER_PORTION_AT_20 = {"mlp7": 503 / 2816, "lenet5": 187 / 4684}


def trained_models(epochs: int) -> list[Model]:
    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    return [train_and_export(arch, "digits", config=TrainConfig(epochs=epochs, seed=0), verify_inputs=0).model
            for arch in ("lenet5", "mlp7")]


def critical_set(model: Model, nvf_files: list[Path], threshold: float, x: np.ndarray) -> tuple[dict, str]:
    """Per-layer sorted critical neurons and a label saying where they come from."""
    for path in nvf_files:
        nvf = load_nvf(path)
        if nvf.network_hash == model.network_hash:
            nvf.check_model(model)
            return nvf.critical(threshold), f"NVF >= {threshold:.0%} from {path.name} ({nvf.method})"
    portion = PAPER_PORTION_AT_20.get(model.name, 0.05)
    k = max(1, round(portion * model.n_neurons))
    acts = Executor(model).run(x, collect=True).activations
    scores = np.concatenate([acts[i].reshape(x.shape[0], -1).astype(np.float64).mean(axis=0)
                             for i in model.neuron_layers])
    chosen = np.sort(np.argsort(-scores, kind="stable")[:k])
    starts = np.cumsum([0] + [model.out_size(i) for i in model.neuron_layers])
    out = {}
    for j, i in enumerate(model.neuron_layers):
        sel = chosen[(chosen >= starts[j]) & (chosen < starts[j + 1])] - starts[j]
        out[i] = sel.astype(np.int32)
    return out, (f"PROXY (no .nvf for this network): top-{k} neurons by mean activation, k = the paper's "
                 f"NVF>=20% portion {portion:.2%}")


def protected(model: Model, crit: dict, scheme: Scheme) -> Model:
    return model.with_protection({i: Protection(scheme, v) for i, v in crit.items() if v.size})


def measured_cycles(model: Model, config: AccelConfig, x: np.ndarray) -> tuple[int, float, float]:
    """CYCLES per inference from the C-simulated accelerator, its wall time and the executor's, for x."""
    from resilq.hls.simulate import CsimAccelerator

    acc = CsimAccelerator(model, config, batch=x.shape[0], keep_activations=False)
    t = time.perf_counter()
    run = acc.run(x, collect=False)
    t_csim = time.perf_counter() - t
    t = time.perf_counter()
    ref = Executor(model).run(x)
    t_exec = time.perf_counter() - t
    assert np.array_equal(run.logits, ref.logits), "C-sim and executor disagree"
    report = cycle_report(model, config)
    return (run.cycles - report.run_overhead) // x.shape[0], t_csim, t_exec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, action="append", default=[], help=".rq model (repeatable)")
    p.add_argument("--nvf", type=Path, action="append", default=[], help=".nvf file (matched to models by hash)")
    p.add_argument("--threshold", type=float, default=0.2)
    p.add_argument("--pe", type=int, default=AccelConfig.pe)
    p.add_argument("--simd", type=int, default=AccelConfig.simd)
    p.add_argument("--board", default="pynq-z2")
    p.add_argument("--epochs", type=int, default=2, help="training epochs when no --model is given")
    p.add_argument("--csim-images", type=int, default=32, help="images the C-sim runs to confirm the counter")
    args = p.parse_args()

    board = load_board(args.board)
    config, naive = AccelConfig(pe=args.pe, simd=args.simd), AccelConfig(pe=1, simd=args.simd)
    est = check_budget(config, board)
    table(f"Resources: PE={config.pe} x SIMD={config.simd} on {board.name} ({board.part}), analytic estimate",
          ("resource", "estimated", "available", "use"), utilisation_rows(est, board))

    models = [load_model(m) for m in args.model] if args.model else trained_models(args.epochs)
    data = load_dataset("digits", "test")
    for model in models:
        x = model.quantize_input(data.images[:256])
        crit, label = critical_set(model, args.nvf, args.threshold, x)
        rows, base = [], None
        for name, variant in [("unprotected", model), ("split", protected(model, crit, Scheme.SPLIT)),
                              ("tmr", protected(model, crit, Scheme.TMR))]:
            rep, rep_naive = cycle_report(variant, config), cycle_report(variant, naive)
            cyc, t_csim, t_exec = measured_cycles(variant, config, x[:args.csim_images])
            assert cyc == rep.per_inference, f"C-sim counter {cyc} != cycle model {rep.per_inference}"
            base = base or rep.per_inference
            rows.append((name, variant.n_protected, variant.n_slots, rep.per_inference,
                         rep.microseconds(board.pl_mhz), f"{rep.per_inference / base - 1:+.1%}",
                         f"{rep_naive.per_inference / rep.per_inference:.2f}x",
                         f"{t_csim * 1e3 / args.csim_images:.2f} / {t_exec * 1e3 / args.csim_images:.2f}"))
        table(f"{model.name}: cycles per inference at PE={config.pe} x SIMD={config.simd}, {board.pl_mhz:g} MHz",
              ("variant", "protected", "slots", "cycles", "us", "vs unprotected", f"vs PE=1 ({naive.pe}x{naive.simd})",
               "ms/img csim / executor"), rows,
              caption=f"critical set: {label}. Cycles: model == C-sim CYCLES on {args.csim_images} images.")
        split_extra = rows[1][3] - rows[0][3]
        tmr_extra = rows[2][3] - rows[0][3]
        if split_extra:
            say(f"  {model.name}: TMR's extra cycles / split's extra cycles = {tmr_extra / split_extra:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
