"""Commands on a deployment package, shared by the host (``resilq run PKG ...``) and the board
(``python3 PKG run ...``, through the package's ``__main__.py``).

Module-level imports are the standard library and :mod:`.environment` only: the board entry checks the
interpreter's Python/numpy/pynq versions before anything imports numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from resilq.validation import MAX_TIMEOUT_S, non_negative_int, positive_int, timeout_seconds

from . import environment

DATASETS = ("bundled", "digits", "mnist", "fashion-mnist", "cifar10")


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="emulator", choices=("board", "emulator", "csim"),
                   help="board: the PYNQ-Z2 overlay (pynq); emulator: the bit-true emulated device; "
                        "csim: the HLS C++ compiled with g++ (host only)")
    p.add_argument("--dataset", default="bundled", choices=DATASETS,
                   help="bundled: the evaluation set packed into the package (default); otherwise a dataset "
                        "read with --data-dir (digits needs scikit-learn)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="directory of the dataset's standard files")
    p.add_argument("--images", type=positive_int, default=None, metavar="N", help="images to run (default: all)")
    p.add_argument("--offset", type=non_negative_int, default=0, help="first image of the test split")
    p.add_argument("--fault", default=None, metavar="LAYER:SLOT:BIT",
                   help="inject a bit flip at this slot (resilq.faults numbering) in every inference")
    p.add_argument("--verify", action="store_true",
                   help="also run the bit-true executor and the cycle model; exit 1 on any difference")
    p.add_argument("--keep-weights", action="store_true",
                   help="keep the network's weights on chip between runs where they fit the kernel's buffers "
                        "(runs after the first load none; docs/accelerator.md)")
    p.add_argument("--timeout", type=timeout_seconds, default=30.0,
                   help=f"seconds to wait for AP_DONE per run (default 30, at most {MAX_TIMEOUT_S:g})")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the results as JSON")


def parse_fault(text: str | None):
    from resilq.errors import ParameterError
    from resilq.faults import Fault

    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise ParameterError(f"--fault takes LAYER:SLOT:BIT (non-negative integers), got {text!r}")
    layer, slot, bit = (int(p) for p in parts)
    if bit > 7:
        raise ParameterError(f"--fault bit must lie in 0..7, got {bit}")
    return Fault.bit_flip(layer, slot, bit)


def evaluation_data(pkg, dataset: str | None, data_dir, images: int | None, offset: int, split: str = "test"):
    """The images to run: the package's bundled set (``dataset`` None or ``bundled``) or a dataset's split.

    Returns a :class:`resilq.campaign.engine.EvaluationSet` (int8 inputs, labels, dataset, split, offset):
    the same object, with the same digest, a host campaign builds from the same images.
    """
    import numpy as np

    from resilq.campaign.engine import EvaluationSet
    from resilq.errors import ParameterError

    from .package import load_bundled_data

    if dataset in (None, "bundled"):
        data = load_bundled_data(pkg)
        if data is None:
            raise ParameterError(f"{pkg.path} carries no evaluation set: pass --dataset and --data-dir "
                                 "(or package with --dataset)")
        stop = None if images is None else offset + images
        x, labels = data.x[offset:stop], data.labels[offset:stop]
        name, split, first = data.dataset, data.split, data.offset + offset
    else:
        from resilq.data import load_dataset

        part = load_dataset(dataset, split, data_dir).take(images, offset)
        x, labels, name, first = pkg.model.quantize_input(part.images), part.labels.astype(np.int64), part.name, offset
    if len(labels) == 0:
        raise ParameterError("no images selected (check --images and --offset)")
    return EvaluationSet(np.ascontiguousarray(x), labels, name, split, first)


def run_package(pkg, args: argparse.Namespace) -> int:
    """``run``: accuracy, measured and modelled latency, counters of the package's network on a target."""
    import numpy as np

    from resilq.hls.cycles import cycle_report
    from resilq.ui import say, table

    from .driver import Accelerator
    from .targets import Target, open_device

    target = Target.parse(args.target)
    if target is Target.BOARD:
        pkg.overlay_ip()  # refuses a package without (or with a mismatched) overlay, naming it
    data = evaluation_data(pkg, args.dataset, args.data_dir, args.images, args.offset)
    x, labels, what = data.x, data.labels, data.describe()
    fault = parse_fault(args.fault)
    device = open_device(target, pkg.config, pkg.bitfile if target is Target.BOARD else None, pkg.clocks)
    accel = Accelerator(device, pkg.model, pkg.config, batch=pkg.batch, timeout=args.timeout,
                        keep_weights=args.keep_weights)
    result = accel.run_all(x, fault)
    pred = result.predictions
    kept = accel.image.weights_tag != 0
    report = cycle_report(pkg.model, pkg.config, kept=kept, warm=kept)  # kept: a run after the first
    n = result.images
    measured_us = 1e6 * result.measured_seconds / n
    modelled_us = result.cycles / pkg.pl_mhz / n  # the kernel's MODEL_CYCLES, runs' fixed costs included
    out = {"target": target.value, "model": pkg.model.name, "data": what, "images": n,
           "accuracy": float(np.mean(pred == labels)), "cycles": int(result.cycles),
           "cycles_per_inference": report.per_inference, "model_us_per_inference": report.microseconds(pkg.pl_mhz),
           "measured_us_per_image": measured_us, "modelled_us_per_image": modelled_us, "timer": result.timer,
           "wall_ms_per_image": 1e3 * result.seconds / n, "corrections": int(result.corrections),
           "fi_hits": int(result.fi_hits), "runs": result.runs, "fault": args.fault,
           "predictions": pred.astype(int).tolist()}
    rows = [("target", target.value), ("data", what), ("accuracy", f"{out['accuracy']:.2%}"),
            ("latency per image, measured", f"{measured_us:,.1f} us ({result.timer}; {result.runs} runs)"),
            ("latency per image, modelled", f"{modelled_us:,.1f} us (MODEL_CYCLES at {pkg.pl_mhz:g} MHz: the cycle "
             f"model; measured / modelled = {measured_us / modelled_us:.3f})"),
            ("modelled cycles (MODEL_CYCLES, summed)", f"{result.cycles:,}"),
            ("modelled cycles per inference", f"{report.per_inference:,} = {out['model_us_per_inference']:,.1f} us "
             "(cycle model, without the runs' fixed costs" + ("; weights kept on chip: a run after the first)" if kept
                                                              else ")")),
            ("host wall time per image", f"{out['wall_ms_per_image']:.3f} ms (perf_counter around each run)"),
            ("corrections / fault hits", f"{result.corrections:,} / {result.fi_hits:,}")]
    table(f"{pkg.model.name} on {target.value}", ("", "value"), rows)
    status = 0
    if args.verify:
        status = verify(pkg, accel, x, fault, result, out)
        say(f"verify: {'predictions, logits and modelled cycles equal the bit-true executor and the cycle model' if not status else 'MISMATCH: ' + out['verify']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return status


def verify(pkg, accel, x, fault, result, out: dict) -> int:
    """Compare a run with the bit-true executor and the cycle model; record the outcome in ``out``."""
    import numpy as np

    from resilq.hls.cycles import cycle_report
    from resilq.ir import Executor

    ref = Executor(pkg.model).run(x, faults=[fault] if fault is not None else [])
    kept = accel.image.weights_tag != 0
    cold = cycle_report(pkg.model, pkg.config, kept=kept)
    warm = cycle_report(pkg.model, pkg.config, kept=kept, warm=kept)
    batches = [min(accel.batch, x.shape[0] - s) for s in range(0, x.shape[0], accel.batch)]
    problems = []
    if not np.array_equal(result.logits, ref.logits):
        problems.append(f"{int(np.sum(np.any(result.logits != ref.logits, axis=1)))} images' logits differ")
    # kept weights: every run after the first is warm, and the first too when the IP still held them (an earlier
    # process ran this image); otherwise every run is cold
    later = sum(warm.run(b) for b in batches[1:])
    expected = sorted({cold.run(batches[0]) + later, warm.run(batches[0]) + later})
    if result.cycles not in expected:
        problems.append(f"MODEL_CYCLES {result.cycles:,} != the cycle model's {' or '.join(f'{e:,}' for e in expected)}")
    out["verify"] = "; ".join(problems) or "ok"
    return 1 if problems else 0


def add_campaign_options(p: argparse.ArgumentParser) -> None:
    """The board-side ``campaign`` options (the host's ``resilq campaign PKG`` adds --target to its own)."""
    p.add_argument("--target", default="emulator", choices=("board", "emulator", "csim"))
    p.add_argument("--dataset", default="bundled", choices=DATASETS)
    p.add_argument("--data-dir", default=None, metavar="DIR")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--images", type=positive_int, default=None, metavar="N")
    p.add_argument("--offset", type=non_negative_int, default=0)
    p.add_argument("--faults", type=positive_int, default=None, help="number of faults (default: Leveugle's sample size)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed: the same seed samples the same faults")
    p.add_argument("--fault-model", dest="fault_model", default="single-bit", metavar="FAULT_MODEL",
                   help="single-bit (default), multi-bit:K, stuck-at-0 or stuck-at-1")
    p.add_argument("--model", dest="fault_model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    from resilq.campaign.kind_options import add_kind_args

    add_kind_args(p)  # every kind runs on the device: registers (output, lane), the image (weight), upset lists (ber)
    p.add_argument("--chunk", type=positive_int, default=16, help="faults per committed transaction")
    p.add_argument("--timeout", type=timeout_seconds, default=30.0,
                   help=f"seconds to wait for AP_DONE per run (default 30, at most {MAX_TIMEOUT_S:g})")
    p.add_argument("--out", type=Path, required=True, help="campaign database (SQLite)")


def device_kind(args: argparse.Namespace, config):
    """The campaign's fault kind on a device of build ``config``: a lane campaign's lanes are the build's own."""
    import dataclasses

    from resilq.campaign.kind_options import kind_spec
    from resilq.errors import ParameterError

    kind = kind_spec(args)
    if kind.kind != "lane":
        return kind
    for flag, given, built in (("--pe", getattr(args, "pe", None), config.pe),
                               ("--shadow-units", getattr(args, "shadow_units", None), config.shadow_units)):
        if given is not None and given != built:
            raise ParameterError(f"{flag} {given}: this package's accelerator is built with {built}")
    return dataclasses.replace(kind, pe=config.pe, units=config.shadow_units)


def run_package_campaign(pkg, args: argparse.Namespace):
    """A campaign on the package's device: the Python engine's sample and store (resilq.deploy.campaign)."""
    from resilq.campaign.runner import CampaignConfig
    from resilq.campaign.sampling import FaultModel

    from .campaign import run_device_campaign
    from .driver import Accelerator
    from .targets import Target, open_device

    target = Target.parse(args.target)
    if target is Target.BOARD:
        pkg.overlay_ip()
    data = evaluation_data(pkg, args.dataset, args.data_dir, args.images, args.offset, getattr(args, "split", "test"))
    config = CampaignConfig(FaultModel.parse(args.fault_model), args.faults, args.seed, args.chunk,
                            device_kind(args, pkg.config))
    device = open_device(target, pkg.config, pkg.bitfile if target is Target.BOARD else None, pkg.clocks)
    accel = Accelerator(device, pkg.model, pkg.config, batch=pkg.batch, timeout=getattr(args, "timeout", 30.0))
    return run_device_campaign(accel, data, args.out, config, target.value)


def host_package_campaign(args: argparse.Namespace, print_report) -> int:
    """``resilq campaign PKG --target T`` on a host: the device campaign, reported like a Python one."""
    import time

    from resilq.errors import ParameterError
    from resilq.ui import say

    from .package import load_package

    if args.target is None:
        raise ParameterError(f"{args.model} is a folder: say where to inject its faults with --target board|emulator|csim")
    if not Path(args.model).is_dir():
        raise ParameterError(f"--target runs a deployment package (a folder from resilq package), not {args.model}")
    if args.scheduler is not None or args.backend is not None:
        raise ParameterError("a device campaign runs its faults on the device, one at a time: --scheduler and "
                             "--backend do not apply")
    pkg = load_package(args.model)
    start = time.perf_counter()
    say(f"campaign: {pkg.model.name} on {args.target} ({pkg.path}) -> {args.out}")
    print_report(run_package_campaign(pkg, args), time.perf_counter() - start)
    return 0


def campaign_package(pkg, args: argparse.Namespace) -> int:
    """Board-side ``campaign``: run, then point estimates (intervals need scipy: computed on the host)."""
    from resilq.ui import say, table

    from .campaign import quick_summary

    report = run_package_campaign(pkg, args)
    table(f"campaign {pkg.model.name} on {args.target} -> {args.out}", ("", "value"), quick_summary(report))
    say(f"confidence intervals and breakdowns: resilq report {args.out}; against the Python engine: "
        f"resilq campaign-compare {args.out} OTHER.db")
    return 0


def info_package(pkg, args: argparse.Namespace) -> int:
    from resilq.ui import table

    m = pkg.manifest
    overlay = "not built (emulator/csim only)" if pkg.bitfile is None else f"{m['overlay']['bit']} ({m['overlay']['vlnv']})"
    env = environment.describe()
    rows = [("model", f"{m['model']['name']} ({m['model']['hash'][:12]})"), ("board", m["board"]["name"]),
            ("accelerator", f"PE={pkg.config.pe} x SIMD={pkg.config.simd}, CONFIG_ID {pkg.config.config_id:#010x}"),
            ("overlay", overlay), ("batch", pkg.batch),
            ("built for", ", ".join(f"{k} {v}" for k, v in pkg.requirements.items())),
            ("running on", ", ".join(f"{k} {v}" for k, v in env.items()))]
    table(f"package {pkg.path}", ("", "value"), rows)
    return 0


def board_parser(package_dir: str = "PACKAGE") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python3 {package_dir}", description="Run a resilq deployment package.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("run", help="run the network: accuracy, latency, cycles, corrections")
    add_run_options(p)
    p.set_defaults(func=run_package)
    p = sub.add_parser("campaign", help="fault-injection campaign by register pokes (the Python engine's fault list)")
    add_campaign_options(p)
    p.set_defaults(func=campaign_package)
    p = sub.add_parser("info", help="what the package holds and what this interpreter has")
    p.set_defaults(func=info_package)
    return parser


def board_main(package_dir: str, argv: list[str]) -> int:
    """The package's entry point: dependency check, then the command (errors as one line, exit 2)."""
    parser = board_parser(Path(package_dir).name)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from resilq.errors import run_command

    from .manifest import MANIFEST, read_manifest

    def check_then_run() -> int:
        manifest = read_manifest(Path(package_dir) / MANIFEST)  # stdlib only: before anything imports numpy
        found = environment.problems(manifest["requirements"], board=getattr(args, "target", "") == "board")
        if found:
            print("resilq package: this interpreter cannot run the package:\n  " + "\n  ".join(found),
                  file=sys.stderr)
            return 2
        from .package import load_package

        return int(args.func(load_package(package_dir), args) or 0)

    return run_command(args.command, check_then_run)
