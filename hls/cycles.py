"""Cycle model of the accelerator, from its loop structure (docs/accelerator.md, "Cycle model").

Every pipelined loop of the kernel runs at II = 1 (the profile writer at II = 2) and costs its trip
count plus a modelled pipeline depth (:class:`.config.Latency`). Loops on different ports overlap where
the kernel double-buffers: the input load (activation master) runs beside the layer's bias/shift load and
tile 0's weight rows (weight master), and tile t's table walk + compute runs beside tile t+1's weight load
(ping-pong weight buffers); each such pair costs the longer of the two. Everything else runs one after the
other. The C-simulated kernel counts the same way, iteration by iteration, and the tests check the two
agree on every layer of every model they run. Trip counts, per image:

=============  ===========================================================================
descriptor     DESC_WORDS
load input     64-bit beats: H_in * W_in * ceil(C_in/8)     (pixel-major, channels padded to whole beats), or
               ceil(C_in * H_in * W_in / 8) for a dense network input (imageformat, FORMAT 2)
params         output channels, once per layer          (one 64-bit beat per channel)
weights        rows * k*k*ceil(C/SIMD) * SIMD/8         (64-bit beats) per tile
table walk     protected neurons of the tile's channels (only in a protected layer)
compute        (H_out*W_out + (copies-1) * G_t) * words per tile, G_t = positions of the tile that
               hold a protected neuron in any lane (each is recomputed copies-1 times); words =
               k*k*ceil(C/SIMD), or k when C*k <= SIMD (a kernel row packed into the SIMD lanes)
corrector      protected neurons of the layer
maxpool        H_out*W_out * ceil(C/SIMD) * k*k
store          H_out * W_out * ceil(C_out/8) beats (int8) or C_out words (int32 classifier)
=============  ===========================================================================

Per run: HEADER_WORDS + run latency, then every image, then 2 profile words per descriptor + store
latency. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from resilq.ir import Model

from . import imageformat as fmt
from .config import AccelConfig
from .mapping import LayerPlan, plan_model


@dataclass(frozen=True)
class LayerCycles:
    """Cycles of one descriptor for one image, by loop."""

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


@dataclass(frozen=True)
class CycleReport:
    layers: list[LayerCycles]
    run_overhead: int  # header + profile write, once per run

    @property
    def per_inference(self) -> int:
        return sum(layer.total for layer in self.layers)

    def run(self, n_images: int) -> int:
        """The CYCLES register after a run of ``n_images`` images."""
        return self.run_overhead + n_images * self.per_inference

    def microseconds(self, mhz: float) -> float:
        return self.per_inference / mhz


def protected_groups(plan: LayerPlan) -> np.ndarray:
    """Per tile, the number of output positions holding a protected neuron in any of its lanes."""
    groups = np.zeros(plan.tiles, dtype=np.int64)
    if plan.n_protected:
        channel, pos = np.divmod(plan.protected, plan.hw_out)
        tile_pos = np.unique((channel // plan.pe) * plan.hw_out + pos)
        np.add.at(groups, tile_pos // plan.hw_out, 1)
    return groups


def layer_cycles(plan: LayerPlan, config: AccelConfig) -> LayerCycles:
    lat = config.latency
    descriptor = fmt.DESC_WORDS + lat.descriptor
    load_input = plan.in_beats + lat.load_input
    params = weights = table = compute = correct = pool = overlapped = 0
    if plan.op is fmt.Op.MAXPOOL:
        pool = plan.hw_out * plan.cg * plan.kernel * plan.kernel + lat.pool
        store = plan.out_beats + lat.store
    else:
        rows = np.minimum(plan.pe, plan.out_c - plan.pe * np.arange(plan.tiles))
        params = plan.out_c + lat.params
        tile_weights = rows * plan.ft * (plan.simd // 8) + lat.weights
        tile_work = (plan.hw_out + (plan.copies - 1) * protected_groups(plan)) * plan.mac_words + lat.mac
        if plan.n_protected:
            tile_table = np.bincount(plan.protected // plan.hw_out // plan.pe, minlength=plan.tiles) + lat.table
            table = int(tile_table.sum())
            tile_work = tile_work + tile_table
            correct = plan.n_protected + lat.lcu
        compute = int(tile_work.sum()) - table
        weights = int(tile_weights.sum())
        # input load || (params, tile 0's weights); tile t's work || tile t+1's weights
        head = max(load_input, params + int(tile_weights[0]))
        next_weights = np.append(tile_weights[1:], 0)
        body = int(np.maximum(tile_work, next_weights).sum())
        overlapped = load_input + params + weights + table + compute - head - body
        store = (plan.out_c if plan.raw else plan.out_beats) + lat.store
    return LayerCycles(plan.index, plan.name, descriptor, load_input, params, weights, table, compute, correct, pool,
                       store, overlapped)


def cycle_report(model: Model, config: AccelConfig) -> CycleReport:
    plans = plan_model(model, config)
    overhead = (fmt.HEADER_WORDS + config.latency.run) + (fmt.PROFILE_WORDS * len(plans) + config.latency.store)
    return CycleReport([layer_cycles(p, config) for p in plans], overhead)


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
