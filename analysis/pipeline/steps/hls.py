"""Step ``hls``: the accelerator build for the board (resources vs its budget, the Vitis HLS project's
generated files), cycles per inference of every variant, and chain-of-trust link #2: the C-simulated
accelerator against the executor, every layer, fault-free and with faults in the registers."""

from __future__ import annotations

import numpy as np

from ...ir import Executor, load_model
from ...ui import say
from ..context import Context


def variants(ctx: Context) -> list[tuple[str, object]]:
    """(label, model) of the unprotected network and every hardened variant of step ``harden``."""
    out = [("unprotected", ctx.model())]
    if ctx.has("harden"):
        for v in ctx.summary("harden")["variants"]:
            out.append((v["scheme"], load_model(ctx.file("harden", v["file"]))))
    return out


def csim_check(model, config, x: np.ndarray, faults: int, seed: int) -> dict:
    """Every layer's int8 output and the logits of the C-sim equal the executor's; so do the logits under
    ``faults`` sampled faults; the MODEL_CYCLES counter (the kernel's cycle model) equals the Python cycle model."""
    from resilq.hls.cycles import cycle_report
    from resilq.hls.simulate import CsimAccelerator

    from ...campaign import sample_faults

    accel = CsimAccelerator(model, config, batch=x.shape[0])
    ref = Executor(model).run(x, collect=True)
    run = accel.run(x)
    layers = [{"layer": model.layers[i].name, "elements": int(a.size),
               "mismatches": int(np.count_nonzero(np.asarray(a).reshape(a.shape[0], -1)
                                                  != np.asarray(r).reshape(r.shape[0], -1)))}
              for i, (a, r) in enumerate(zip(run.activations, ref.activations))]
    logits_equal = bool(np.array_equal(run.logits, ref.logits))
    differing = 0
    sample = sample_faults(model, n=faults, seed=seed).faults() if faults else []
    for fault in sample:
        if not np.array_equal(accel.run(x, fault=fault, collect=False).logits,
                              Executor(model).run(x, faults=[fault], collect=False).logits):
            differing += 1
    expected_cycles = cycle_report(model, config).run(x.shape[0])
    ok = logits_equal and not any(layer["mismatches"] for layer in layers) and differing == 0 \
        and run.cycles == expected_cycles
    return {"status": "pass" if ok else "FAIL", "images": int(x.shape[0]), "layers": layers,
            "logits_equal": logits_equal, "faults": len(sample), "faults_differing": differing,
            "cycles": int(run.cycles), "cycles_model": int(expected_cycles)}


def describe_check(check: dict) -> str:
    """One line saying what a :func:`csim_check` found, e.g. ``pass: 4 images bit-exact vs the executor at every
    layer, 10/10 faults equal, MODEL_CYCLES 445,452 = the cycle model``, or where it differs."""
    wrong = [f"{layer['layer']} {layer['mismatches']:,}/{layer['elements']:,}" for layer in check["layers"]
             if layer["mismatches"]]
    layers = ("bit-exact vs the executor at every layer" if not wrong and check["logits_equal"] else
              "DIFFERENT from the executor: " + ", ".join(wrong or ["logits"]) + " int8 values differ")
    cycles = (f"MODEL_CYCLES {check['cycles']:,} = the cycle model" if check["cycles"] == check["cycles_model"] else
              f"MODEL_CYCLES {check['cycles']:,} != the cycle model's {check['cycles_model']:,}")
    return (f"{check['status']}: {check['images']} images {layers}, "
            f"{check['faults'] - check['faults_differing']}/{check['faults']} faults equal, {cycles}")


def run(ctx: Context) -> dict:
    from resilq.boards import load_board
    from resilq.hls.config import AccelConfig
    from resilq.hls.csim import compiler
    from resilq.hls.cycles import cycle_report
    from resilq.hls.project import write_project
    from resilq.hls.resources import utilisation_rows

    cfg = ctx.config.hls
    board = load_board(cfg.board)
    config = AccelConfig(pe=cfg.pe, simd=cfg.simd)
    out = ctx.dir("hls")
    project = write_project(config, board, out / "project")  # refuses a build over the board's budget
    resources = [{"resource": r, "estimated": used, "available": avail, "utilisation": pct}
                 for r, used, avail, pct in utilisation_rows(project.estimate, board)]
    cycles = []
    nets = variants(ctx)
    for label, model in nets:
        rep = cycle_report(model, config)
        cycles.append({"variant": label, "slots": model.n_slots, "cycles": rep.per_inference,
                       "microseconds": rep.microseconds(board.pl_mhz),
                       "layers": [{"layer": layer.name, "cycles": layer.total} for layer in rep.layers]})
    base = cycles[0]["cycles"]
    for c in cycles:
        c["overhead"] = c["cycles"] / base - 1
    say("cycles per inference at " f"{board.pl_mhz:g} MHz: " +
        ", ".join(f"{c['variant']} {c['cycles']:,} ({c['microseconds']:.0f} µs)" for c in cycles))

    trust: dict = {"status": "skipped", "reason": "hls.csim_images = 0"}
    if cfg.csim_images:
        try:
            compiler()
        except Exception as exc:  # no g++: say so in the report rather than pretend
            trust = {"status": "skipped", "reason": str(exc)}
        else:
            test = ctx.dataset("test")
            x = nets[0][1].quantize_input(test.take(cfg.csim_images).images)
            checks = []
            for label, model in nets:
                check = {"variant": label, **csim_check(model, config, x, cfg.csim_faults, ctx.config.campaign.seed)}
                checks.append(check)
                say(f"C-sim {label}: {describe_check(check)}")
            trust = {"status": "pass" if all(c["status"] == "pass" for c in checks) else "FAIL", "checks": checks}
    return {"board": board.name, "part": board.part, "clock_mhz": board.pl_mhz, "pe": cfg.pe, "simd": cfg.simd,
            "resources": resources, "project": ctx.relative(project.directory),
            "build": f"resilq hls ip --pe {cfg.pe} --simd {cfg.simd} --board {board.name} --out {out / 'ip'}  "
                     "(needs Vitis HLS; then make -C overlays BOARD=" + board.name + " for the .bit/.hwh)",
            "cycles": cycles, "trust_csim_executor": trust}
