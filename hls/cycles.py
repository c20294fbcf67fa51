"""Cycle model of the accelerator, from its loop structure (docs/accelerator.md, "Cycle model").

Every pipelined loop of the kernel runs at II = 1 (the profile writer at II = 2) and costs its trip
count plus a modelled pipeline depth (:class:`.config.Latency`). Tile t's table walk + compute runs beside
tile t+1's weight load (ping-pong weight buffers) and costs the longer of the two. The input load
(activation master) and the layer's bias/shift load and tile 0's weight rows (weight master) are issued
together, but both masters read DDR through one 64-bit HP port (overlays/tcl/block_design.tcl), so their
beats add up and only the shorter start-up latency is hidden. Everything else runs one after the
other. The C-simulated kernel counts the same way, iteration by iteration, and the tests check the two
agree on every layer of every model they run. Trip counts, per image:

=============  ===========================================================================
descriptor     DESC_WORDS, once per run
load input     64-bit beats: H_in * W_in * ceil(C_in/8)     (pixel-major, channels padded to whole beats), or
               ceil(C_in * H_in * W_in / 8) for a dense network input (imageformat, FORMAT 2), plus, for a
               stacked conv (below) reading it dense, one per row starting inside a beat (``LayerPlan.in_trips``)
params         output channels, once per layer          (one 64-bit beat per channel)
weights        rows * k*k*ceil(C/SIMD) * SIMD/8         (64-bit beats) per tile
table walk     protected neurons of the tile's channels (only in a protected layer)
compute        (H_out*W_out + (copies-1) * G_t) * words per tile, G_t = positions of the tile that
               hold a protected neuron in any lane (each is recomputed copies-1 times); words =
               k*k*ceil(C/SIMD), or ceil(k / stack) * ceil(k / taps) when 2*C <= SIMD (taps = min(k, SIMD // C)
               kernel columns packed into the SIMD lanes of one word; stack = min(k, SIMD // (k*C)) kernel rows
               in one word when a whole row fits twice, else 1: ``LayerPlan.stack``)
corrector      protected neurons of the layer
maxpool        H_out*W_out * ceil(C/SIMD) * k*k, or H_out*W_out * ceil(C/OUT_BANKS) * k*k and no input load when it
               pools the previous conv's output buffer (``LayerPlan.on_chip_input``, the conv's ``Flag.POOL_NEXT``)
store          H_out * W_out * ceil(C_out/8) beats (int8) or C_out words (int32 classifier)
=============  ===========================================================================

A conv/linear layer of at most two tiles keeps its weights in the two ping-pong buffers (and its bias/shift) from
one call of a run to the next: only the run's first call loads them (:func:`keeps_weights`).

Runs are layer-major: each descriptor is fetched once per run, then runs over every image -- one call per
image, or for a batched layer (``LayerPlan.batched``) one call per chunk of up to ``max_batch`` images with one
weight load per chunk: a vector layer's images take the place of the output positions above (input/output
records, recomputed protected positions, corrections); a map-batched conv (``LayerPlan.map_batched``) loads and
stores each image's map (m loads, m stores, each with its latency), computes each tile once per image (m passes,
each with the MAC latency) and corrects after every tile (its entries once per image, plus the corrector
latency per tile). Per run: HEADER_WORDS + run latency, every
descriptor, then 2 profile words per descriptor + store latency. numpy only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

import numpy as np

from resilq.ir import Model

from . import imageformat as fmt
from .config import AccelConfig
from .mapping import LayerPlan, plan_model, shadow_ranks, weights_fit_on_chip
from .upset_list import layer_counts


@dataclass(frozen=True)
class LayerCycles:
    """Cycles of one descriptor over a run's images (one image unless the report says otherwise), by loop."""

    index: int
    name: str
    descriptor: int
    load_input: int
    params: int
    weights: int
    table: int
    compute: int
    correct: int
    pool: int
    store: int
    overlapped: int = 0  # cycles of the loops above hidden behind a loop on another port (double buffering)

    @property
    def total(self) -> int:
        busy = sum(getattr(self, f.name) for f in fields(self) if f.name not in ("index", "name", "overlapped"))
        return busy - self.overlapped

    def plus(self, other: LayerCycles, times: int = 1) -> LayerCycles:
        """This layer's loops plus ``times`` x ``other``'s (the name and index stay)."""
        values = {f.name: getattr(self, f.name) + times * getattr(other, f.name) for f in fields(self)
                  if f.name not in ("index", "name")}
        return LayerCycles(self.index, self.name, **values)


def protected_groups(plan: LayerPlan) -> np.ndarray:
    """Per tile, the number of output positions the array recomputes: positions holding a protected neuron in any
    of its lanes whose shadows the dedicated shadow lanes cannot all take (``LayerPlan.shadow_units``;
    :func:`resilq.hls.mapping.shadow_ranks`), each recomputed copies-1 times."""
    groups = np.zeros(plan.tiles, dtype=np.int64)
    if plan.n_protected:
        _, spare = shadow_ranks(plan.protected, plan.hw_out, plan.copies, plan.pe, plan.shadow_units)
        channel, pos = np.divmod(plan.protected[~spare], plan.hw_out)
        tile_pos = np.unique((channel // plan.pe) * plan.hw_out + pos)
        np.add.at(groups, tile_pos // plan.hw_out, 1)
    return groups


def keeps_weights(plan: LayerPlan) -> bool:
    """Whether the layer's weights stay on chip from one ``run_layer`` call of a run to the next: a conv/linear of at
    most two tiles, whose rows the two ping-pong buffers hold at once (and its bias/shift, loaded whole)."""
    return plan.op is fmt.Op.CONV and plan.tiles <= 2


def _call_cycles(plan: LayerPlan, config: AccelConfig, m: int, resident: bool = False) -> LayerCycles:
    """One ``run_layer`` call (engine.hpp) without the descriptor fetch: one image, or a chunk of ``m`` images of a
    batched vector layer (its positions are the images: ``m`` input and output records, every protected neuron
    recomputed and corrected once per image, one weight load for them all)."""
    lat = config.latency
    maps = m if plan.map_batched else 1  # a map-batched chunk: m input loads, m stores, m passes of every tile
    if plan.map_batched or m == 1:
        load_input = maps * (plan.in_trips + lat.load_input)
    else:
        load_input = m * plan.in_layout.pixel_beats + lat.load_input
    params = weights = table = compute = correct = pool = overlapped = 0
    if plan.op is fmt.Op.MAXPOOL and plan.on_chip_input:  # the conv's output buffer, OUT_BANKS channels a read
        load_input = 0
        rows = -(-plan.in_c // config.out_banks)
        pool = plan.hw_out * rows * plan.kernel * plan.kernel + lat.pool
        store = plan.out_beats + lat.store
    elif plan.op is fmt.Op.MAXPOOL:
        pool = plan.hw_out * plan.cg * plan.kernel * plan.kernel + lat.pool
        store = plan.out_beats + lat.store
    else:
        rows = np.minimum(plan.pe, plan.out_c - plan.pe * np.arange(plan.tiles))
        params = 0 if resident else plan.out_c + lat.params
        tile_weights = np.zeros(plan.tiles, np.int64) if resident else rows * plan.ft * (plan.simd // 8) + lat.weights
        if plan.map_batched:  # each image a pass of its own over the tile
            tile_work = maps * ((plan.hw_out + (plan.copies - 1) * protected_groups(plan)) * plan.mac_words + lat.mac)
        else:
            positions = plan.hw_out * m
            tile_work = (positions + (plan.copies - 1) * protected_groups(plan) * m) * plan.mac_words + lat.mac
        if plan.n_protected:
            tile_entries = np.bincount(plan.protected // plan.hw_out // plan.pe, minlength=plan.tiles)
            tile_table = tile_entries + lat.table
            table = int(tile_table.sum())
            tile_work = tile_work + tile_table
            if plan.map_batched:  # the corrector after every tile, over its entries once per image
                correct = int((tile_entries * m + lat.lcu).sum())
            else:
                correct = plan.n_protected * m + lat.lcu
        compute = int(tile_work.sum()) - table
        weights = int(tile_weights.sum())
        # input load and (params, tile 0's weights) share the HP port's read channel: their beats add up, the shorter
        # start-up latency hides; tile t's work || tile t+1's weights
        head = load_input if resident else (load_input + params + int(tile_weights[0])
                                            - min(lat.load_input, lat.params + lat.weights))
        next_weights = np.append(tile_weights[1:], 0)
        body = int(np.maximum(tile_work, next_weights).sum())
        overlapped = load_input + params + weights + table + compute - head - body
        if plan.map_batched:
            store = maps * (plan.out_beats + lat.store)
        else:
            store = (plan.out_c * m if plan.raw else m * plan.out_layout.pixel_beats * plan.hw_out) + lat.store
    return LayerCycles(plan.index, plan.name, 0, load_input, params, weights, table, compute, correct, pool, store,
                       overlapped)


def call_cycles(plan: LayerPlan, config: AccelConfig, images: int = 1, resident: bool = False) -> LayerCycles:
    """The first ``run_layer`` call of a run, without the descriptor fetch: one image, or a chunk of ``images`` of a
    batched layer (what the kernel completes before it stops on an error it meets while running); ``resident``: a
    warm run of kept weights, which loads no parameters."""
    return _call_cycles(plan, config, images, resident=resident and plan.op is fmt.Op.CONV)


def chunks(plan: LayerPlan, config: AccelConfig, images: int) -> list[int]:
    """The image counts of the kernel's ``run_layer`` calls for this layer in a run of ``images`` images: one per
    image, or ``max_batch`` at a time for a batched layer (the last chunk holds the rest)."""
    if not plan.batched or images == 1:
        return [1] * images
    full, rest = divmod(images, config.max_batch)
    return [config.max_batch] * full + ([rest] if rest else [])


def layer_cycles(plan: LayerPlan, config: AccelConfig, images: int = 1, kept: bool = False,
                 warm: bool = False) -> LayerCycles:
    """Cycles of one descriptor in a run of ``images`` images (layer-major: fetched once, then every image).

    ``kept``: the image keeps the network's weights on chip (a nonzero WEIGHTS_TAG), so only the run's first call
    loads this layer's parameters; ``warm``: a previous run with the same tag left them there, so no call does."""
    fetch = LayerCycles(plan.index, plan.name, fmt.DESC_WORDS + config.latency.descriptor, *([0] * 9))
    calls = chunks(plan, config, images)
    conv = plan.op is fmt.Op.CONV
    total = fetch.plus(_call_cycles(plan, config, calls[0], resident=conv and warm))
    keep = conv and (warm or kept or keeps_weights(plan))
    for m, count in sorted(Counter(calls[1:]).items()):
        total = total.plus(_call_cycles(plan, config, m, resident=keep), count)
    return total


def upset_cycles(config: AccelConfig, items: np.ndarray, layers) -> dict[int, int]:
    """``{layer: cycles}`` output upsets add to each of the neuron ``layers`` (execution order) of a run with the
    upset list ``items`` (FI_CTRL.UPSETS, ``hls/include/resilq/upsets.hpp``): the list's read start-up and one per
    item the layer's load reads (:func:`resilq.hls.upset_list.layer_counts`), one per original slot flipped after
    its tile (the shadow copies flip in the corrector's own cycles)."""
    return {layer: config.latency.load_input + read + originals
            for layer, (read, originals) in layer_counts(items, layers).items()}


@dataclass(frozen=True)
class CycleReport:
    """The modelled cycles of a run of ``images`` images (``layers``: each descriptor over the whole run)."""

    layers: list[LayerCycles]
    run_overhead: int  # header + profile write, once per run
    plans: list[LayerPlan]
    config: AccelConfig
    images: int = 1
    kept: bool = False  # the network's weights stay on chip between runs (WEIGHTS_TAG)
    warm: bool = False  # ... and a previous run left them there

    @property
    def total(self) -> int:
        return self.run_overhead + sum(layer.total for layer in self.layers)

    @property
    def per_inference(self) -> float:
        """Cycles per image of this run, without the once-per-run header/profile overhead (an int at 1 image)."""
        work = sum(layer.total for layer in self.layers)
        return work if self.images == 1 else work / self.images

    def run(self, n_images: int) -> int:
        """The CYCLES register after a run of ``n_images`` images."""
        return self.run_overhead + sum(layer_cycles(p, self.config, n_images, self.kept, self.warm).total
                                       for p in self.plans)

    def at(self, n_images: int) -> CycleReport:
        """The same network's report for a run of ``n_images`` images."""
        return CycleReport([layer_cycles(p, self.config, n_images, self.kept, self.warm) for p in self.plans],
                           self.run_overhead, self.plans, self.config, n_images, self.kept, self.warm)

    def microseconds(self, mhz: float) -> float:
        return self.per_inference / mhz


def cycle_report(model: Model, config: AccelConfig, images: int = 1, kept: bool = False,
                 warm: bool = False) -> CycleReport:
    """The modelled run of ``images`` images; ``kept``/``warm`` as :func:`layer_cycles` (``kept`` only where the
    network's weights fit on chip: :func:`resilq.hls.mapping.weights_fit_on_chip`, as :func:`resilq.hls.packing.pack`)."""
    plans = plan_model(model, config)
    kept = kept and weights_fit_on_chip(plans, config)
    warm = warm and kept
    overhead = (fmt.HEADER_WORDS + config.latency.run) + (fmt.PROFILE_WORDS * len(plans) + config.latency.store)
    return CycleReport([layer_cycles(p, config, images, kept, warm) for p in plans], overhead, plans, config, images,
                       kept, warm)


def cycles_per_inference(config: AccelConfig | None = None):
    """A ``cycles(model) -> int | None`` callable for cost tables (``resilq.harden.overhead.CycleModel``):
    the accelerator's cycles of one inference, or ``None`` for a model this build cannot map."""
    from resilq.errors import UnsupportedModelError

    config = config or AccelConfig()

    def cycles(model: Model) -> int | None:
        try:
            return cycle_report(model, config).per_inference
        except UnsupportedModelError:
            return None

    return cycles
