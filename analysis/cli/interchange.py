"""``resilq export-qonnx`` / ``resilq import-qonnx``: interchange with FINN, qonnx and Brevitas's QONNX export."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ResilqError
from ..ir import load_model, save_model
from ..ui import say
from .options import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-qonnx", help="write a .rq model as QONNX (ONNX with Quant nodes)")
    p.add_argument("model", help="a .rq file")
    p.add_argument("--out", type=Path, required=True, help="output .onnx file")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch dimension of the graph input")
    p.set_defaults(func=run_export)

    p = sub.add_parser("import-qonnx", help="import a QONNX model (e.g. Brevitas export_qonnx) as a .rq model")
    p.add_argument("onnx", type=Path, help="a QONNX .onnx file")
    p.add_argument("--name", default=None, help="model name recorded in the metadata")
    p.add_argument("--out", type=Path, required=True, help="output .rq file")
    p.set_defaults(func=run_import)


def _require_qonnx() -> None:
    try:
        import qonnx  # noqa: F401
    except ImportError:
        raise ResilqError("QONNX interchange needs the onnx extra: pip install 'resilq[onnx]'") from None


def run_export(args: argparse.Namespace) -> int:
    _require_qonnx()
    from ..interchange.qonnx_export import save_qonnx

    model = load_model(args.model)
    path = save_qonnx(model, args.out, batch_size=args.batch_size)
    note = " (protection is not representable in QONNX: exported the unprotected network)" if model.is_protected else ""
    say(f"wrote {path}{note}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    _require_qonnx()
    from ..interchange.qonnx_import import from_qonnx

    if not args.onnx.is_file():
        raise ResilqError(f"{args.onnx}: no such file")
    model = from_qonnx(args.onnx, name=args.name or args.onnx.stem)
    path = save_model(model, args.out)
    say(f"wrote {path}: {model.n_neurons:,} neurons, {model.macs():,} MACs, hash {model.hash[:16]}")
    return 0
