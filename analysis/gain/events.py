"""The single-bit-flip events of one neuron, unprotected and under each scheme, decided exactly.

For a work unit (a chunk of inputs, some neurons of one layer) this builds every event's value in the
neuron's original slot -- a flipped byte for the unprotected neuron; for a protected one, the corrector's
output (:func:`resilq.arith.correct`) when one of its slots (original or shadow) holds the flipped byte,
with the slots computing what the executor computes (``split_half`` for split, the full value otherwise)
-- and asks the fault-propagation core for the top-1 of each. Only the unit's neuron is protected: the
other neurons keep their unprotected values (interactions between protected neurons are not scored).
"""

from __future__ import annotations

import numpy as np

from ..arith import Scheme, correct, flip_bit, split_half
from ..ir.layers import neuron_shift
from ..nvf.runner import Context, Unit
from .layout import BITS, BLOCKS, ROWS

_BITS = np.arange(BITS)


def _bit_of(value: np.ndarray) -> np.ndarray:
    """(..., 8) the value of bit k of ``value`` (..., 1): the direction of a flip of that bit."""
    return (value.view(np.uint8).astype(np.int64) >> _BITS) & 1


def _by_direction(hit: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Sum over inputs (axis 0) of ``hit`` split by ``direction``: (..., 2) per neuron, last axis = direction."""
    zero = (hit & (direction == 0)).sum(axis=0)
    one = (hit & (direction == 1)).sum(axis=0)
    return np.stack([zero, one], axis=-1)


def slot_values(scheme: Scheme, acc: np.ndarray, value: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """What each slot of a neuron protected by ``scheme`` holds without a fault (n, m)."""
    return split_half(acc, shift) if scheme is Scheme.SPLIT else value


def corrected_events(scheme: Scheme, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fault_free (n, m), events (n, m, copies, 8))``: the corrector's output without a fault and with bit k
    of slot j flipped (the other slots fault-free)."""
    copies = scheme.copies
    fault_free = correct(scheme, [base] * copies)
    flipped = flip_bit(base[..., None], _BITS)  # (n, m, 8)
    plain = np.broadcast_to(base[..., None], flipped.shape)
    events = np.stack([correct(scheme, [flipped if j == c else plain for c in range(copies)])
                       for j in range(copies)], axis=2)
    return fault_free, events


def gain_counts(ctx: Context, unit: Unit) -> np.ndarray:
    """(ROWS, neurons of the unit): every counter of :mod:`resilq.gain.layout`, summed over the unit's inputs."""
    model, layer = ctx.model, unit.layer
    golden = ctx.golden(unit.start, unit.stop)
    n, neurons = golden.n, np.asarray(unit.neurons, dtype=np.int64)
    m = neurons.size
    value = golden.out[layer][:, neurons].astype(np.int8)  # (n, m)
    acc = golden.acc[layer][:, neurons].astype(np.int64)
    shift = neuron_shift(model.layers[layer], model.out_shape(layer), neurons)[None, :]
    ref = golden.top1  # (n,) fault-free top-1 of the unprotected network

    # Every value to evaluate, in one call of the core (it skips golden values and evaluates each distinct
    # (input, neuron, value) once).
    parts = [flip_bit(value[..., None], _BITS)]  # unprotected events (n, m, 8)
    per_scheme, column = {}, BITS
    for s in Scheme:
        base = slot_values(s, acc, value, shift)
        fault_free, events = corrected_events(s, base)
        per_scheme[s] = (base, column)  # column of the fault-free value; the events follow it
        parts += [fault_free[..., None], events.reshape(n, m, -1)]
        column += 1 + s.copies * BITS
    values = np.concatenate(parts, axis=2)  # (n, m, E)
    xi = np.broadcast_to(np.arange(n)[:, None, None], values.shape)
    nn = np.broadcast_to(neurons[None, :, None], values.shape)
    top = ctx.propagator.top1(golden, layer, nn.ravel(), xi.ravel(), values.ravel()).reshape(values.shape)

    out = np.zeros((ROWS, m), dtype=np.float64)

    def put(name: str, per_neuron: np.ndarray) -> None:
        b = BLOCKS[name]
        out[b.offset:b.offset + b.size] = np.asarray(per_neuron, dtype=np.float64).reshape(m, b.size).T

    direction = _bit_of(value[..., None])  # (n, m, 8)
    put("unprotected", _by_direction(top[:, :, :BITS] != ref[:, None, None], direction))
    put("population", _by_direction(np.ones_like(direction, dtype=bool), direction))
    for s, (base, start) in per_scheme.items():
        own_top1 = top[:, :, start]  # (n, m): the protected network's fault-free top-1
        ev = top[:, :, start + 1:start + 1 + s.copies * BITS].reshape(n, m, s.copies, BITS)
        d = np.broadcast_to(_bit_of(base[..., None])[:, :, None, :], ev.shape)
        put(f"{s.label}.own", _by_direction(ev != own_top1[:, :, None, None], d))
        put(f"{s.label}.ref", _by_direction(ev != ref[:, None, None, None], d))
        put(f"{s.label}.slot_population", _by_direction(np.ones_like(d, dtype=bool), d))
        put(f"{s.label}.changed", (own_top1 != ref[:, None]).sum(axis=0))
    return out


__all__ = ["corrected_events", "gain_counts", "slot_values"]
