"""The declarative pipeline configuration: one typed dataclass per stage, loaded from TOML.

Unknown sections or keys and values of the wrong type are refused with a message that names them, so a
typo never silently falls back to a default. ``resilq pipeline init`` writes the documented defaults.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from ..errors import ParameterError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class RunConfig:
    name: str = "resilq"
    out: str = "resilq-out"


@dataclass
class ModelConfig:
    #: Zoo model (lenet5, mlp7, alexnet) or FILE.py:FACTORY; ignored when ``path`` is set.
    arch: str = "lenet5"
    #: An existing .rq model to use instead of training one ("" = train).
    path: str = ""
    dataset: str = "digits"
    data_dir: str = ""
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    per_channel: bool = False
    #: Test images on which Brevitas and the integer executor are compared bit for bit (0 = all).
    verify_images: int = 0


@dataclass
class AnalysisConfig:
    method: str = "exact"  # exact | deltarange
    inputs: int = 500
    split: str = "train"
    jobs: int = 2


@dataclass
class HardenConfig:
    schemes: list[str] = field(default_factory=lambda: ["split", "tmr"])
    #: Protect neurons with NVF >= threshold; or, when ``protect_fraction`` > 0, the most vulnerable
    #: fraction of the neurons (the paper's LeNet-5 protects 3.99 % at NVF >= 20 %).
    threshold: float = 0.2
    protect_fraction: float = 0.04
    granularity: str = "neuron"  # neuron | channel
    fallback: str = "tmr"  # scheme for layers split cannot protect ("" = refuse)


@dataclass
class CampaignConfigSection:
    #: Faults per campaign (0 = Leveugle's sample size, SPEC §5).
    faults: int = 0
    #: Test images every fault is applied to (0 = the whole test set).
    images: int = 0
    fault_model: str = "single-bit"
    seed: int = 0
    #: Fig. 4's x axis: NVF thresholds, or protected fractions turned into thresholds when
    #: ``thresholds`` is empty (useful when the NVFs are small).
    thresholds: list[float] = field(default_factory=list)
    protect_fractions: list[float] = field(default_factory=lambda: [0.0, 0.01, 0.02, 0.04, 0.08, 0.16])


@dataclass
class HLSConfig:
    board: str = "pynq-z2"
    pe: int = 8
    simd: int = 8
    #: Images run through the C-simulated accelerator for chain-of-trust link #2 (0 = skip C-sim).
    csim_images: int = 32
    csim_faults: int = 20


@dataclass
class DeployConfig:
    target: str = "emulator"  # emulator | csim | board
    images: int = 200
    faults: int = 30


@dataclass
class PipelineConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    harden: HardenConfig = field(default_factory=HardenConfig)
    campaign: CampaignConfigSection = field(default_factory=CampaignConfigSection)
    hls: HLSConfig = field(default_factory=HLSConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)

    @property
    def out_dir(self) -> Path:
        return Path(self.run.out)

    def check(self) -> PipelineConfig:
        """Range checks that typing cannot express; returns self."""
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ParameterError(f"pipeline config: {what}")

        need(self.analysis.method in ("exact", "deltarange"), f"analysis.method must be exact or deltarange, got {self.analysis.method!r}")
        need(self.analysis.inputs > 0, "analysis.inputs must be positive")
        need(self.analysis.jobs > 0, "analysis.jobs must be positive")
        need(0.0 <= self.harden.threshold <= 1.0, f"harden.threshold must lie in [0, 1], got {self.harden.threshold}")
        need(0.0 <= self.harden.protect_fraction < 1.0, "harden.protect_fraction must lie in [0, 1)")
        need(bool(self.harden.schemes), "harden.schemes must name at least one scheme")
        need(self.harden.granularity in ("neuron", "channel"), "harden.granularity must be neuron or channel")
        need(all(0.0 <= t <= 1.0 for t in self.campaign.thresholds), "campaign.thresholds must lie in [0, 1]")
        need(all(0.0 <= f < 1.0 for f in self.campaign.protect_fractions), "campaign.protect_fractions must lie in [0, 1)")
        need(self.campaign.faults >= 0 and self.campaign.images >= 0, "campaign.faults/images must be >= 0")
        need(self.model.epochs > 0, "model.epochs must be positive")
        need(self.deploy.target in ("emulator", "csim", "board"), "deploy.target must be emulator, csim or board")
        return self


SECTIONS = {f.name: f.type for f in dataclasses.fields(PipelineConfig)}


def _coerce(value: Any, kind: Any, where: str) -> Any:
    origin = get_origin(kind)
    if origin is list:
        (item,) = get_args(kind)
        if not isinstance(value, list):
            raise ParameterError(f"pipeline config: {where} must be a list, got {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool, float) and (type(value) is not kind):
        raise ParameterError(f"pipeline config: {where} must be {kind.__name__}, got {value!r}")
    return value


def from_dict(data: dict[str, Any]) -> PipelineConfig:
    config = PipelineConfig()
    hints = get_type_hints(PipelineConfig)
    for section, values in data.items():
        if section not in hints:
            raise ParameterError(f"pipeline config: unknown section [{section}] (known: {', '.join(hints)})")
        if not isinstance(values, dict):
            raise ParameterError(f"pipeline config: [{section}] must be a table")
        target = getattr(config, section)
        types = get_type_hints(type(target))
        for key, value in values.items():
            if key not in types:
                raise ParameterError(f"pipeline config: unknown key {section}.{key} (known: {', '.join(types)})")
            setattr(target, key, _coerce(value, types[key], f"{section}.{key}"))
    return config.check()


def load_config(path: str | Path) -> PipelineConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ParameterError(f"{path}: pipeline config not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{path}: not valid TOML ({exc})") from None
    return from_dict(data)


def to_toml(config: PipelineConfig) -> str:
    """The configuration as TOML (round-trips through :func:`load_config`)."""
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def demo_config(out: str, quick: bool = False) -> PipelineConfig:
    """``resilq demo``: LeNet-5 on the bundled digits, end to end (``quick``: smaller, for CI)."""
    cfg = PipelineConfig(run=RunConfig(name="lenet5-digits", out=out))
    if quick:
        cfg.model.epochs = 4
        cfg.analysis.inputs = 150
        cfg.campaign.faults = 400
        cfg.campaign.protect_fractions = [0.0, 0.02, 0.04, 0.16]
        cfg.hls.csim_images = 16
        cfg.hls.csim_faults = 10
        cfg.deploy.images = 64
        cfg.deploy.faults = 10
    return cfg.check()
