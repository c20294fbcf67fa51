"""``FaultSimulator``: top-1 of every input under each of many single faults, identical to the executor.

A fault ``(layer, slot, mask, mode)`` only ever changes ONE value that the next layer reads: the value its
neuron's original slot holds after the fault (and, for a protected neuron, after its corrector merged the
slots). This module turns each fault into that value per input, with :mod:`resilq.arith` exactly as the
executor does, and hands the changes to the value-level :class:`~resilq.faultsim.propagate.Propagator`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from ..arith import Scheme, apply_fault, clip_range, correct, requantize, split_half
from ..errors import ParameterError
from ..faults import Fault, slot_owner
from ..ir.executor import Executor, check_input
from ..ir.layers import neuron_shift
from ..ir.model import Model
from .backend import array_backend
from .fanout import FanoutTables
from .golden import Golden
from .propagate import Propagator
from .spill import GoldenSpill

#: Golden tensors above this many bytes are recomputed per call instead of being kept (per simulator).
DEFAULT_CACHE_BYTES = 2 << 30
#: Cases (fault x input) handed to the propagator at once; bounds the working memory (~100 B per case).
CASES_PER_CALL = 1 << 22
#: BLAS threads while propagating. The propagation's products are small (a cone's rows times a few hundred
#: columns): a multi-threaded BLAS spends more on waking and syncing threads than it saves, and on a loaded
#: machine it is several times slower (measured in benchmarks/campaign.py). Use processes for more cores.
BLAS_THREADS = 1


def limit_blas_threads(limit: int | None) -> AbstractContextManager:
    """At most ``limit`` BLAS threads inside the context (via threadpoolctl, which ships with scikit-learn;
    without it, e.g. next to the driver on a board, or with ``limit=None``: the pool is left as it is)."""
    if limit is None:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=limit, user_api="blas")


def uncached_inputs(model: Model, n: int, cache_bytes: int | None = None) -> int:
    """How many of ``n`` inputs a default :class:`FaultSimulator` recomputes (or, with a spill, reads back) the
    golden tensors of on every ``predictions`` call (0 when they all fit ``cache_bytes``; None: the default)."""
    cache_bytes = DEFAULT_CACHE_BYTES if cache_bytes is None else cache_bytes
    per_input = golden_bytes_per_input(model)
    batch = max(1, min(n, (1 << 30) // per_input))
    kept = int(cache_bytes // (per_input * batch)) * batch
    return max(0, n - kept)


def golden_bytes_per_input(model: Model) -> int:
    """Bytes of the golden tensors of one input (:class:`.Golden`): the input and every non-compute layer's
    output as float32, each compute layer's output and accumulators in its output map's exact dtype, and, for
    each tiling max-pool, the float32 maxima of the other elements of every window (``Golden.others_max``)."""
    from .golden import is_tiling_pool
    from .outmap import OutputMap

    total = 4 * int(np.prod(model.input.shape))
    for i, layer in enumerate(model.layers):
        size = model.out_size(i)
        if hasattr(layer, "weight"):
            total += 2 * size * np.dtype(OutputMap.of(model, i).dtype).itemsize
        else:
            total += 4 * size
            if is_tiling_pool(layer):
                total += 4 * int(np.prod(model.in_shape(i)))
    return total


class FaultSimulator:
    """Exact fault simulation of ``model`` on the int8 batch ``x`` (N inputs).

    ``predictions(faults)`` gives, for each fault alone, the top-1 of every input: the same numbers as
    ``Executor(model).run(x, faults=[f]).predictions``, at a fraction of the cost. ``golden`` is the
    fault-free top-1. ``batch_size`` splits the inputs into chunks whose golden tensors are computed once
    (and kept if they fit ``cache_bytes``). ``device`` ("cpu", "cuda"): the products of a change on torch
    tensors there (:mod:`.backend`; same results), None: numpy. ``spill_dir``: a folder where the chunks that
    do not fit the cache are written once and read back on later calls instead of being recomputed
    (:mod:`.spill`; processes on one machine share it); None: recompute them.
    """

    def __init__(self, model: Model, x: np.ndarray, batch_size: int | None = None,
                 cache_bytes: int | None = None, blas_threads: int | None = BLAS_THREADS,
                 device: str | None = None, spill_dir: str | os.PathLike | None = None):
        self.model = model
        self.blas_threads = blas_threads  # None: leave the BLAS thread pool as it is
        self.x = check_input(model, x)
        self.n = int(self.x.shape[0])
        if self.n == 0:
            raise ParameterError("the fault simulator needs at least one input (got an empty batch)")
        per_input = golden_bytes_per_input(model)
        if batch_size is None:
            batch_size = max(1, min(self.n, (1 << 30) // per_input))
        if batch_size < 1:
            raise ParameterError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)
        self.propagator = Propagator(model, backend=array_backend(device))
        self._executor = Executor(model)
        self.fanout = FanoutTables(model)  # per compute layer, built on first use (the multi-layer faults, :mod:`.multi`)
        self._starts = list(range(0, self.n, self.batch_size))
        # Golden chunks are kept while they fit ``cache_bytes`` (all of them for a small set; for a large one the
        # first ones, the rest recomputed per call: see :func:`chunk_for_campaign`).
        cache_bytes = DEFAULT_CACHE_BYTES if cache_bytes is None else cache_bytes
        self._kept_chunks = int(cache_bytes // (per_input * self.batch_size))
        self._cache: dict[int, Golden] = {}
        # Chunks beyond the cache go to disk once and are read back, instead of recomputed per call (:mod:`.spill`).
        self._spill = None
        if spill_dir is not None and self._kept_chunks < len(self._starts):
            self._spill = GoldenSpill(spill_dir, model, self.x, self.batch_size)
        with limit_blas_threads(self.blas_threads):
            tops = {c: self._golden(c).top1 for c in self._chunk_order()}
        self.golden: np.ndarray = np.concatenate([tops[c] for c in range(self.n_chunks)])

    # ------------------------------------------------------------------------------------------ chunks
    @property
    def n_chunks(self) -> int:
        return len(self._starts)

    def chunk(self, c: int) -> slice:
        return slice(self._starts[c], min(self._starts[c] + self.batch_size, self.n))

    def _golden(self, c: int) -> Golden:
        """Chunk ``c``'s golden tensors: from the memory cache, else (with a spill) from disk, else computed
        (and then written to the spill, the cached chunks too, so that other workers read them back)."""
        g = self._cache.get(c)
        if g is not None:
            return g
        g = None if self._spill is None else self._spill.load(c, self.propagator.maps, self.x[self.chunk(c)])
        if g is None:
            g = self.propagator.golden(self.x[self.chunk(c)], self._executor)
            if self._spill is not None:
                self._spill.save(c, g)
        if c < self._kept_chunks:
            self._cache[c] = g
        return g

    def _chunk_order(self) -> Iterator[int]:
        """Every chunk once, for a pass over them all. Without a spill in index order; with one, first what is
        at hand (in memory or on disk), else the next chunk this process can claim, and the chunks other
        workers have claimed last (read back if written by then, else computed here)."""
        todo = list(range(self.n_chunks))
        while todo:
            pick = todo[0]
            if self._spill is not None:
                ready = next((c for c in todo if c in self._cache or self._spill.has(c)), None)
                pick = ready if ready is not None else next((c for c in todo if self._spill.claim(c)), todo[0])
            todo.remove(pick)
            yield pick

    # ------------------------------------------------------------------------------------------ faults
    def predictions(self, faults: Sequence[Fault], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(F, N) int16: top-1 of every input with each fault (alone) present."""
        with limit_blas_threads(self.blas_threads):
            return self._predictions(list(faults), progress)

    def _predictions(self, faults: list[Fault], progress: Callable[[int], None] | None) -> np.ndarray:
        out = np.empty((len(faults), self.n), dtype=np.int16)
        many = [k for k, f in enumerate(faults) if not isinstance(f, Fault)]  # lane / weight / ber (SPEC §7)
        if many:
            from .multi import fault_predictions

            for f in (faults[k] for k in many):
                f.check(self.model)
            for c in self._chunk_order():
                golden, sl = self._golden(c), self.chunk(c)
                for k in many:
                    out[k, sl] = fault_predictions(self, golden, sl, faults[k])
                if progress is not None:
                    progress(len(many) * golden.n)
        by_layer: dict[int, list[int]] = {}
        for k, f in enumerate(faults):
            if isinstance(f, Fault):
                f.check(self.model)
                by_layer.setdefault(f.layer, []).append(k)
        for c in self._chunk_order():
            golden, sl = self._golden(c), self.chunk(c)
            for layer, ks in by_layer.items():
                step = max(1, CASES_PER_CALL // golden.n)
                for a in range(0, len(ks), step):
                    sel = ks[a:a + step]
                    out[sel, sl] = self._layer_predictions(golden, layer, [faults[k] for k in sel])
                    if progress is not None:
                        progress(len(sel) * golden.n)
        return out

    def changed(self, faults: Sequence[Fault], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(F, N) bool: whether each fault changes each input's top-1."""
        return self.predictions(faults, progress) != self.golden[None, :]

    def faulty_values(self, golden: Golden, layer: int, faults: Sequence[Fault]) -> tuple[np.ndarray, np.ndarray]:
        """``(neurons (F,), values (F, n))``: the value each fault leaves in its neuron's original slot."""
        slots = np.array([f.slot for f in faults], dtype=np.int64)
        mask = np.array([f.mask for f in faults], dtype=np.uint8)[:, None]
        mode = np.array([int(f.mode) for f in faults], dtype=np.int64)[:, None]
        owner = [slot_owner(self.model, layer, int(s)) for s in slots]
        neurons = np.array([o[0] for o in owner], dtype=np.int64)
        copy = np.array([o[1] for o in owner], dtype=np.int64)[:, None]
        clip = self.model.clip(layer)
        if clip is None:
            base = golden.out[layer][:, neurons].T.astype(np.int8)  # (F, n) fault-free written value
        else:  # the golden output is clipped; the fault hits the value the PE wrote before the clip
            lay = self.model.layers[layer]
            acc = golden.acc[layer][:, neurons].T.astype(np.int64)
            shift = neuron_shift(lay, self.model.out_shape(layer), neurons)[:, None]
            base = requantize(acc, shift, *lay.requant.bounds)
        values = apply_fault(base, mask, mode)
        prot = self.model.protection(layer)
        if prot is not None and prot.n_protected:
            protected = np.isin(neurons, prot.neurons)
            if protected.any():
                values[protected] = self._corrected(golden, layer, neurons[protected], copy[protected],
                                                    mask[protected], mode[protected])
        if clip is not None:
            values = clip_range(values, clip.bound, clip.variant)
        return neurons, values

    def _corrected(self, golden: Golden, layer: int, neurons, copy, mask, mode) -> np.ndarray:
        """Corrector output when one of a protected neuron's slots holds a fault (as the executor computes it)."""
        lay = self.model.layers[layer]
        prot = lay.protection
        acc = golden.acc[layer][:, neurons].T.astype(np.int64)  # (F, n)
        shift = neuron_shift(lay, self.model.out_shape(layer), neurons)[:, None]
        if prot.scheme is Scheme.SPLIT:
            base = split_half(acc, shift)
        else:
            base = requantize(acc, shift, *lay.requant.bounds)
        hit = apply_fault(base, mask, mode)
        slots = [np.where(copy == j, hit, base) for j in range(prot.copies)]
        return correct(prot.scheme, slots)

    def _layer_predictions(self, golden: Golden, layer: int, faults: Sequence[Fault]) -> np.ndarray:
        neurons, values = self.faulty_values(golden, layer, faults)
        f, n = values.shape
        xi = np.tile(np.arange(n), f)
        top = self.propagator.top1(golden, layer, np.repeat(neurons, n), xi, values.ravel())
        return top.reshape(f, n)

    # ------------------------------------------------------------------------------------------ values
    def top1_values(self, layer: int, neuron: np.ndarray, xi: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Top-1 of input ``xi[k]`` (index into ``x``) when ``neuron[k]`` of ``layer`` outputs ``value[k]``.

        The value-level API: ``value`` is the int8 the neuron's original slot holds (after any corrector and
        the layer's clip).
        """
        neuron, xi, value = (np.asarray(a).ravel() for a in (neuron, xi, value))
        if not neuron.size == xi.size == value.size:
            raise ParameterError("neuron, xi and value must have the same number of elements")
        if layer not in self.model.neuron_layers:
            raise ParameterError(f"layer {layer} is not a neuron layer of {self.model.name}")
        if neuron.size and (neuron.min() < 0 or neuron.max() >= self.model.neurons_in(layer)):
            raise ParameterError(f"neuron index out of range for layer {self.model.layers[layer].name!r}")
        if xi.size and (xi.min() < 0 or xi.max() >= self.n):
            raise ParameterError(f"input index out of range 0..{self.n - 1}")
        if value.size and (value.min() < -128 or value.max() > 127):
            raise ParameterError("values must be int8 (-128..127)")
        out = np.empty(xi.size, dtype=np.int64)
        chunk_of = xi // self.batch_size
        with limit_blas_threads(self.blas_threads):
            for c in np.unique(chunk_of):
                sel = np.flatnonzero(chunk_of == c)
                golden = self._golden(int(c))
                out[sel] = self.propagator.top1(golden, layer, neuron[sel], xi[sel] - self._starts[c], value[sel])
        return out


@dataclass(frozen=True)
class SimulatorFactory:
    """A campaign backend factory: :class:`FaultSimulator` with the products of a change on torch tensors of
    ``device`` (``resilq campaign --device``; None: numpy) and the golden chunks beyond the cache spilled to
    ``spill_dir`` (None: recomputed). Hashable and comparable, so Dask workers keep one evaluator for it."""

    device: str | None = None
    spill_dir: str | None = None

    def __call__(self, model: Model, x: np.ndarray) -> FaultSimulator:
        return FaultSimulator(model, x, device=self.device, spill_dir=self.spill_dir)

    @property
    def __name__(self) -> str:  # the campaign store records the backend by name (the spill changes no result)
        return "faultsim" if self.device is None else f"faultsim-torch-{self.device}"
