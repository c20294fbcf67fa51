"""The end-to-end flow as named steps driven by a declarative TOML configuration (``resilq pipeline``,
``resilq demo``): train -> analyze -> harden -> campaign -> hls -> deploy -> report."""

from .config import PipelineConfig, demo_config, load_config, to_toml
from .context import Context, MissingStepError
from .runner import run_pipeline, select
from .steps import NAMES as STEP_NAMES

__all__ = ["PipelineConfig", "demo_config", "load_config", "to_toml", "Context", "MissingStepError", "run_pipeline",
           "select", "STEP_NAMES"]
