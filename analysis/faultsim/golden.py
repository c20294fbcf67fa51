"""Fault-free ("golden") tensors of a batch, computed once by the reference executor.

A fault changes nothing before its layer, so everything the propagation needs is read from here: every
layer's output, every compute layer's accumulators, the top-1, and for each max-pool input element the
maximum of the *other* elements of its window (so a changed value is pooled with one comparison).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import MismatchError
from ..ir.executor import Executor, check_input, top1
from ..ir.layers import Conv2d, Linear, MaxPool2d
from ..ir.model import Model
from .outmap import OutputMap


def inputs_key(x: np.ndarray) -> str:
    """Digest of an input batch (shape, dtype, bytes): names what holds its golden tensors (a worker's analysis
    context, a spill folder)."""
    h = hashlib.sha256(repr((x.shape, str(x.dtype))).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def is_tiling_pool(layer) -> bool:
    """A max-pool whose windows do not overlap (kernel == stride): each element feeds at most one output."""
    return isinstance(layer, MaxPool2d) and layer.kernel == layer.stride


class Golden:
    """Golden tensors of the int8 batch ``x`` (N inputs), flattened per layer to ``(N, size)``.

    ``out[i]``: layer ``i``'s output as floats (exact small integers); ``out[-1]`` is the input.
    ``acc[i]``: accumulators of compute layer ``i`` in its exact float dtype. ``top1``: (N,) fault-free top-1.
    """

    def __init__(self, model: Model, x: np.ndarray, maps: dict[int, OutputMap], executor: Executor | None = None):
        x = check_input(model, x)
        self.model = model
        self.n = int(x.shape[0])
        executor = executor or Executor(model)
        run = executor.run(x, collect=True, batch_size=max(1, self.n), accumulators=True)
        self.top1 = run.predictions.astype(np.int64)
        self.out: dict[int, np.ndarray] = {-1: x.reshape(self.n, -1).astype(np.float32)}
        self.acc: dict[int, np.ndarray] = {}
        self._others: dict[int, np.ndarray] = {}
        for i, (layer, act) in enumerate(zip(model.layers, run.activations)):
            if isinstance(layer, (Conv2d, Linear)):
                dtype = maps[i].dtype
                self.acc[i] = run.accumulators[i].reshape(self.n, -1).astype(dtype)
                self.out[i] = act.reshape(self.n, -1).astype(dtype)
                self._self_check(i, maps[i])
            else:
                self.out[i] = act.reshape(self.n, -1).astype(np.float32)

    @classmethod
    def restore(cls, model: Model, maps: dict[int, OutputMap], x: np.ndarray, out: dict[int, np.ndarray],
                acc: dict[int, np.ndarray]) -> Golden:
        """A Golden of the int8 batch ``x`` from layer tensors computed earlier (:mod:`.spill`), checked like a
        fresh one: every compute layer's output map must reproduce its stored outputs from its stored
        accumulators. The input and the top-1 are taken from ``x`` and the logits, not from storage."""
        x = check_input(model, x)
        self = cls.__new__(cls)
        self.model, self.n = model, int(x.shape[0])
        self.out = {-1: x.reshape(self.n, -1).astype(np.float32), **out}
        self.acc, self._others = acc, {}
        self.top1 = top1(self.logits).astype(np.int64)
        for i in acc:
            self._self_check(i, maps[i])
        return self

    def _self_check(self, index: int, omap: OutputMap) -> None:
        """The output map must reproduce the executor's golden output of every neuron (chain of trust)."""
        again = omap(self.acc[index].copy())
        if not np.array_equal(again, self.out[index]):
            bad = np.argwhere(again != self.out[index])[0]
            raise MismatchError(f"fault simulator: output map of layer {self.model.layers[index].name!r} disagrees "
                                f"with the executor at input {bad[0]}, neuron {bad[1]}")

    @property
    def logits(self) -> np.ndarray:
        return self.out[len(self.model.layers) - 1]

    def others_max(self, pool_index: int) -> np.ndarray:
        """For a tiling max-pool: (N, size_in) max of the other elements of each input element's window.

        Elements that no window covers (floor-mode borders) get +inf: no value can change the pool.
        """
        if pool_index not in self._others:
            layer = self.model.layers[pool_index]
            c, h, w = self.model.in_shape(pool_index)
            k = layer.kernel
            _, ho, wo = self.model.out_shape(pool_index)
            x = self.out[pool_index - 1].reshape(self.n, c, h, w)
            full = np.full((self.n, c, h, w), np.inf, dtype=np.float32)
            # Window element (dy, dx) of every window is a strided view; the max of the others of element i
            # is max(prefix max before i, suffix max after i) in window order: 2*k*k elementwise passes.
            offsets = [(dy, dx) for dy in range(k) for dx in range(k)]
            elems = [x[:, :, dy:ho * k:k, dx:wo * k:k] for dy, dx in offsets]
            suffix = [None] * len(elems)
            for i in range(len(elems) - 2, -1, -1):
                nxt = elems[i + 1]
                suffix[i] = nxt if suffix[i + 1] is None else np.maximum(nxt, suffix[i + 1])
            prefix = None
            for i, (dy, dx) in enumerate(offsets):
                view = full[:, :, dy:ho * k:k, dx:wo * k:k]
                if prefix is None and suffix[i] is None:  # a 1x1 window: no others
                    view[...] = -np.inf
                elif prefix is None:
                    view[...] = suffix[i]
                elif suffix[i] is None:
                    view[...] = prefix
                else:
                    np.maximum(prefix, suffix[i], out=view)
                prefix = elems[i] if prefix is None else np.maximum(prefix, elems[i])
            self._others[pool_index] = full.reshape(self.n, -1)
        return self._others[pool_index]
