"""Statistical fault-injection campaigns (SPEC §5, the paper's Fig. 4): fast, bit-true, resumable, distributable.

* :mod:`.sampling` -- fault models, the fault population (shadows included), Leveugle's sample size,
  coordinated reproducible sampling;
* :mod:`.engine` -- per-fault outcomes on the whole evaluation set, with faults masked at their site
  decided from golden values, on a pluggable fault-propagation backend;
* :mod:`.store` -- durable SQLite results, resumable after any interruption;
* :mod:`.distributed` -- in-process or Dask-sharded evaluation;
* :mod:`.runner` -- :func:`run_campaign`, the whole campaign;
* :mod:`.statistics` -- accuracy loss, critical-fault rate, confidence intervals, breakdowns;
* :mod:`.sweep` -- the NVF-threshold sweep with shared results; :mod:`.plots` -- Fig. 4 and its CSV.
"""

from .engine import (
    DEFAULT_BACKEND,
    BackendKind,
    EvaluationSet,
    ExecutorBackend,
    FaultEvaluator,
    GoldenRun,
    How,
    Outcomes,
)
from .runner import CampaignConfig, CampaignReport, load_campaign, run_campaign
from .sampling import FaultKind, FaultModel, FaultSample, leveugle_sample_size, population_size, sample_faults
from .statistics import CampaignSummary, Interval, summarize

__all__ = [
    "DEFAULT_BACKEND", "BackendKind", "CampaignConfig", "CampaignReport", "CampaignSummary", "EvaluationSet",
    "ExecutorBackend", "FaultEvaluator", "FaultKind", "FaultModel", "FaultSample", "GoldenRun", "How", "Interval",
    "Outcomes", "leveugle_sample_size", "load_campaign", "population_size", "run_campaign", "sample_faults",
    "summarize",
]
