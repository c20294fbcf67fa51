"""The campaign engine: what one fault does to every input of the evaluation set.

A :class:`FaultEvaluator` holds the fault-free ("golden") run of one model on one evaluation set and a
fault-propagation *backend*. For every fault it first decides, from the golden slot values alone,
whether the fault can change anything: a fault is **masked at its site** when the value the corrector
writes back (or, for an unprotected neuron, the faulty value itself) equals the fault-free value on
every input -- e.g. any single fault on a TMR-protected neuron, a stuck-at-1 on a bit that is already 1,
or a split half whose flipped bit the LCU's AND or bit-6 reset removes. Those faults are answered
without propagation (their predictions are the golden ones); only the others go to the backend.

Backends implement ``predictions(faults) -> (F, N)`` top-1 classes, one row per fault with that single
fault present, identical to ``Executor(model).run(x, faults=[f]).predictions``:

* :class:`ExecutorBackend` -- the naive way and the reference: one full forward pass of the bit-true
  executor per fault, batched over the images.
* ``resilq.faultsim.FaultSimulator`` -- the fast fault-propagation core (issue #3), same contract.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from functools import cached_property
from typing import Protocol

import numpy as np

from ..arith import Scheme, apply_fault, correct
from ..data import Dataset
from ..errors import MismatchError, ShapeError
from ..faults import Fault
from ..faultsim import FaultSimulator
from ..faultsim.simulator import BLAS_THREADS, limit_blas_threads
from ..ir.executor import Executor, check_input
from ..ir.model import Model


# ---------------------------------------------------------------------------------------------- data
@dataclass(frozen=True, eq=False)
class EvaluationSet:
    """The int8 inputs every fault is applied to, their labels, and where they came from."""

    x: np.ndarray  # int8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)
    dataset: str = "custom"
    split: str = "test"
    offset: int = 0

    def __post_init__(self) -> None:
        if self.x.ndim < 2 or self.x.dtype != np.int8:
            raise ShapeError(f"an evaluation set holds an int8 batch, got {self.x.dtype}{list(self.x.shape)}")
        if self.labels.shape != (self.x.shape[0],):
            raise ShapeError(f"{self.x.shape[0]} images but labels of shape {self.labels.shape}")
        if self.x.shape[0] == 0:
            raise ShapeError("the evaluation set is empty")

    @classmethod
    def from_dataset(cls, model: Model, data: Dataset, images: int | None = None, offset: int = 0) -> EvaluationSet:
        part = data.take(images, offset)
        return cls(model.quantize_input(part.images), part.labels.astype(np.int64), data.name, data.split, offset)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256(repr((self.x.shape, str(self.x.dtype))).encode())
        h.update(np.ascontiguousarray(self.x).tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def describe(self) -> str:
        return f"{self.dataset}/{self.split}[{self.offset}:{self.offset + len(self)}] ({len(self):,} images)"


def predictions_digest(pred: np.ndarray) -> bytes:
    """16-byte digest of a top-1 vector: lets two runs compare per-fault outcomes input by input."""
    return hashlib.blake2b(np.ascontiguousarray(pred, dtype="<i4").tobytes(), digest_size=16).digest()


# ---------------------------------------------------------------------------------------------- golden run
@dataclass(frozen=True, eq=False)
class GoldenRun:
    """Fault-free outputs of every neuron layer (flat, (N, n_out) int8), top-1 and their digests."""

    outputs: dict[int, np.ndarray]
    predictions: np.ndarray
    layer_digests: dict[int, str]

    @classmethod
    def compute(cls, model: Model, x: np.ndarray, batch_size: int = 1024) -> GoldenRun:
        x = check_input(model, x)
        executor = Executor(model)
        n = x.shape[0]
        outputs = {i: np.empty((n, model.out_size(i)), dtype=np.int8) for i in model.neuron_layers}
        preds = np.empty(n, dtype=np.int64)
        with limit_blas_threads(BLAS_THREADS):  # one core per campaign process
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                run = executor.run(x[start:stop], collect=True, batch_size=batch_size)
                for i in outputs:
                    outputs[i][start:stop] = run.activations[i].reshape(stop - start, -1)
                preds[start:stop] = run.predictions
        digests = {i: hashlib.sha256(a.tobytes()).hexdigest() for i, a in outputs.items()}
        return cls(outputs, preds, digests)

    @property
    def digest(self) -> bytes:
        return predictions_digest(self.predictions)


# ---------------------------------------------------------------------------------------------- backends
class Backend(Protocol):
    """A fault-propagation core: ``predictions(faults)`` is (F, N), row f = top-1 with fault f alone."""

    golden: np.ndarray

    def predictions(self, faults: Sequence[Fault]) -> np.ndarray: ...


BackendFactory = Callable[[Model, np.ndarray], Backend]


class ExecutorBackend:
    """The naive way: one full forward pass of the bit-true executor per fault, batched over the images."""

    def __init__(self, model: Model, x: np.ndarray, batch_size: int = 1024):
        self.executor = Executor(model)
        self.x = check_input(model, x)
        self.batch_size = batch_size
        self.golden = self.executor.run(self.x, batch_size=batch_size).predictions

    def predictions(self, faults: Sequence[Fault]) -> np.ndarray:
        out = np.empty((len(faults), self.x.shape[0]), dtype=np.int64)
        for row, fault in enumerate(faults):
            out[row] = self.executor.run(self.x, faults=[fault], batch_size=self.batch_size).predictions
        return out


class BackendKind(Enum):
    """Selectable fault-propagation cores (all give identical results; they differ in speed)."""

    FAULTSIM = "faultsim"
    EXECUTOR = "executor"

    def factory(self) -> BackendFactory:
        return {BackendKind.FAULTSIM: FaultSimulator, BackendKind.EXECUTOR: ExecutorBackend}[self]

    @classmethod
    def parse(cls, text: str) -> BackendKind:
        for kind in cls:
            if kind.value == text.strip().lower():
                return kind
        raise ValueError(f"unknown backend {text!r}; expected one of {[k.value for k in cls]}")


#: The core campaigns use unless told otherwise.
DEFAULT_BACKEND = BackendKind.FAULTSIM


# ---------------------------------------------------------------------------------------------- the fault site
def value_at_site(model: Model, fault: Fault, golden_column: np.ndarray) -> np.ndarray:
    """The value neuron ``slot_owner(fault)`` holds after its corrector when ``fault`` is present (per input).

    Computed from the golden value of that neuron alone: every slot of a protected neuron holds the same
    fault-free value (``golden >> 1`` for a split half, whose corrected output is ``2 * half``).
    """
    n_out = model.neurons_in(fault.layer)
    prot = model.protection(fault.layer)
    if fault.slot >= n_out:  # a shadow slot: copy 1.. of a protected neuron
        copy = (fault.slot - n_out) % (prot.copies - 1) + 1
    elif _is_protected(prot, fault.slot):
        copy = 0
    else:
        return apply_fault(golden_column, fault.mask, fault.mode)
    if prot.scheme is Scheme.SPLIT:
        base = (golden_column.view(np.uint8) >> 1).view(np.int8)
    else:
        base = golden_column
    slots = [base] * prot.copies
    slots[copy] = apply_fault(base, fault.mask, fault.mode)
    return correct(prot.scheme, slots)


def _is_protected(prot, neuron: int) -> bool:
    if prot is None or not prot.n_protected:
        return False
    p = int(np.searchsorted(prot.neurons, neuron))
    return p < prot.n_protected and int(prot.neurons[p]) == neuron


class How(IntEnum):
    """How a per-fault outcome was obtained (recorded in the store; the outcome is the same either way)."""

    PROPAGATED = 0  # computed by the backend
    MASKED = 1  # masked at the fault site: decided from golden slot values
    SHARED = 2  # taken from another campaign of a sweep where the same fault provably has the same outcome


@dataclass
class Outcomes:
    """Per-fault results: inputs whose top-1 changed, inputs classified correctly, digest of the top-1 vector."""

    changed: np.ndarray  # int64 (F,)
    correct: np.ndarray  # int64 (F,)
    digest: list[bytes]
    how: np.ndarray  # int64 (F,) of How

    def __len__(self) -> int:
        return int(self.changed.size)

    @classmethod
    def concat(cls, parts: Sequence[Outcomes]) -> Outcomes:
        return cls(np.concatenate([p.changed for p in parts]), np.concatenate([p.correct for p in parts]),
                   [d for p in parts for d in p.digest], np.concatenate([p.how for p in parts]))

    def take(self, rows: np.ndarray) -> Outcomes:
        return Outcomes(self.changed[rows], self.correct[rows], [self.digest[i] for i in rows], self.how[rows])


class FaultEvaluator:
    """Applies faults, one at a time, to the whole evaluation set of one model.

    The backend is built lazily: a campaign whose faults are all masked at their sites never needs it.
    """

    def __init__(self, model: Model, data: EvaluationSet, backend: BackendKind | BackendFactory = DEFAULT_BACKEND,
                 golden: GoldenRun | None = None):
        self.model = model
        self.data = data
        self._factory = backend.factory() if isinstance(backend, BackendKind) else backend
        self._backend: Backend | None = None
        self.golden = golden if golden is not None else GoldenRun.compute(model, data.x)
        self.golden_correct = int((self.golden.predictions == data.labels).sum())

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            backend = self._factory(self.model, self.data.x)
            if not np.array_equal(np.asarray(backend.golden), self.golden.predictions):
                raise MismatchError(f"the fault-propagation backend {type(backend).__name__} disagrees with the "
                                    "bit-true executor on the fault-free predictions")
            self._backend = backend
        return self._backend

    def masked(self, faults: Sequence[Fault]) -> np.ndarray:
        """(F,) bool: the fault leaves its neuron's corrected value unchanged on every input."""
        out = np.empty(len(faults), dtype=bool)
        for row, fault in enumerate(faults):
            fault.check(self.model)
            if fault.kind != "output":  # lane / weight / ber change many values: always propagated
                out[row] = False
                continue
            golden = self.golden.outputs[fault.layer]
            neuron = fault.slot if fault.slot < golden.shape[1] else self._owner(fault)
            column = golden[:, neuron]
            # With a clip the golden column is the clipped value, not the one the fault hits: not decided here.
            out[row] = self.model.clip(fault.layer) is None and \
                np.array_equal(value_at_site(self.model, fault, column), column)
        return out

    def _owner(self, fault: Fault) -> int:
        prot = self.model.protection(fault.layer)
        position = (fault.slot - self.model.neurons_in(fault.layer)) // (prot.copies - 1)
        return int(prot.neurons[position])

    def predictions(self, faults: Sequence[Fault]) -> tuple[np.ndarray, np.ndarray]:
        """``(predictions (F, N), masked (F,))``: top-1 of every input with each fault present."""
        faults = list(faults)
        masked = self.masked(faults)
        out = np.empty((len(faults), len(self.data)), dtype=np.int64)
        out[masked] = self.golden.predictions
        todo = np.flatnonzero(~masked)
        if todo.size:
            out[todo] = self.backend.predictions([faults[i] for i in todo])
        return out, masked

    def evaluate(self, faults: Sequence[Fault]) -> Outcomes:
        pred, masked = self.predictions(faults)
        changed = (pred != self.golden.predictions).sum(axis=1)
        correct = (pred == self.data.labels).sum(axis=1)
        golden_digest = self.golden.digest
        digests = [golden_digest if m else predictions_digest(p) for p, m in zip(pred, masked)]
        how = np.where(masked, How.MASKED, How.PROPAGATED).astype(np.int64)
        return Outcomes(changed.astype(np.int64), correct.astype(np.int64), digests, how)
