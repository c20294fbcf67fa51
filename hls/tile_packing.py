"""Tile packing: reorder a layer's output channels so its protected neurons share few PE tiles.

The accelerator recomputes a shadow pass for a whole tile at every output position where the tile's lanes hold
more protected neurons than its dedicated shadow lanes take (``cap = shadow_units // (copies - 1)``; with no shadow
lanes, any protected neuron: ``conv_tile`` in hls/include/resilq/conv.hpp; the cycle model's ``G_t``,
:func:`resilq.hls.cycles.protected_groups`). With the protected neurons scattered over the tiles, ``split`` and
``tmr`` pay for ``(copies - 1) x sum_t G_t`` positions -- far more than their extra slots.

Permuting the output channels of a compute layer (weights, bias, shift, protected neurons) and the input
channels of the next compute layer the same way (through max-pools, and through a flatten as blocks of
``H x W`` features) gives a network that computes the same class scores bit for bit: every accumulator sums
the same integer products. :func:`pack_tiles` chooses, per protected layer, the order that puts channels
with overlapping protected positions into the same tiles (greedy: seed a tile with the channel of most
protected positions, then add the channel that adds the fewest new positions; with shadow lanes the opposite,
spread them so that few positions exceed what the shadow lanes take), lanes balanced so that no
lane's shadow buffer fills sooner than before. A layer is left as it is when the new order saves nothing
or would overflow the build's limits (:func:`resilq.hls.mapping.plan_model`).

The packed model is a different numbering of the same network: its slots, NVF rows and critical-table
entries follow the new channel order (``metadata["tile_packing"]`` keeps, per layer, which original
channel each new channel is), so campaigns and the driver use the packed model as they would any other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, UnsupportedModelError
from ..ir.layers import Conv2d, Flatten, Linear, MaxPool2d, Protection
from ..ir.model import Model
from .config import AccelConfig

METADATA_KEY = "tile_packing"


@dataclass(frozen=True)
class LayerPacking:
    """What packing did to one protected layer: ``order[k]`` is the original channel now at channel ``k``."""

    index: int
    name: str
    order: np.ndarray  # int64 [C]
    groups_before: int  # sum over tiles of the positions the array recomputes (the cycle model's G_t)
    groups_after: int
    reason: str = ""  # why the layer kept its order ("" when packed)

    @property
    def packed(self) -> bool:
        return not self.reason


def tile_groups(channels: np.ndarray, positions: np.ndarray, pe: int, hw: int, cap: int = 0) -> int:
    """Sum over tiles of the output positions where the tile's lanes hold more than ``cap`` protected neurons (the
    positions the array recomputes; ``cap`` = what the shadow lanes take, 0 without them)."""
    if channels.size == 0:
        return 0
    _, counts = np.unique((channels // pe) * hw + positions, return_counts=True)
    return int(np.count_nonzero(counts > cap))


def _position_sets(prot: Protection, n_channels: int, hw: int) -> np.ndarray:
    """(C, hw) bool: the protected positions of each output channel."""
    sets = np.zeros((n_channels, hw), dtype=bool)
    channel, pos = np.divmod(prot.neurons.astype(np.int64), hw)
    sets[channel, pos] = True
    return sets


def greedy_order(sets: np.ndarray, pe: int) -> np.ndarray:
    """A channel order whose tiles of ``pe`` channels cover few protected positions (a build without dedicated
    shadow lanes, where every protected position of a tile costs its shadow passes).

    Tiles are filled one after the other with protected channels: the first channel of a tile is the
    remaining one with most protected positions, each next one the channel that adds the fewest positions not
    yet in the tile (ties: most positions shared with it, then the lower channel). Within a tile the channels
    go to the lanes with the fewest protected neurons so far (the per-lane shadow buffers fill evenly). The
    channels without protected neurons fill the rest, in their original order.
    """
    n_channels = sets.shape[0]
    counts = sets.sum(axis=1)
    remaining = [int(c) for c in np.flatnonzero(counts)]
    lane_load = np.zeros(pe, dtype=np.int64)
    order: list[int] = []
    while remaining:
        cand = np.asarray(remaining)
        seed = int(cand[np.lexsort((cand, -counts[cand]))[0]])
        tile = [seed]
        remaining.remove(seed)
        union = sets[seed].copy()
        while len(tile) < pe and remaining:
            cand = np.asarray(remaining)
            new = (sets[cand] & ~union).sum(axis=1)
            shared = (sets[cand] & union).sum(axis=1)
            pick = int(cand[np.lexsort((cand, -shared, new))[0]])
            tile.append(pick)
            remaining.remove(pick)
            union |= sets[pick]
        if len(tile) < pe:  # the last protected tile: unprotected channels fill its other lanes
            fill = [int(c) for c in np.flatnonzero(counts == 0) if c not in order][: pe - len(tile)]
            tile += fill
        order += _balanced_lanes(tile, counts, lane_load)
    placed = set(order)
    order += [c for c in range(n_channels) if c not in placed]
    return np.asarray(order, dtype=np.int64)


def _balanced_lanes(tile: list[int], counts: np.ndarray, lane_load: np.ndarray) -> list[int]:
    """The channels of one tile in lane order: the most protected first, each to the lane with the fewest protected
    neurons so far (the per-lane shadow buffers fill evenly); ``lane_load`` is updated."""
    lanes = np.full(len(tile), -1)
    free = list(range(len(tile)))
    for k in sorted(range(len(tile)), key=lambda k: (-counts[tile[k]], tile[k])):
        lane = min(free, key=lambda q: (lane_load[q], q))
        free.remove(lane)
        lanes[lane] = tile[k]
        lane_load[lane] += counts[tile[k]]
    return [int(c) for c in lanes]


def spread_order(sets: np.ndarray, pe: int, cap: int) -> np.ndarray:
    """A channel order whose tiles hold at most ``cap`` protected neurons at each position where it can: what the
    dedicated shadow lanes take in the position's one pass (``cap >= 1``).

    The opposite of :func:`greedy_order`'s packing: the protected channels, most protected positions first, each
    go to the tile with room whose positions they push past ``cap`` the fewest times (ties: most positions already
    past it, then the tile holding the fewest protected neurons, then the lower tile); the unprotected channels
    fill the rooms left, in their original order; lanes balanced within each tile as in :func:`greedy_order`."""
    n_channels, hw = sets.shape
    counts = sets.sum(axis=1)
    n_tiles = -(-n_channels // pe)
    room = [min(pe, n_channels - t * pe) for t in range(n_tiles)]
    held = np.zeros((n_tiles, hw), dtype=np.int64)
    members: list[list[int]] = [[] for _ in range(n_tiles)]
    for c in sorted((int(c) for c in np.flatnonzero(counts)), key=lambda c: (-counts[c], c)):
        open_tiles = [t for t in range(n_tiles) if len(members[t]) < room[t]]
        new = [(sets[c] & (held[t] == cap)).sum() for t in open_tiles]
        over = [(sets[c] & (held[t] > cap)).sum() for t in open_tiles]
        t = min(range(len(open_tiles)), key=lambda k: (new[k], -over[k], held[open_tiles[k]].sum(), open_tiles[k]))
        members[open_tiles[t]].append(c)
        held[open_tiles[t]] += sets[c]
    rest = iter(int(c) for c in np.flatnonzero(counts == 0))
    lane_load = np.zeros(pe, dtype=np.int64)
    order: list[int] = []
    for t in range(n_tiles):
        members[t] += [next(rest) for _ in range(room[t] - len(members[t]))]
        order += _balanced_lanes(members[t], counts, lane_load)
    return np.asarray(order, dtype=np.int64)


def _next_compute(model: Model, index: int) -> tuple[int, int | None]:
    """The compute layer that reads layer ``index``'s channels, and the H x W block size when a flatten lies
    between them (None: it reads them as channels)."""
    shape = model.out_shape(index)
    for j in range(index + 1, len(model.layers)):
        layer = model.layers[j]
        if isinstance(layer, (Conv2d, Linear)):
            return j, (int(np.prod(shape[1:])) if len(shape) > 1 and isinstance(layer, Linear) else None)
        if isinstance(layer, Flatten):
            continue
        if not isinstance(layer, MaxPool2d):
            raise UnsupportedModelError(f"layer {layer.name!r}: tile packing cannot pass a {type(layer).__name__}")
        shape = model.out_shape(j)
    raise UnsupportedModelError(f"layer {model.layers[index].name!r} is the classifier: its channels are the classes")


def permute_channels(model: Model, index: int, order: np.ndarray) -> Model:
    """``model`` with the output channels of compute layer ``index`` in ``order`` (new channel ``k`` is old
    channel ``order[k]``) and the consumer's input channels to match: the same class scores, bit for bit."""
    layer = model.layers[index]
    if not isinstance(layer, (Conv2d, Linear)):
        raise UnsupportedModelError(f"layer {layer.name!r} is not a conv/linear layer")
    order = np.asarray(order, dtype=np.int64)
    n = layer.out_channels
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ParameterError(f"layer {layer.name!r}: a channel order must be a permutation of 0..{n - 1}")
    consumer, block = _next_compute(model, index)
    shape = model.out_shape(index)
    hw = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    inverse = np.empty_like(order)
    inverse[order] = np.arange(n)
    prot = layer.protection
    if prot is not None:
        channel, pos = np.divmod(prot.neurons.astype(np.int64), hw)
        prot = Protection(prot.scheme, np.sort(inverse[channel] * hw + pos).astype(prot.neurons.dtype))
    requant = None if layer.requant is None else dataclasses.replace(layer.requant, shift=layer.requant.shift[order])
    new = dataclasses.replace(layer, weight=np.ascontiguousarray(layer.weight[order]),
                              bias=np.ascontiguousarray(layer.bias[order]), requant=requant, protection=prot)
    nxt = model.layers[consumer]
    columns = order if block is None else (order[:, None] * block + np.arange(block)).ravel()
    after = dataclasses.replace(nxt, weight=np.ascontiguousarray(nxt.weight[:, columns]))
    layers = list(model.layers)
    layers[index], layers[consumer] = new, after
    return model.replace(layers=tuple(layers))


def pack_tiles(model: Model, config: AccelConfig | None = None) -> tuple[Model, list[LayerPacking]]:
    """Reorder the channels of every protected layer so its protected neurons share few tiles of
    ``config.pe`` lanes; the packed model and what was done per layer."""
    from .mapping import plan_model

    config = config or AccelConfig()
    pe = config.pe
    plan_model(model, config)  # the model must map before packing (its own errors, named)
    packed, report = model, []
    orders = {k: np.asarray(v, dtype=np.int64) for k, v in model.metadata.get(METADATA_KEY, {}).get("orders", {}).items()}
    for i in model.neuron_layers:
        prot = packed.protection(i)
        if prot is None or not prot.n_protected:
            continue
        layer = packed.layers[i]
        shape = packed.out_shape(i)
        hw = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        channel, pos = np.divmod(prot.neurons.astype(np.int64), hw)
        cap = config.shadow_units // (prot.copies - 1)  # protected neurons a position's shadow lanes take
        before = tile_groups(channel, pos, pe, hw, cap)
        sets = _position_sets(prot, layer.out_channels, hw)
        order = greedy_order(sets, pe) if cap == 0 else spread_order(sets, pe, cap)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        after = tile_groups(inverse[channel], pos, pe, hw, cap)
        reason = ""
        if after >= before:
            reason = "already packed" if after == before else "packing would not save positions"
        else:
            candidate = permute_channels(packed, i, order)
            try:
                plan_model(candidate, config)
            except UnsupportedModelError as err:
                reason = f"the packed order does not map: {err}"
            else:
                packed = candidate
                previous = orders.get(layer.name, np.arange(order.size))
                orders[layer.name] = previous[order]
        report.append(LayerPacking(i, layer.name, order if not reason else np.arange(order.size), before,
                                   before if reason else after, reason))
    if packed is not model:
        meta = {**packed.metadata, METADATA_KEY: {"pe": pe, "orders": {k: v.tolist() for k, v in orders.items()}}}
        packed = packed.replace(metadata=meta)
    return packed, report
