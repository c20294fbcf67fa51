"""Run a campaign end to end: sample, open the store, evaluate what is missing, summarise.

:func:`run_campaign` is resumable by construction: it opens (or creates) the store for exactly this
campaign, asks it which faults have no result yet, evaluates only those, chunk by chunk, and commits
each chunk as it finishes. Running it again after a crash continues where the file stops; running it on a
finished campaign only reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ParameterError
from ..ir.model import Model
from ..ui import progress
from .engine import DEFAULT_BACKEND, BackendFactory, BackendKind, EvaluationSet, FaultEvaluator, GoldenRun, Outcomes
from .kinds import OUTPUT, KindSpec, kind_metadata, sample_kind
from .sampling import SINGLE_BIT, FaultModel, FaultSample, sample_faults
from .statistics import CampaignSummary, summarize
from .store import CampaignStore


@dataclass(frozen=True)
class CampaignConfig:
    """What to inject: the fault model, how many faults (None: Leveugle's size), the seed; and chunking."""

    fault_model: FaultModel = SINGLE_BIT
    faults: int | None = None
    seed: int = 0
    chunk_size: int | None = None  # faults per task and per commit; None: chunk_for_campaign(model, images)
    kind: KindSpec = OUTPUT  # output (default), lane, weight or ber, with the kind's parameters

    def __post_init__(self) -> None:
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ParameterError(f"chunk size must be positive, got {self.chunk_size}")


#: Faults per chunk when every golden tensor stays cached, and the most an automatic chunk grows to.
BASE_CHUNK, MAX_CHUNK = 64, 1024


def chunk_for_campaign(model: Model, images: int) -> int:
    """Faults per chunk (task and commit) when the campaign does not say.

    64 while the fault simulator keeps the golden tensors of every image. Beyond its cache (AlexNet-CIFAR:
    ~1.9 MB per image, so a 10,000-image set needs ~18 GB) it recomputes the uncached ones on every call, at
    about two fault-free inferences per image, i.e. the cost of ~150 faulty ones: 64 faults per call spent as
    long on recomputing as on faults (measured: 128 faults x 10,000 AlexNet images 244 s, against 11.5 s for
    1,000 images). The chunk then grows with the uncached share (576 faults for AlexNet x 10,000 images),
    up to ``MAX_CHUNK``: fewer, longer commits for a campaign several times faster. With the spill a campaign
    sets up (:func:`spilled`) an uncached chunk is read back instead (~1 s per 578 AlexNet images, with its
    checks), still worth amortising over a few hundred faults.
    """
    from ..faultsim.simulator import DEFAULT_CACHE_BYTES, golden_bytes_per_input, uncached_inputs

    uncached = uncached_inputs(model, images)
    if uncached == 0:
        return BASE_CHUNK
    per_image = golden_bytes_per_input(model)
    return min(MAX_CHUNK, BASE_CHUNK * math.ceil(uncached * per_image / DEFAULT_CACHE_BYTES))


class OutcomeCache(Protocol):
    """Outcomes shared between campaigns, keyed by everything a fault's outcome depends on (see sweep)."""

    def get(self, keys: Sequence[bytes]) -> dict[bytes, tuple[int, int, bytes]]: ...

    def put(self, keys: Sequence[bytes], outcomes: Outcomes) -> None: ...


@dataclass
class Sharing:
    cache: OutcomeCache
    keys: list[bytes]  # one per fault of the sample, in fault order


@dataclass
class CampaignReport:
    """A campaign as read back from its store: metadata, faults, per-fault outcomes, statistics."""

    path: Path
    meta: dict[str, Any]
    sample: FaultSample
    idx: np.ndarray  # finished fault numbers
    outcomes: Outcomes
    sessions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> CampaignSummary:
        return summarize(self.meta, self.sample, self.idx, self.outcomes)

    @property
    def complete(self) -> bool:
        return self.idx.size == len(self.sample)


def campaign_metadata(model: Model, data: EvaluationSet, config: CampaignConfig, sample: FaultSample,
                      golden: GoldenRun) -> dict[str, Any]:
    """The store's metadata: identity of the campaign (checked on resume) and what reports need."""
    return {
        "model_hash": model.hash, "network_hash": model.network_hash, "model_name": model.name,
        "data_digest": data.digest, "dataset": data.dataset, "split": data.split, "offset": int(data.offset),
        "images": len(data), "fault_model": config.fault_model.label, "seed": int(config.seed),
        "sample_size": len(sample), "population": int(sample.population), "plan_digest": sample.digest(),
        "fault_free_digest": golden.digest.hex(),
        "fault_free_correct": int((golden.predictions == data.labels).sum()),
        "masks": len(config.fault_model.masks), "mask_values": list(config.fault_model.masks),
        "n_neurons": model.n_neurons, "n_slots": model.n_slots, "n_protected": model.n_protected,
        "protection": sorted({p.scheme.label for i in model.neuron_layers if (p := model.protection(i)) is not None
                              and p.n_protected}),
        "layers": [{"index": i, "name": model.layers[i].name, "neurons": model.neurons_in(i),
                    "shadows": model.shadows_in(i),
                    "protected": 0 if model.protection(i) is None else model.protection(i).n_protected}
                   for i in model.neuron_layers],
        "metadata": {k: v for k, v in model.metadata.items() if isinstance(v, (str, int, float, bool))},
        **kind_metadata(model, config.kind, config.fault_model, sample),
    }


def sample_for(model: Model, config: CampaignConfig) -> FaultSample:
    """The faults of the campaign ``config``: output faults, or the population of its fault kind."""
    if config.kind.kind == "output":
        return sample_faults(model, config.fault_model, config.faults, config.seed)
    return sample_kind(model, config.kind, config.fault_model, config.faults, config.seed)


class _Interrupts:
    """Ctrl-C (SIGINT) during a campaign stops it at the next chunk boundary, after that chunk is committed.

    A KeyboardInterrupt raised wherever the signal happens to land can be swallowed (inside a finalizer, a
    C callback or a library's cleanup) and the campaign would run on; recording the signal and raising at a
    known point is never lost. A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.pending = False

    def _handle(self, signum, frame) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt

    @classmethod
    @contextlib.contextmanager
    def deferred(cls) -> Iterator[_Interrupts]:
        state = cls()
        if threading.current_thread() is not threading.main_thread():
            yield state  # signal handlers belong to the main thread: leave SIGINT alone
            return
        previous = signal.signal(signal.SIGINT, state._handle)
        try:
            yield state
        finally:
            signal.signal(signal.SIGINT, previous)


def _chunks(idx: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, idx.size, size):
        yield idx[start:start + size]


def run_campaign(model: Model, data: EvaluationSet, out: str | os.PathLike, config: CampaignConfig = CampaignConfig(),
                 *, backend: BackendKind | BackendFactory = DEFAULT_BACKEND, client: Any = None,
                 evaluator: FaultEvaluator | None = None, sharing: Sharing | Callable | None = None,
                 description: str | None = None) -> CampaignReport:
    """Run (or resume, or just report) the campaign ``config`` of ``model`` on ``data``, stored in ``out``.

    ``client``: a ``distributed.Client`` to shard the faults over (None: this process).
    ``evaluator``: a ready :class:`FaultEvaluator` for this model and data (saves the golden run).
    ``sharing``: outcomes shared with other campaigns (a threshold sweep), or a callable
    ``(sample, golden) -> Sharing``.
    """
    from .distributed import DaskRunner, LocalRunner

    if evaluator is not None and (evaluator.model is not model or evaluator.data is not data):
        raise ParameterError("the evaluator passed to run_campaign belongs to another model or data set")
    backend, spill = spilled(backend, model, len(data), out)
    if client is None and evaluator is None:
        evaluator = FaultEvaluator(model, data, backend)
    golden = evaluator.golden if evaluator is not None else GoldenRun.compute(model, data.x)
    sample = sample_for(model, config)
    meta = campaign_metadata(model, data, config, sample, golden)
    if callable(sharing):
        sharing = sharing(sample, golden)
    chunk = config.chunk_size or chunk_for_campaign(model, len(data))
    with CampaignStore.create_or_open(out, meta, sample) as store:
        runner = LocalRunner(evaluator) if client is None else DaskRunner(client, model, data, backend)
        backend_name = backend.value if isinstance(backend, BackendKind) else getattr(backend, "__name__", "custom")
        store.begin_session(backend_name, runner.name)
        try:
            pending = store.pending()
            label = description or f"campaign {model.name}"
            with progress(int(pending.size), label, "faults") as advance, _Interrupts.deferred() as interrupts:
                if sharing is not None and pending.size:
                    pending = _fill_from_cache(store, pending, sharing, chunk, advance)
                chunks = ((idx, sample.faults(idx)) for idx in _chunks(pending, chunk))
                for idx, outcomes in runner.run(chunks):
                    if sharing is not None:
                        sharing.cache.put([sharing.keys[i] for i in idx], outcomes)
                    store.write(idx, outcomes)
                    advance(len(idx))
                    interrupts.check()  # Ctrl-C: stop here, with every finished chunk committed
        finally:
            store.end_session()
        report = read_report(store)
    if spill is not None and report.complete:
        shutil.rmtree(spill, ignore_errors=True)  # kept while the campaign can still resume
    return report


def spilled(backend: BackendKind | BackendFactory, model: Model, images: int,
            out: str | os.PathLike) -> tuple[BackendKind | BackendFactory, Path | None]:
    """The backend a campaign of ``images`` inputs stored in ``out`` runs, and its golden spill folder.

    When the images' golden tensors exceed the fault simulator's memory cache (AlexNet-CIFAR x 10,000), the
    faultsim backend writes the uncached chunks once to ``<out>.golden/`` beside the store and reads them back
    on every later chunk of faults instead of recomputing a fault-free inference per image
    (:mod:`resilq.faultsim.spill`; the workers of one machine share it). The folder is removed when the
    campaign completes and kept while it can still resume. Other backends, and sets that fit: unchanged.
    """
    from ..faultsim.simulator import SimulatorFactory, uncached_inputs

    if uncached_inputs(model, images) == 0:
        return backend, None
    if backend is BackendKind.FAULTSIM:
        backend = SimulatorFactory()
    if not isinstance(backend, SimulatorFactory) or backend.spill_dir is not None:
        return backend, None
    path = Path(out).resolve()
    path = path.with_name(path.name + ".golden")
    return dataclasses.replace(backend, spill_dir=str(path)), path


def _fill_from_cache(store: CampaignStore, pending: np.ndarray, sharing: Sharing, chunk_size: int,
                     advance) -> np.ndarray:
    """Write the outcomes the cache already knows; return the fault numbers still to evaluate."""
    from .engine import How

    hits = sharing.cache.get([sharing.keys[i] for i in pending])
    found = np.array([sharing.keys[i] in hits for i in pending], dtype=bool)
    for idx in _chunks(pending[found], chunk_size):
        rows = [hits[sharing.keys[i]] for i in idx]
        store.write(idx, Outcomes(np.array([r[0] for r in rows], dtype=np.int64),
                                  np.array([r[1] for r in rows], dtype=np.int64), [r[2] for r in rows],
                                  np.full(idx.size, How.SHARED, dtype=np.int64)))
        advance(len(idx))
    return pending[~found]


def read_report(store: CampaignStore) -> CampaignReport:
    idx, outcomes = store.results()
    return CampaignReport(store.path, store.meta, store.sample(), idx, outcomes, store.sessions())


def load_campaign(path: str | os.PathLike) -> CampaignReport:
    """Read a campaign (finished or not) from its store, without the model."""
    with CampaignStore.open_existing(path) as store:
        return read_report(store)


def campaign_identity(meta: Mapping[str, Any]) -> str:
    kind = meta.get("fault_kind", "output")
    model = meta["fault_model"] if kind in ("output", "lane") else ""
    label = f"{kind} faults{' ' + model if model else ''}"
    return (f"{meta['model_name']} ({meta['model_hash'][:12]}), {label}, seed {meta['seed']}, "
            f"{meta['sample_size']:,} of {meta['population']:,} faults, {meta['dataset']}/{meta['split']} "
            f"[{meta['offset']}:{meta['offset'] + meta['images']}]")
