"""The ``--kind`` options of a campaign (Python or device): parsed into a :class:`~resilq.campaign.kinds.KindSpec`.

Light on purpose (argparse and numpy-only imports): the deployment package's board-side ``campaign`` command
uses it too (resilq.deploy.cli), and the board image has no plotting or training stack.
"""

from __future__ import annotations

import argparse

from ..errors import ParameterError
from ..fault_kinds import INFERENCE_DRAW, INFERENCE_DRAWS
from ..validation import positive_int


def add_kind_args(p: argparse.ArgumentParser) -> None:
    """``--kind`` and its options (read by :func:`kind_spec`); also the device campaign's (resilq.deploy.cli)."""
    p.add_argument("--kind", default="output", choices=("output", "lane", "weight", "ber"),
                   help="fault kind (docs/campaigns.md): output (one slot, default), lane (persistent PE-lane fault), "
                        "weight (one stored weight/bias bit), ber (every bit of a site set flips with probability P)")
    p.add_argument("--pe", type=positive_int, default=None,
                   help="lane: PE lanes of the accelerator build (default: AccelConfig's, 8)")
    p.add_argument("--shadow-units", type=int, default=None,
                   help="lane: dedicated shadow lanes of the build, lanes PE.. (default: AccelConfig's, 4)")
    p.add_argument("--lane-scope", default="layer", choices=("layer", "all"),
                   help="lane: one layer per fault (lanes x layers x masks) or every layer at once (lanes x masks)")
    p.add_argument("--ber", default=None, metavar="P[,P...]", help="ber: bit error probabilities of the sweep")
    p.add_argument("--ber-sites", default="outputs", choices=("outputs", "weights", "both"),
                   help="ber: the bits that may flip (default: every slot's output)")
    p.add_argument("--ber-per", default="run", choices=("run", "inference"),
                   help="ber: draw the flips once per run (default) or afresh per inference (outputs only)")
    p.add_argument("--repetitions", type=positive_int, default=10, help="ber: seeded draws per probability (default 10)")
    p.add_argument("--ber-draw", type=int, default=INFERENCE_DRAW, choices=INFERENCE_DRAWS,
                   help=f"ber per inference: how the masks are drawn (default {INFERENCE_DRAW}, by blocks of inputs; "
                        "1: one generator per input, as resilq before draw versions, to resume or repeat such a "
                        "campaign)")


def kind_spec(args: argparse.Namespace):
    """The :class:`~resilq.campaign.kinds.KindSpec` of ``--kind`` and its options (refusing stray options)."""
    from ..hls.config import DEFAULT_CONFIG
    from .kinds import KindSpec

    kind = getattr(args, "kind", "output")
    if getattr(args, "ber", None) is not None and kind != "ber":
        raise ParameterError("--ber sets the probabilities of a BER campaign: add --kind ber")
    if kind == "ber":
        if getattr(args, "ber", None) is None:
            raise ParameterError("--kind ber needs --ber P[,P...] (bit error probabilities)")
        try:
            probs = tuple(float(v) for v in args.ber.split(",") if v.strip())
        except ValueError:
            raise ParameterError(f"--ber takes comma-separated probabilities, got {args.ber!r}") from None
        return KindSpec("ber", ber=probs, ber_sites=args.ber_sites, ber_per=args.ber_per,
                        repetitions=args.repetitions, ber_draw=args.ber_draw)
    if kind == "lane":
        units = DEFAULT_CONFIG.shadow_units if getattr(args, "shadow_units", None) is None else args.shadow_units
        return KindSpec("lane", pe=args.pe or DEFAULT_CONFIG.pe, units=units, lane_scope=args.lane_scope)
    return KindSpec(kind)
