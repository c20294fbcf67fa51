"""Which counters an exact gain analysis keeps per neuron, and where they sit in the analysis rows.

Per neuron, over the analysis inputs (all counts of (input, slot, bit) single-bit-flip events):

* ``unprotected`` (8 bits, 2 directions): events of the neuron's one slot that change the top-1;
* ``population`` (8, 2): how many events there are per bit and direction (so rates can be read);
* per scheme ``s``: ``own`` (copies, 8, 2) -- events of the protected neuron's slots (shadows included, the
  corrector applied) that change the top-1 from the *protected* network's fault-free top-1 (what a campaign's
  critical-fault rate counts); ``ref`` (copies, 8, 2) -- the same events counted against the *unprotected*
  network's fault-free top-1; ``slot_population`` (copies, 8, 2); ``changed`` -- inputs whose fault-free
  top-1 the protection itself changes (only ``split`` can: ``2·half`` instead of ``v``).

The direction of a flip is the value of the flipped bit before the flip: 0 means a 0->1 flip, 1 a 1->0 flip.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arith import Scheme

BITS = 8
DIRECTIONS = ("0->1", "1->0")


@dataclass(frozen=True)
class Block:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def blocks() -> dict[str, Block]:
    """Name -> block of rows: ``unprotected``, ``population``, then ``<scheme>.own/.ref/.slot_population/.changed``."""
    out, offset = {}, 0

    def add(name: str, shape: tuple[int, ...]) -> None:
        nonlocal offset
        out[name] = Block(name, shape, offset)
        offset += out[name].size

    add("unprotected", (BITS, 2))
    add("population", (BITS, 2))
    for s in Scheme:
        add(f"{s.label}.own", (s.copies, BITS, 2))
        add(f"{s.label}.ref", (s.copies, BITS, 2))
        add(f"{s.label}.slot_population", (s.copies, BITS, 2))
        add(f"{s.label}.changed", ())
    return out


BLOCKS = blocks()
ROWS = sum(b.size for b in BLOCKS.values())

__all__ = ["BITS", "BLOCKS", "Block", "DIRECTIONS", "ROWS", "blocks"]
