"""Step ``deploy``: a deployment package per hardened variant, run through the driver on the configured
target (the emulated accelerator by default), and chain-of-trust link #3: the driver's predictions and
cycle counters against the executor and the cycle model, and a device fault-injection campaign (register
pokes) against the Python campaign engine, fault by fault."""

from __future__ import annotations

import time

import numpy as np

from ...ir import Executor
from ...ui import say
from ..context import Context


def run(ctx: Context) -> dict:
    from resilq.boards import load_board
    from resilq.deploy.build import PackageRequest, build_package
    from resilq.deploy.campaign import compare_campaigns, run_device_campaign
    from resilq.deploy.driver import Accelerator
    from resilq.deploy.package import BundledData, load_package
    from resilq.deploy.targets import Target, open_device
    from resilq.hls.config import AccelConfig
    from resilq.hls.cycles import cycle_report

    from ...campaign import CampaignConfig, EvaluationSet, run_campaign
    from ...campaign.sampling import FaultModel
    from .hls import variants

    cfg = ctx.config.deploy
    board = load_board(ctx.config.hls.board)
    config = AccelConfig(pe=ctx.config.hls.pe, simd=ctx.config.hls.simd)
    out = ctx.dir("deploy")
    dataset = ctx.summary("train")["dataset"]
    test = ctx.dataset("test").take(cfg.images or None)
    target = Target.parse(cfg.target)
    results, checks = [], []
    for label, model in variants(ctx):
        src = ctx.out / ("train/model.rq" if label == "unprotected" else f"harden/{label}.rq")
        x = model.quantize_input(test.images)
        labels = test.labels.astype(np.int64)
        pkg_dir = build_package(PackageRequest(src, board, out / f"package-{label}", config, batch=64,
                                               data=BundledData(x, labels, dataset, "test", 0)))
        pkg = load_package(pkg_dir)
        device = open_device(target, pkg.config, pkg.bitfile if target is Target.BOARD else None)
        accel = Accelerator(device, pkg.model, pkg.config, batch=pkg.batch)
        start = time.perf_counter()
        run = accel.run_all(x)
        wall = time.perf_counter() - start
        ref = Executor(model).run(x, collect=False)
        expected_cycles = sum(cycle_report(model, config).run(min(pkg.batch, x.shape[0] - s))
                              for s in range(0, x.shape[0], pkg.batch))
        same = bool(np.array_equal(run.logits, ref.logits))
        accuracy = float((run.predictions == labels).mean())
        results.append({"variant": label, "package": ctx.relative(pkg_dir), "images": int(x.shape[0]),
                        "accuracy": accuracy, "cycles": int(run.cycles), "cycles_per_image": run.cycles / x.shape[0],
                        "corrections": int(run.corrections), "host_seconds": wall})
        say(f"{label} on {target.value}: accuracy {accuracy:.2%} over {x.shape[0]} images, "
            f"{run.cycles / x.shape[0]:,.0f} cycles/image, logits {'equal' if same else 'DIFFER from'} the executor's")

        campaign = {"faults": 0}
        if cfg.faults:
            data = EvaluationSet(x, labels, dataset, "test", 0)
            kind = ctx.config.kind_spec()  # the campaign step's kind: registers, image or upset lists on the device
            plan = CampaignConfig(FaultModel.parse(ctx.config.campaign.fault_model),
                                  None if kind.kind == "ber" else cfg.faults, ctx.config.campaign.seed, kind=kind)
            engine_db, device_db = out / f"{label}-engine.db", out / f"{label}-{target.value}.db"
            ctx.fresh_on_mismatch(engine_db, run_campaign, model, data, engine_db, plan, description=f"engine {label}")
            ctx.fresh_on_mismatch(device_db, run_device_campaign, accel, data, device_db, plan, target.value)
            cmp = compare_campaigns(engine_db, device_db)
            campaign = {"faults": int(cmp.compared.size), "mismatched": int(cmp.mismatched.size)}
        ok = same and run.cycles == expected_cycles and campaign.get("mismatched", 0) == 0
        checks.append({"variant": label, "status": "pass" if ok else "FAIL", "logits_equal": same,
                       "cycles": int(run.cycles), "cycles_model": int(expected_cycles), "campaign": campaign})
    return {"target": target.value, "board": board.name, "results": results,
            "trust_driver_executor": {"status": "pass" if all(c["status"] == "pass" for c in checks) else "FAIL",
                                      "checks": checks}}
