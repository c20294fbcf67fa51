"""Accelerator cycles per inference (the cycle model, confirmed by the C-simulated counter) and resources.

For LeNet-5, MLP-7 and AlexNet-CIFAR (the zoo's shapes, ``resilq.train.zoo``) at PE 8 x SIMD 8 and at the
largest build that fits the board (DSP, BRAM36 within budget, LUT <= 70 % of the device, in the resource
model): cycles per inference, MACs per cycle, % of the PE x SIMD lane peak, % of the DSP peak (220
DSP48E1, two packed int8 MACs each: ops::mac_pair), images/s at the PL clock, and the ratio against the previous datapath
(:data:`PREVIOUS_DATAPATH`, measured on main before the datapath issue), unprotected, ``split`` and ``tmr``
at the same protected set, each also after tile packing (``split+pack``, ``tmr+pack``:
:func:`resilq.hls.tile_packing.pack_tiles`, the same network with its channels reordered so the protected
neurons share few PE tiles).

Cycles do not depend on weight values, only on shapes and the protected set, so the networks are built
from their shapes with seeded random int8 weights, and the protected set is a seeded random draw per
neuron layer of the paper's NVF >= 20 % portion (MLP-7 17.86 %, LeNet-5 3.99 %, AlexNet 5 %): the same
set for split and TMR, and the same as the one :data:`PREVIOUS_DATAPATH` was measured with. The C-sim
runs the 8 x 8 LeNet-5 and MLP-7 variants (``--csim-images``, 0 to skip) and must agree with the model
and with the executor bit for bit.

    python benchmarks/accelerator.py [--csim-images 4] [--board pynq-z2]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from resilq.arith import Scheme
from resilq.boards import load_board
from resilq.errors import ParameterError
from resilq.hls.config import MAX_PE, SIMD_CHOICES, AccelConfig
from resilq.hls.cycles import cycle_report
from resilq.hls.mapping import plan_model, weights_fit_on_chip
from resilq.hls.resources import MACS_PER_DSP, check_budget, estimate
from resilq.hls.tile_packing import pack_tiles
from resilq.ir import Conv2d, Executor, Flatten, InputQuant, Linear, MaxPool2d, Model, Protection, Requant
from resilq.ui import say, table
from resilq.validation import non_negative_int

#: The zoo's networks as layer shapes: ("conv", out, k, stride, pad) | ("pool", k) | ("flatten",) | ("fc", out).
ARCHS = {
    "lenet5": ((1, 28, 28), [("conv", 6, 5, 1, 0), ("pool", 2), ("conv", 16, 5, 1, 0), ("pool", 2), ("flatten",),
                             ("fc", 120), ("fc", 84), ("fc", 10)]),
    "mlp7": ((1, 28, 28), [("flatten",), ("fc", 512), ("fc", 512), ("fc", 512), ("fc", 512), ("fc", 512),
                           ("fc", 256), ("fc", 10)]),
    "alexnet": ((3, 32, 32), [("conv", 64, 3, 1, 0), ("pool", 2), ("conv", 128, 3, 1, 1), ("pool", 2),
                              ("conv", 256, 3, 1, 1), ("pool", 2), ("conv", 256, 3, 1, 1), ("conv", 128, 3, 1, 1),
                              ("flatten",), ("fc", 512), ("fc", 256), ("fc", 10)]),
}
#: Portion of neurons protected (the paper's Table I at NVF >= 20 %; 5 % where it gives none).
PORTION = {"mlp7": 503 / 2816, "lenet5": 187 / 4684, "alexnet": 0.05}
VARIANTS = ("unprotected", "split", "tmr", "split+pack", "tmr+pack")
LUT_LIMIT = 0.70
DSP_LIMIT = 220  # xc7z020: 220 DSP48E1 slices (DS190, Zynq-7000 product table)

#: Cycles per inference of the previous datapath (main at 1b1d400, before issue #14: byte-wide input and
#: output loops, bias/shift per tile, loads, compute and stores one after the other, no kernel-row
#: packing), measured with `resilq.hls.cycles` of that commit on exactly the networks and protected sets
#: this script builds. A reference table, not a second implementation.
PREVIOUS_DATAPATH = {
    # (model, variant, pe, simd): cycles per inference
    ("lenet5", "unprotected", 8, 8): 43_671,
    ("lenet5", "unprotected", 16, 8): 39_633,
    ("lenet5", "unprotected", 8, 16): 43_924,
    ("lenet5", "split", 8, 8): 48_457,
    ("lenet5", "split", 16, 8): 44_255,
    ("lenet5", "split", 8, 16): 48_609,
    ("lenet5", "tmr", 8, 8): 52_762,
    ("lenet5", "tmr", 16, 8): 48_435,
    ("lenet5", "tmr", 8, 16): 52_813,
    ("mlp7", "unprotected", 8, 8): 287_362,
    ("mlp7", "unprotected", 16, 8): 248_074,
    ("mlp7", "unprotected", 8, 16): 274_978,
    ("mlp7", "split", 8, 8): 308_784,
    ("mlp7", "split", 16, 8): 261_312,
    ("mlp7", "split", 8, 16): 286_733,
    ("mlp7", "tmr", 8, 8): 328_118,
    ("mlp7", "tmr", 16, 8): 272_990,
    ("mlp7", "tmr", 8, 16): 296_400,
    ("alexnet", "unprotected", 8, 8): 1_234_886,
    ("alexnet", "unprotected", 16, 8): 876_766,
    ("alexnet", "unprotected", 8, 16): 919_350,
    ("alexnet", "split", 8, 8): 1_478_132,
    ("alexnet", "split", 16, 8): 1_080_147,
    ("alexnet", "split", 8, 16): 1_057_344,
    ("alexnet", "tmr", 8, 8): 1_710_425,
    ("alexnet", "tmr", 16, 8): 1_272_875,
    ("alexnet", "tmr", 8, 16): 1_184_385,
}


def shape_model(arch: str, seed: int = 0) -> Model:
    """The network ``arch`` of :data:`ARCHS` with seeded random int8 weights (shift 8, ReLU but the classifier)."""
    rng = np.random.default_rng(seed)
    shape, specs = ARCHS[arch]
    inp = InputQuant(shape, 7)
    layers, c, h, w, flat = [], shape[0], shape[1], shape[2], None
    for k, spec in enumerate(specs):
        last = k == len(specs) - 1
        if spec[0] == "pool":
            layers.append(MaxPool2d(f"pool{k}", spec[1], spec[1]))
            h, w = h // spec[1], w // spec[1]
        elif spec[0] == "flatten":
            layers.append(Flatten(f"flatten{k}"))
            flat = c * h * w
        elif spec[0] == "conv":
            out, kern, stride, pad = spec[1:]
            wt = rng.integers(-40, 41, size=(out, c, kern, kern)).astype(np.int8)
            layers.append(Conv2d(f"conv{k}", wt, rng.integers(-500, 501, out).astype(np.int32),
                                 Requant(np.full(out, 8, np.int32), True), stride, pad))
            c, h, w = out, (h + 2 * pad - kern) // stride + 1, (w + 2 * pad - kern) // stride + 1
        else:
            out = spec[1]
            wt = rng.integers(-40, 41, size=(out, flat)).astype(np.int8)
            layers.append(Linear(f"fc{k}", wt, rng.integers(-500, 501, out).astype(np.int32),
                                 None if last else Requant(np.full(out, 8, np.int32), True)))
            flat = out
    return Model(inp, tuple(layers), {"name": arch})


def protected_variant(model: Model, variant: str, config: AccelConfig | None = None, seed: int = 1) -> Model:
    """``model`` with the benchmark's protected set under ``variant`` (the same neurons for every scheme);
    a ``+pack`` variant is then tile-packed for ``config``."""
    if variant == "unprotected":
        return model
    scheme_name, _, pack = variant.partition("+")
    if pack:
        packed, _ = pack_tiles(protected_variant(model, scheme_name, seed=seed), config or AccelConfig())
        return packed
    rng = np.random.default_rng(seed)
    scheme = {"split": Scheme.SPLIT, "tmr": Scheme.TMR}[scheme_name]
    prots = {}
    for i in model.neuron_layers:
        n = model.out_size(i)
        prots[i] = Protection(scheme, np.sort(rng.choice(n, size=max(1, round(PORTION[model.name] * n)),
                                                         replace=False)).astype(np.int32))
    return model.with_protection(prots)


def fits(config: AccelConfig, board) -> bool:
    try:
        est = check_budget(config, board)
    except ParameterError:
        return False
    return est.lut <= LUT_LIMIT * board.budget.lut and est.dsp <= DSP_LIMIT


def with_shadow_lanes(config: AccelConfig, board) -> AccelConfig:
    """``config`` with the most dedicated shadow lanes (of the default's, then 2, 1, 0) that still fits."""
    for units in sorted({AccelConfig.shadow_units, 2, 1, 0}, reverse=True):
        candidate = dataclasses.replace(config, shadow_units=units)
        if fits(candidate, board):
            return candidate
    return config


def widest_builds(board) -> list[AccelConfig]:
    """The fitting builds with the most MAC lanes (PE x SIMD), each with the most shadow lanes that fit."""
    builds = [with_shadow_lanes(AccelConfig(pe=pe, simd=simd), board) for pe in (2 ** k for k in range(MAX_PE.bit_length()))
              for simd in SIMD_CHOICES]
    fitting = [c for c in builds if fits(c, board)]
    lanes = max(c.macs_per_cycle for c in fitting)
    return [c for c in fitting if c.macs_per_cycle == lanes]


def largest_build(board, model: Model) -> AccelConfig:
    """The fitting build with the most MAC lanes (ties: fewest cycles on ``model``)."""
    return min(widest_builds(board), key=lambda c: cycle_report(model, c).per_inference)


def csim_check(model: Model, config: AccelConfig, images: int) -> None:
    """The C-simulated counter equals the model and the logits equal the executor's (else AssertionError)."""
    from resilq.hls.simulate import CsimAccelerator

    x = model.quantize_input(np.random.default_rng(2).random((images, *model.input.shape), dtype=np.float32))
    run = CsimAccelerator(model, config, batch=images).run(x, collect=False)
    assert np.array_equal(run.logits, Executor(model).run(x).logits), f"{model.name}: C-sim != executor"
    report = cycle_report(model, config, images)
    assert run.cycles == report.total, f"{model.name}: C-sim counter {run.cycles} != model {report.total}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="pynq-z2")
    p.add_argument("--csim-images", type=non_negative_int, default=2, help="images the C-sim runs to confirm the counter (0: skip)")
    args = p.parse_args()
    board = load_board(args.board)
    models = {arch: shape_model(arch) for arch in ARCHS}
    small = AccelConfig()
    large = largest_build(board, models["alexnet"])
    for config in (small, large):
        est = estimate(config)
        say(f"PE={config.pe} x SIMD={config.simd} + {config.shadow_units} shadow lanes: {est.dsp} DSP ({est.dsp / DSP_LIMIT:.0%}), {est.bram36} BRAM36 "
            f"({est.bram36 / board.budget.bram36:.0%}), {est.lut:,} LUT ({est.lut / board.budget.lut:.0%}) -- "
            "resource model")
    batch = small.max_batch
    rows, per = [], {}
    for arch, model in models.items():
        macs = model.macs()
        for variant in VARIANTS:
            for config in (small, large):
                m = protected_variant(model, variant, config)
                if args.csim_images and config == small and arch != "alexnet":
                    csim_check(m, config, args.csim_images)
                one = cycle_report(m, config)
                single, batched = one.per_inference, one.at(batch).per_inference
                per[arch, variant, config.pe, config.simd] = (single, batched)
                lanes = config.macs_per_cycle
                before = PREVIOUS_DATAPATH.get((arch, variant, config.pe, config.simd))
                rows.append((arch, variant, f"{config.pe}x{config.simd}", f"{single:,}", f"{batched:,.0f}",
                             f"{macs / batched:.1f}", f"{macs / batched / lanes:.0%}",
                             f"{macs / batched / (DSP_LIMIT * MACS_PER_DSP):.0%}", f"{board.pl_mhz * 1e6 / single:,.0f}",
                             f"{board.pl_mhz * 1e6 / batched:,.0f}",
                             f"{before / single:.2f}x / {before / batched:.2f}x" if before else "-"))
    table(f"Cycles per inference (cycle model), {board.pl_mhz:g} MHz, batch 1 and batch {batch}",
          ("model", "variant", "PE x SIMD", "cycles b=1", f"cycles/img b={batch}", "MACs/cycle", "% lane peak",
           f"% of {DSP_LIMIT} DSP x {MACS_PER_DSP}", "images/s b=1", f"images/s b={batch}", "vs previous b=1 / b=" + str(batch)), rows,
          caption=f"MACs = the network's int8 multiply-accumulates; MACs/cycle and the % columns at batch {batch} (a run "
                  f"of {batch} images: each batched layer -- Linear layers, and convs whose {batch} maps fit the buffers -- loads its "
                  f"weights once for the {batch}); % of DSP: "
                  f"MACs/cycle over the device's {DSP_LIMIT} DSP48E1 at {MACS_PER_DSP} packed int8 MACs each "
                  "(ops::mac_pair). Previous: PREVIOUS_DATAPATH (main "
                  "before #14, one image at a time, so its cycles per image are the same at any batch), same "
                  "network and protected set."
                  + (f" C-sim counter == model and logits == executor on {args.csim_images} images (8x8, LeNet-5/MLP-7)."
                     if args.csim_images else ""))
    for arch in ARCHS:
        base = per[arch, "unprotected", small.pe, small.simd]
        big = per[arch, "unprotected", large.pe, large.simd]
        slots = protected_variant(models[arch], "split").n_shadows
        share = slots / models[arch].n_neurons
        say(f"  {arch}: {large.pe}x{large.simd} is {base[0] / big[0]:.3f}x (b=1) / {base[1] / big[1]:.3f}x (b={batch}) "
            f"faster than 8x8. Protection at 8x8 (split: {slots:,} shadow slots = {share:.1%} extra, tmr: "
            f"{2 * slots:,} = {2 * share:.1%}), extra cycles per image b=1 / b={batch}:")
        rotated = dataclasses.replace(small, shadow_units=0)  # the same build without its dedicated shadow lanes
        plain = cycle_report(models[arch], rotated)
        plain = (plain.per_inference, plain.at(batch).per_inference)
        for variant in VARIANTS[1:]:
            extra = [a - b for a, b in zip(per[arch, variant, small.pe, small.simd], base)]
            old = cycle_report(protected_variant(models[arch], variant, rotated), rotated)
            old = [a - b for a, b in zip((old.per_inference, old.at(batch).per_inference), plain)]
            say(f"      {variant:<11} {extra[0]:+11,} ({extra[0] / base[0]:+6.1%}) / {extra[1]:+13,.0f} "
                f"({extra[1] / base[1]:+6.1%});  without shadow lanes {old[0] / plain[0]:+6.1%} / "
                f"{old[1] / plain[1]:+6.1%}")
    scale_rows = []
    for config in widest_builds(board):
        cells = []
        for arch, model in models.items():
            base = per[arch, "unprotected", small.pe, small.simd]
            one = cycle_report(model, config)
            cells.append(f"{base[0] / one.per_inference:.3f}x / {base[1] / one.at(batch).per_inference:.3f}x")
        scale_rows.append((f"{config.pe}x{config.simd}+{config.shadow_units}", *cells))
    table(f"Scaling: every build with the most MAC lanes that fits ({large.macs_per_cycle} lanes), speed-up over 8x8 "
          f"at b=1 / b={batch} (unprotected)", ("PE x SIMD + shadow lanes", *models), scale_rows,
          caption="Goal (#14): >= 2.5x on AlexNet and >= 2x on LeNet-5 for a larger build that fits. The tables above "
                  "use the build with the fewest AlexNet cycles among these.")
    kept_rows = []
    for arch, model in models.items():
        for config in (small, large):
            fits = weights_fit_on_chip(plan_model(model, config), config)
            cold, warm = (cycle_report(model, config, kept=True, warm=w) for w in (False, True))
            warm16 = cycle_report(model, config, images=batch, kept=True, warm=True)
            kept_rows.append((arch, f"{config.pe}x{config.simd}", "yes" if fits else "no", f"{cold.per_inference:,}",
                              f"{warm.per_inference:,}", f"{warm16.per_inference:,.0f}",
                              f"{model.macs() / warm.per_inference:.1f}"))
    table("Weights kept on chip between runs (pack(..., keep_weights=True): the network's parameters fit the weight, "
          "bias and shift buffers at once)", ("model", "PE x SIMD", "fits", "b=1 first run", "b=1 later runs",
                                              f"b={batch} later runs, per image", "MACs/cycle b=1 later"), kept_rows,
          caption="A later run with the same WEIGHTS_TAG loads no parameter; where the network does not fit, every run "
                  "is a first run (the columns are equal).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
