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

from ..errors import ParameterError, ResilqError
from ..validation import MAX_COUNT, check_int, check_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def opt(default: Any, doc: str) -> Any:
    """A config option: its default and the one-line documentation ``resilq pipeline init`` writes above it."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class RunConfig:
    name: str = opt("resilq", "title of the run (the report's heading)")
    out: str = opt("resilq-out", "output folder: one sub-folder per step, each with a summary.json")


@dataclass
class ModelConfig:
    arch: str = opt("lenet5", "zoo model (lenet5, mlp7, alexnet) or FILE.py:FACTORY (bring your own Brevitas model)")
    path: str = opt("", "an existing .rq model to use instead of training one (\"\" = train)")
    dataset: str = opt("digits", "digits (bundled), mnist, fashion-mnist or cifar10")
    data_dir: str = opt("", "folder of the dataset's standard files (\"\" = bundled / Debian's location)")
    epochs: int = opt(10, "quantization-aware training epochs")
    batch_size: int = opt(64, "training batch size")
    lr: float = opt(2e-3, "Adam learning rate")
    seed: int = opt(0, "training seed: the same seed gives the same network")
    per_channel: bool = opt(False, "per-output-channel weight scales")
    verify_images: int = opt(0, "test images Brevitas and the integer executor are compared on (0 = all)")


@dataclass
class AnalysisConfig:
    method: str = opt("exact", "exact (every bit of every neuron) or deltarange (the paper's Algorithm 1)")
    inputs: int = opt(500, "inputs the NVF is averaged over")
    split: str = opt("train", "dataset split the NVF inputs come from")
    jobs: int = opt(2, "worker processes")


@dataclass
class HardenConfig:
    schemes: list[str] = opt(["split", "tmr"], "protection schemes to build: split, tmr, dup-and, dup-min "
                                               "(and auto with select = gain: per layer the scheme that pays)")
    select: str = opt("gain", "gain: the neurons with the largest exact protection gain within budget (SPEC §8); "
                              "nvf: the paper's rule (protect_fraction, or threshold)")
    budget: float = opt(0.04, "select = gain: extra slots as a fraction of the neurons (0.04 = 4 % more slots)")
    threshold: float = opt(0.2, "protect neurons with NVF >= threshold (used when protect_fraction = 0)")
    protect_fraction: float = opt(0.04, "protect this fraction of the most vulnerable neurons (0 = use threshold; "
                                        "the paper's LeNet-5 protects 3.99 % at NVF >= 20 %)")
    granularity: str = opt("neuron", "neuron or channel (whole output channels)")
    fallback: str = opt("tmr", "scheme for layers split cannot protect (no ReLU); \"\" = refuse")


@dataclass
class CampaignConfigSection:
    faults: int = opt(0, "faults per campaign (0 = Leveugle's sample size, SPEC §5)")
    images: int = opt(0, "test images every fault is applied to (0 = the whole test set)")
    fault_model: str = opt("single-bit", "single-bit, multi-bit:K, stuck-at-0 or stuck-at-1")
    seed: int = opt(0, "sampling seed: the same seed samples the same faults")
    kind: str = opt("output", "fault kind (docs/campaigns.md): output, lane (persistent PE lane, hls.pe lanes), "
                              "weight (one stored weight/bias bit) or ber")
    lane_scope: str = opt("layer", "lane faults: layer (one layer per fault) or all (every neuron layer)")
    ber: list[float] = opt([], "ber faults: the bit error probabilities of the sweep")
    ber_sites: str = opt("outputs", "ber faults: outputs, weights or both")
    ber_per: str = opt("run", "ber faults: draw per run or per inference (outputs only)")
    repetitions: int = opt(10, "ber faults: seeded draws per probability")
    thresholds: list[float] = opt([], "Fig. 4's NVF thresholds; empty = derived from protect_fractions")
    protect_fractions: list[float] = opt([0.0, 0.01, 0.02, 0.04, 0.08, 0.16],
                                         "fractions of the neurons to protect, turned into NVF thresholds "
                                         "(useful when the NVFs are small)")


@dataclass
class HLSConfig:
    board: str = opt("pynq-z2", "a folder of boards/ (part, clock, resource budget)")
    pe: int = opt(8, "PE output lanes (power of two)")
    simd: int = opt(8, "SIMD input lanes (8, 16, ...)")
    csim_images: int = opt(32, "images run on the C-simulated accelerator (0 = skip the C-sim check)")
    csim_faults: int = opt(20, "faults injected through the C-sim's registers per variant")


@dataclass
class DeployConfig:
    target: str = opt("emulator", "emulator, csim or board (needs the overlay and a PYNQ-Z2)")
    images: int = opt(200, "test images run through the driver")
    faults: int = opt(30, "faults of the device campaign compared with the engine's (0 = none)")


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
        need(self.harden.select in ("gain", "nvf"), f"harden.select must be gain or nvf, got {self.harden.select!r}")
        need(0.0 < self.harden.budget <= 1.0, f"harden.budget must lie in (0, 1], got {self.harden.budget}")
        need(self.harden.select == "gain" or "auto" not in self.harden.schemes,
             "harden.schemes: auto chooses by gain; set harden.select = \"gain\"")
        need(self.harden.granularity in ("neuron", "channel"), "harden.granularity must be neuron or channel")
        need(all(0.0 <= t <= 1.0 for t in self.campaign.thresholds), "campaign.thresholds must lie in [0, 1]")
        need(all(0.0 <= f < 1.0 for f in self.campaign.protect_fractions), "campaign.protect_fractions must lie in [0, 1)")
        need(self.campaign.faults >= 0 and self.campaign.images >= 0, "campaign.faults/images must be >= 0")
        need(self.model.epochs > 0, "model.epochs must be positive")
        need(self.deploy.target in ("emulator", "csim", "board"), "deploy.target must be emulator, csim or board")
        self._counts()
        self._hls()
        need(self.analysis.split in ("train", "test"), "analysis.split must be train or test")
        from ..data import DATASETS

        need(self.model.dataset in DATASETS, f"model.dataset must be one of {', '.join(DATASETS)}, "
             f"got {self.model.dataset!r}")
        self._parses("harden.schemes", [s for s in self.harden.schemes if s != "auto"]
                     + ([self.harden.fallback] if self.harden.fallback else []))
        from ..campaign.sampling import FaultModel
        from ..fault_kinds import KINDS

        try:
            FaultModel.parse(self.campaign.fault_model)
        except ParameterError as exc:
            raise ParameterError(f"pipeline config: campaign.fault_model: {exc}") from None
        need(self.campaign.kind in KINDS, f"campaign.kind must be one of {', '.join(KINDS)}, got {self.campaign.kind!r}")
        need(not self.campaign.ber or self.campaign.kind == "ber",
             f"campaign.ber sets the probabilities of a BER campaign, but campaign.kind is {self.campaign.kind!r}")
        need(self.campaign.kind != "ber" or self.campaign.faults == 0,
             "campaign.faults must be 0 with campaign.kind = 'ber': a BER campaign runs every (p, repetition); "
             "set campaign.repetitions")
        try:
            self.kind_spec()
        except ParameterError as exc:
            raise ParameterError(f"pipeline config: campaign.kind = {self.campaign.kind!r}: {exc}") from None
        return self

    def kind_spec(self):
        """The campaign section's :class:`~resilq.campaign.kinds.KindSpec` (lane faults use hls.pe)."""
        from ..campaign.kinds import KindSpec

        c = self.campaign
        if c.kind == "lane":
            from resilq.hls.config import DEFAULT_CONFIG

            return KindSpec("lane", pe=self.hls.pe, units=DEFAULT_CONFIG.shadow_units, lane_scope=c.lane_scope)
        if c.kind == "ber":
            return KindSpec("ber", ber=tuple(c.ber), ber_sites=c.ber_sites, ber_per=c.ber_per,
                            repetitions=c.repetitions)
        return KindSpec(c.kind)

    #: Integer options and their smallest value (0 where the option documents 0 as "all"/"none"/"default").
    COUNTS = {"model.epochs": 1, "model.batch_size": 1, "model.seed": 0, "model.verify_images": 0,
              "analysis.inputs": 1, "analysis.jobs": 1, "campaign.faults": 0, "campaign.images": 0, "campaign.seed": 0,
              "campaign.repetitions": 1, "hls.csim_images": 0, "hls.csim_faults": 0, "deploy.images": 0, "deploy.faults": 0}

    def _counts(self) -> None:
        """Every count finite and in range (a negative count would silently shrink a set), lr finite."""
        for where, lo in self.COUNTS.items():
            section, key = where.split(".")
            check_int(getattr(getattr(self, section), key), f"pipeline config: {where}", lo, MAX_COUNT)
        check_number(self.model.lr, "pipeline config: model.lr", None, 1.0, positive=True)
        for where, values in (("harden.threshold", [self.harden.threshold]),
                              ("harden.protect_fraction", [self.harden.protect_fraction]),
                              ("harden.budget", [self.harden.budget]),
                              ("campaign.thresholds", self.campaign.thresholds),
                              ("campaign.protect_fractions", self.campaign.protect_fractions),
                              ("campaign.ber", self.campaign.ber)):
            for v in values:
                check_number(v, f"pipeline config: {where}", 0.0, 1.0)

    def _hls(self) -> None:
        """The accelerator build and the board, refused at load (not when the hls step reaches them)."""
        from resilq.boards import load_board
        from resilq.hls.config import AccelConfig

        try:
            AccelConfig(pe=self.hls.pe, simd=self.hls.simd)
        except ParameterError as exc:
            raise ParameterError(f"pipeline config: hls.pe/hls.simd: {exc}") from None
        try:
            load_board(self.hls.board)
        except ResilqError as exc:
            raise ParameterError(f"pipeline config: hls.board: {exc}") from None

    @staticmethod
    def _parses(where: str, schemes: list[str]) -> None:
        from ..arith import Scheme

        for label in schemes:
            try:
                Scheme.parse(label)
            except (ParameterError, ValueError) as exc:
                raise ParameterError(f"pipeline config: {where}: {exc}") from None


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
    lines = ["# resilq pipeline: resilq pipeline run THIS.toml [--from STEP] [--to STEP]", ""]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        part = getattr(config, section)
        for f in dataclasses.fields(part):
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"{f.name} = {_toml_value(getattr(part, f.name))}")
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
