"""Where a pipeline's steps keep their outputs, and how a step finds what an earlier step produced.

Every step writes into ``OUT/<step>/`` and records a JSON ``summary.json`` there (numbers, file names,
check results), so a pipeline can be stopped after any step and resumed from any later one: a step reads
its inputs from disk, never from memory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..archive import read_json_file
from ..data import Dataset, load_dataset
from ..errors import FormatError, MismatchError, ResilqError
from ..ir import Model, load_model
from ..nvf import NVFResult, load_nvf
from ..ui import say
from .config import PipelineConfig

SUMMARY = "summary.json"
T = TypeVar("T")


class MissingStepError(ResilqError):
    """A step needs the output of an earlier step that has not been run in this output directory."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class Context:
    config: PipelineConfig

    @property
    def out(self) -> Path:
        return self.config.out_dir

    def dir(self, step: str) -> Path:
        path = self.out / step
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_summary(self, step: str, summary: dict[str, Any]) -> Path:
        path = self.dir(step) / SUMMARY
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_jsonable(summary), indent=1, sort_keys=False))
        tmp.replace(path)
        return path

    def has(self, step: str) -> bool:
        return (self.out / step / SUMMARY).is_file()

    def summary(self, step: str) -> dict[str, Any]:
        path = self.out / step / SUMMARY
        if not path.is_file():
            raise MissingStepError(f"step {step!r} has no output in {self.out}; run the pipeline from {step!r} "
                                   f"(or an earlier step) first")
        summary = read_json_file(path, "step summary")  # size- and depth-capped (docs/security.md)
        if not isinstance(summary, dict):
            raise FormatError(f"{path}: a step summary is a JSON object, not {type(summary).__name__}; "
                              f"run the pipeline from {step!r} again")
        return summary

    def file(self, step: str, name: str) -> Path:
        """A file an earlier step wrote, or a clear error."""
        path = self.out / step / name
        if not path.exists():
            raise MissingStepError(f"{path} is missing: run step {step!r} first")
        return path

    def model(self) -> Model:
        return load_model(self.file("train", self.summary("train")["model_file"]))

    def nvf(self, model: Model) -> NVFResult:
        """The NVF of step ``analyze`` (checked against ``model``)."""
        return load_nvf(self.file("analyze", self.summary("analyze")["nvf_file"]), model)

    def dataset(self, split: str = "test") -> Dataset:
        """A split of the dataset the model of step ``train`` was trained on."""
        return load_dataset(self.summary("train")["dataset"], split, self.config.model.data_dir or None)

    def fresh_on_mismatch(self, path: Path, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(*args, **kwargs)``, which resumes results stored at ``path``; if those belong to another model or data
        (an earlier step was re-run with other settings), they are set aside and ``work()`` starts afresh."""
        try:
            return work(*args, **kwargs)
        except MismatchError as exc:
            from ..campaign.store import CampaignLocked

            if isinstance(exc, CampaignLocked):  # another process is running it: never move it away
                raise
            stale = path.with_name(path.name + ".stale")
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
            path.rename(stale)
            say(f"{path} holds results of another model or data ({exc}); moved to {stale.name}, starting afresh")
            return work(*args, **kwargs)

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.out.resolve()))
