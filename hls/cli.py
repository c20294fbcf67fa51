"""``resilq hls ...`` (also ``python -m resilq.hls``): estimate, generate, simulate and build the accelerator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resilq.boards import DEFAULT_BOARD, load_board
from resilq.errors import ResilqError
from resilq.ui import say, table

from .config import AccelConfig


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pe", type=int, default=AccelConfig.pe, help="output lanes (power of two)")
    p.add_argument("--simd", type=int, default=AccelConfig.simd, help="input lanes (8, 16, 32 or 64)")
    p.add_argument("--shadow-units", type=int, default=AccelConfig.shadow_units,
                   help="dedicated shadow lanes beside the PE array (0 = shadows only by rotated array passes)")
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name in boards/ or a board.toml path")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hls", help="the HLS accelerator: estimates, C-sim testbench, Vitis HLS IP build")
    hs = p.add_subparsers(dest="hls_command", metavar="STEP")

    q = hs.add_parser("estimate", help="resources vs the board budget (and vs the implemented overlay when built), "
                                       "and modelled cycles per inference of .rq models")
    _config_args(q)
    q.add_argument("models", nargs="*", help=".rq files to map and time")
    q.add_argument("--overlay", type=Path, default=None, metavar="DIR",
                   help="folder of a built overlay (resilq.json beside resilq.bit); default overlays/<board>/")
    q.set_defaults(func=run_estimate)

    q = hs.add_parser("pack", help="reorder the channels of a protected model so its protected neurons share few PE "
                                   "tiles (fewer shadow passes; the same network, bit for bit)")
    _config_args(q)
    q.add_argument("model", metavar="MODEL.rq", help="a protected model (resilq harden)")
    q.add_argument("--check-inputs", type=int, default=64, metavar="N",
                   help="seeded random inputs on which the packed model's scores must equal the original's "
                        "(default 64; 0: skip)")
    q.add_argument("--out", type=Path, required=True, metavar="OUT.rq", help="the packed model")
    q.set_defaults(func=run_pack)

    q = hs.add_parser("codegen", help="rewrite (or --check) the generated regmap/imageformat headers")
    q.add_argument("--check", action="store_true", help="only report stale headers (exit 1 if any)")
    q.set_defaults(func=run_codegen)

    q = hs.add_parser("csim", help="C-simulate .rq models (the HLS C++ through g++) against the executor; without "
                                   "a model, the Vitis testbench on its fixed golden vectors")
    _config_args(q)
    q.add_argument("models", nargs="*", metavar="MODEL.rq",
                   help="models to C-simulate on real images, every layer compared with the bit-true executor")
    q.add_argument("--dataset", default=None, help="images from this dataset (default: the model's own)")
    q.add_argument("--data-dir", default=None, metavar="DIR", help="the dataset's standard files")
    q.add_argument("--inputs-file", type=Path, default=None, metavar="FILE.npy",
                   help="your own float images in [0, 1], shaped (N, C, H, W) like the model's input, instead of "
                        "the dataset's (the first --images of them)")
    q.add_argument("--images", type=int, default=16, help="images to simulate (default 16)")
    q.add_argument("--faults", type=int, default=10, help="sampled faults also compared with the executor (default 10)")
    q.add_argument("--seed", type=int, default=0, help="fault sampling seed (default 0)")
    q.add_argument("--out", type=Path, default=Path("build/csim"), help="testbench build directory (no model given)")
    q.set_defaults(func=run_csim)

    q = hs.add_parser("ip", help="Vitis HLS csim/csynth/cosim/export (needs vitis_hls or vitis-run, 2022.1 - 2024.x)")
    _config_args(q)
    q.add_argument("--out", type=Path, default=Path("build/ip"), help="build directory")
    q.add_argument("--steps", default="csim,csynth,cosim,export", help="comma-separated subset of the flow")
    q.add_argument("--vlnv", default=None, help="vendor:library:name:version of the exported IP")
    q.set_defaults(func=run_ip)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _config(args: argparse.Namespace) -> AccelConfig:
    return AccelConfig(pe=args.pe, simd=args.simd, shadow_units=args.shadow_units)


def run_estimate(args: argparse.Namespace) -> int:
    from resilq.ir import load_model

    from .cycles import cycle_report
    from .resources import check_budget, estimate, utilisation_rows

    board, config = load_board(args.board), _config(args)
    est = estimate(config)
    meta, note = _implemented(args.overlay, board, config)
    if meta is None:
        table(f"PE={config.pe} x SIMD={config.simd} on {board.name} ({board.part}) -- analytic estimate",
              ("resource", "estimated", "available", "use"), utilisation_rows(est, board))
    else:
        rows = []
        for name, used, available, use in utilisation_rows(est, board):
            accel = "" if meta.accelerator is None else f"{meta.accelerator.as_dict()[name]:g}"
            rows.append((name, used, accel, f"{meta.design.as_dict()[name]:g}", available, use))
        table(f"PE={config.pe} x SIMD={config.simd} on {board.name}: analytic estimate vs the implemented overlay "
              f"(Vivado {meta.vivado}, WNS {meta.wns_ns} ns, WHS {meta.whs_ns} ns)",
              ("resource", "estimated", "implemented (accelerator)", "implemented (whole overlay)", "available",
               "estimated use"), rows)
    if note:
        say(note)
    check_budget(config, board)
    for path in args.models:
        model = load_model(path)
        rep = cycle_report(model, config)
        rows = [(c.name, c.load_input + c.descriptor, c.params + c.weights, c.table + c.compute + c.pool, c.correct,
                 c.store, c.total) for c in rep.layers]
        table(f"{model.name}: {rep.per_inference:,} modelled cycles/inference (cycle model, not a measurement) = "
              f"{rep.microseconds(board.pl_mhz):,.1f} us at {board.pl_mhz:g} MHz",
              ("layer", "load", "weights", "compute", "correct", "store", "total"), rows)
    return 0


def run_pack(args: argparse.Namespace) -> int:
    import numpy as np

    from resilq.ir import Executor, load_model, save_model

    from .cycles import cycle_report
    from .tile_packing import pack_tiles

    if args.check_inputs < 0:
        raise ResilqError(f"--check-inputs must be >= 0, got {args.check_inputs}")
    config = _config(args)
    model = load_model(args.model)
    if not model.n_protected:
        raise ResilqError(f"{args.model}: the model protects no neuron, so there is nothing to pack (resilq harden "
                          "first)")
    packed, report = pack_tiles(model, config)
    rows = [(r.name, f"{r.groups_before:,}", f"{r.groups_after:,}", "packed" if r.packed else r.reason) for r in report]
    table(f"{model.name}: positions recomputed per shadow pass (sum over PE={config.pe} tiles)",
          ("layer", "before", "after", "order"), rows)
    if args.check_inputs:
        x = model.quantize_input(np.random.default_rng(0).random((args.check_inputs, *model.input.shape),
                                                                 dtype=np.float32))
        if not np.array_equal(Executor(model).run(x).logits, Executor(packed).run(x).logits):
            raise ResilqError("the packed model's class scores differ from the original's (a bug: please report it)")
        say(f"class scores identical to the original's on {args.check_inputs} seeded random inputs")
    before, after = cycle_report(model, config), cycle_report(packed, config)
    base = cycle_report(model.unprotected(), config).per_inference
    say(f"modelled cycles/inference: {before.per_inference:,} -> {after.per_inference:,} (unprotected {base:,}: "
        f"protection costs {before.per_inference - base:+,} -> {after.per_inference - base:+,}; "
        f"{model.n_shadows:,} shadow slots = {model.n_shadows / model.n_neurons:.1%} extra)")
    path = save_model(packed, args.out)
    say(f"wrote {path} (hash {packed.hash[:16]}; metadata['tile_packing'] holds each layer's channel order)")
    return 0


def _implemented(directory: Path | None, board, config: AccelConfig):
    """The built overlay's metadata when it is this build's, else None and a note saying why (or nothing)."""
    from resilq.overlays.implementation import METADATA_FILE, OverlayMetadata

    asked = directory is not None
    if directory is None:
        from resilq.overlays import OVERLAYS_DIR

        directory = OVERLAYS_DIR / board.name
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        return None, (f"no implemented overlay to compare with ({path} does not exist: make -C overlays builds one)"
                      if asked else "")
    meta = OverlayMetadata.read(path)
    if meta.config_id != config.config_id:
        return None, (f"{path} is the overlay of PE={meta.pe} x SIMD={meta.simd} (config {meta.config_id:#010x}), not "
                      f"this build (config {config.config_id:#010x}): not compared")
    return meta, ""


def run_codegen(args: argparse.Namespace) -> int:
    from . import codegen

    if args.check:
        stale = codegen.stale_headers()
        for path in stale:
            say(f"stale: {path}")
        return 1 if stale else 0
    for path in codegen.write_committed():
        say(f"wrote {path}")
    return 0


def run_csim(args: argparse.Namespace) -> int:
    return run_csim_models(args) if args.models else run_csim_tb(args)


def run_csim_models(args: argparse.Namespace) -> int:
    """Each model's C-simulation against the executor: every layer, logits under faults, MODEL_CYCLES."""
    from resilq.errors import ParameterError
    from resilq.ir import load_model
    from resilq.pipeline.steps.hls import csim_check, describe_check

    if args.images <= 0 or args.faults < 0:
        raise ParameterError("--images must be positive and --faults non-negative")
    if args.inputs_file is not None and args.dataset is not None:
        raise ParameterError("--inputs-file and --dataset both name the images: give one")
    failed = 0
    for path in args.models:
        model = load_model(path)
        images, what = _csim_images(model, path, args)
        check = csim_check(model, _config(args), model.quantize_input(images), args.faults, args.seed)
        rows = [(layer["layer"], f"{layer['elements']:,}", f"{layer['mismatches']:,}") for layer in check["layers"]]
        table(f"C-simulation of {model.name} ({path}) vs the executor on {check['images']} {what}",
              ("layer", "int8 values", "mismatches"), rows, justify=("left", "right", "right"))
        say(f"{path}: C-sim {describe_check(check)}")
        failed += check["status"] != "pass"
    return 1 if failed else 0


def _csim_images(model, path, args: argparse.Namespace):
    """The float images to C-simulate and their description: the first ``--images`` of ``--inputs-file``, or of
    the test split of ``--dataset`` (by default the dataset the model records)."""
    import numpy as np

    from resilq.data import load_dataset
    from resilq.errors import ParameterError

    if args.inputs_file is not None:
        try:
            images = np.load(args.inputs_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"--inputs-file {args.inputs_file}: not a readable .npy array ({exc})") from None
        shape = tuple(model.input.shape)
        if images.ndim != 1 + len(shape) or tuple(images.shape[1:]) != shape or images.shape[0] == 0:
            raise ParameterError(f"--inputs-file {args.inputs_file}: holds an array of shape {images.shape}; "
                                 f"{path} takes images of shape (N, {', '.join(map(str, shape))})")
        if images.dtype.kind not in "fiu":
            raise ParameterError(f"--inputs-file {args.inputs_file}: holds {images.dtype} values, not numbers")
        images = images[:args.images].astype(np.float32)
        return images, f"images of {args.inputs_file}"
    dataset = args.dataset or model.metadata.get("dataset")
    if not dataset:
        raise ParameterError(f"{path}: the model does not record its dataset; pass --dataset or --inputs-file")
    return load_dataset(dataset, "test", args.data_dir).take(args.images).images, f"{dataset} test images"


def run_csim_tb(args: argparse.Namespace) -> int:
    from .project import run_testbench

    proc = run_testbench(_config(args), load_board(args.board), args.out)
    sys.stdout.write(proc.stdout)
    return proc.returncode


def run_ip(args: argparse.Namespace) -> int:
    from .project import DEFAULT_VLNV, build_ip
    from .tools import tool_warnings_shown

    with tool_warnings_shown("resilq hls ip"):
        out = build_ip(_config(args), load_board(args.board), args.out, tuple(s for s in args.steps.split(",") if s),
                       args.vlnv or DEFAULT_VLNV)
    say(f"IP exported under {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resilq.hls")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["hls", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except ResilqError as exc:
        print(f"resilq hls: error: {exc}", file=sys.stderr)
        return 2
