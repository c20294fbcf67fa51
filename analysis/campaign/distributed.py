"""Where the faults of a campaign are evaluated: in this process, or sharded over a Dask cluster.

Both runners take chunks ``(fault numbers, faults)`` and yield ``(fault numbers, Outcomes)`` as chunks
finish, in any order; the coordinator (:func:`resilq.campaign.runner.run_campaign`) is the only writer of
the store. Per-fault outcomes do not depend on where or in which order they are computed, so a sharded
campaign gives exactly the results of a single-process one.

Schedulers (``--scheduler``):

* ``local`` -- a ``distributed.LocalCluster`` of ``workers`` processes on this machine;
* ``tcp://host:8786`` -- any running Dask scheduler (``dask scheduler`` + ``dask worker`` on each node,
  every node with resilq installed);
* ``slurm`` -- ``dask_jobqueue.SLURMCluster`` configured from the ``jobqueue.slurm`` section of the Dask
  config (``~/.config/dask/jobqueue.yaml``: queue, account, cores, memory, walltime, ...), scaled to
  ``workers`` jobs. Other batch systems: start any dask-jobqueue cluster yourself and pass its
  ``cluster.scheduler_address``.

Dask is an optional dependency (``pip install "resilq[distributed]"``) imported only here, only when a
scheduler is requested.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..faults import Fault
from ..faultsim.allocator import tune_for_arrays
from ..ir.model import Model
from .engine import BackendFactory, BackendKind, EvaluationSet, FaultEvaluator, Outcomes

Chunk = tuple[np.ndarray, Sequence[Fault]]


class LocalRunner:
    """Evaluates chunks one after the other with one :class:`FaultEvaluator` in this process."""

    name = "in-process"

    def __init__(self, evaluator: FaultEvaluator):
        self.evaluator = evaluator

    def run(self, chunks: Iterable[Chunk]) -> Iterator[tuple[np.ndarray, Outcomes]]:
        for idx, faults in chunks:
            yield idx, self.evaluator.evaluate(faults)


# ---------------------------------------------------------------------------------------------- worker side
_EVALUATORS: dict[tuple, tuple[FaultEvaluator, threading.Lock]] = {}
_EVALUATORS_LOCK = threading.Lock()


def _worker_evaluator(model: Model, data: EvaluationSet,
                      backend: BackendKind | BackendFactory) -> tuple[FaultEvaluator, threading.Lock]:
    """One evaluator per (model, data, backend) per worker process, built on first use and kept."""
    key = (model.hash, data.digest, backend)
    with _EVALUATORS_LOCK:
        entry = _EVALUATORS.get(key)
        if entry is None:
            _EVALUATORS.clear()  # a worker serves one campaign at a time: free the previous one's memory
            entry = _EVALUATORS[key] = (FaultEvaluator(model, data, backend), threading.Lock())
    return entry


def evaluate_chunk(model: Model, data: EvaluationSet, backend: BackendKind | BackendFactory,
                   idx: np.ndarray, faults: Sequence[Fault]) -> tuple[np.ndarray, Outcomes]:
    """The Dask task: outcomes of one chunk of faults.

    Threads of one worker take turns on the shared evaluator (its numpy kernels are multi-threaded
    already); run several worker *processes* for parallelism, as ``--scheduler local`` does.
    """
    tune_for_arrays()  # Dask workers start with glibc's mmap threshold fixed at 128 KiB (see the module)
    evaluator, lock = _worker_evaluator(model, data, backend)
    with lock, _single_threaded_blas():
        return idx, evaluator.evaluate(faults)


def _single_threaded_blas():
    """One BLAS thread per worker process: workers already fill the cores, and oversubscribed BLAS threads
    slow the small matrices of a fault simulation down (threadpoolctl ships with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class DaskRunner:
    """Shards chunks over the workers of a ``distributed.Client``; results come back as they finish."""

    def __init__(self, client: Any, model: Model, data: EvaluationSet, backend: BackendKind | BackendFactory):
        self.client = client
        self.model, self.data, self.backend = model, data, backend
        self.name = f"dask {client.scheduler.address}"

    def run(self, chunks: Iterable[Chunk]) -> Iterator[tuple[np.ndarray, Outcomes]]:
        yield from as_finished(self.client, evaluate_chunk, [self.model, self.data],
                               ((self.backend, idx, list(faults)) for idx, faults in chunks))


def as_finished(client: Any, function, shared: Sequence[Any], tasks: Iterable[tuple]) -> Iterator[Any]:
    """``function(*shared, *task)`` for every task on the cluster, results yielded as they finish (any order).

    ``shared`` (the model, the inputs) is scattered to every worker once; tasks still pending when the
    caller stops iterating (an error, Ctrl-C) are cancelled. The one submit loop of campaigns and analyses.
    """
    from distributed import as_completed

    # hash=False: a fresh key per call, so releasing the previous call's copies cannot take these along
    handles = client.scatter(list(shared), broadcast=True, hash=False)
    futures = [client.submit(function, *handles, *task, pure=False) for task in tasks]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


_WORKER_STATE: dict[str, tuple[Any, Any, threading.Lock]] = {}


def worker_state(kind: str, key: Any, make) -> tuple[Any, threading.Lock]:
    """A per-worker-process object of one ``kind`` (e.g. an analysis context), built by ``make()`` on first use
    and kept while tasks bring the same ``key``; a new key replaces it (one job at a time per worker)."""
    with _EVALUATORS_LOCK:
        entry = _WORKER_STATE.get(kind)
        if entry is None or entry[0] != key:
            entry = _WORKER_STATE[kind] = (key, make(), threading.Lock())
    return entry[1], entry[2]


# ---------------------------------------------------------------------------------------------- clusters
def require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ParameterError('distributed campaigns need Dask: pip install "resilq[distributed]" '
                             '(dask[distributed] and dask-jobqueue)') from None


@contextmanager
def dask_client(scheduler: str, workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (``local``, ``tcp://...`` or ``slurm``), closed on exit."""
    require_dask()
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ParameterError(f"need at least one worker, got {workers}")
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    elif scheduler.startswith(("tcp://", "tls://", "ucx://")):
        client = Client(scheduler, timeout="30s")
    elif scheduler == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError:
            raise ParameterError('the slurm scheduler needs dask-jobqueue: pip install "resilq[distributed]"') from None
        cluster = SLURMCluster()
        cluster.scale(jobs=workers)
        client = Client(cluster)
    else:
        raise ParameterError(f"unknown scheduler {scheduler!r}; expected local, tcp://HOST:PORT or slurm")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
