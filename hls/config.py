"""The accelerator's build-time configuration: parallelism, buffer capacities, pipeline depths.

One :class:`AccelConfig` describes one bitstream. The C++ kernels see it as a generated ``struct``
(``accel_config.hpp``, see :mod:`.codegen`), never as global ``#define``s; the cycle model, the resource
estimate and the layer mapping read the same object.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field, fields

from resilq.errors import ParameterError
from resilq.validation import MAX_LATENCY_CYCLES, check_int, check_mapping

#: SIMD widths the weight path supports: whole 64-bit HP-port beats per SIMD word.
SIMD_CHOICES = (8, 16, 32, 64)
MAX_PE = 64
#: Upper bound of every capacity field: the generated C++ holds them as 32-bit ``unsigned`` constants and the
#: kernel's index arithmetic is 24 bits wide (hls/include/resilq/ops.hpp); far above any Zynq-7000 BRAM budget.
MAX_CAPACITY = 1 << 24
#: Dedicated shadow lanes a build may have (HW_CONFIG.SHADOW is 8 bits; each costs SIMD DSP48E1s).
MAX_SHADOW_UNITS = 16


@dataclass(frozen=True)
class Latency:
    """Modelled pipeline depth (cycles) added once per execution of each pipelined loop.

    These are the fill/drain latencies the cycle model and the C-sim cycle counter both add; the trip
    counts come from the loop structure. They are assumptions until a synthesis report replaces them
    (``m_axi`` loops: the default 64-cycle read latency assumed by Vitis HLS plus a few stages).
    """

    run: int = 72  # header read at the start of a run
    descriptor: int = 70  # descriptor fetch per layer and image
    load_input: int = 70  # DDR -> input buffer
    params: int = 70  # bias/shift beats of a tile
    weights: int = 70  # weight beats of a tile
    table: int = 3  # critical-table walk (AXI-Lite RAM, 2-cycle read)
    mac: int = 12  # patch read, PE x SIMD multiply, adder tree, requantize, fault, write
    lcu: int = 5  # corrector pass: table read, slot reads, vote, write back
    pool: int = 4  # max-pool window loop
    store: int = 70  # output buffer -> DDR (write response)

    def __post_init__(self) -> None:
        # Each value is pasted into accel_config.hpp as a C++ constant: a real int in range, nothing else.
        for f in fields(self):
            check_int(getattr(self, f.name), f"accelerator.latency.{f.name}", 0, MAX_LATENCY_CYCLES)


@dataclass(frozen=True)
class AccelConfig:
    """Parallelism and capacities of one accelerator build.

    ``pe`` output lanes (power of two) x ``simd`` input lanes (a multiple of the 64-bit HP beat).
    Capacities are in bytes (int8 elements) unless noted; ``max_in`` counts the input map with its
    channels padded to a multiple of ``simd`` (the layout of the input buffer).
    """

    pe: int = 8
    simd: int = 8
    max_in: int = 65536  # input feature map, H*W*ceil(C/simd)*simd
    max_out: int = 65536  # output feature map, C*H*W int8 (the paper's Outputs Buffer)
    max_fanin: int = 4096  # k*k*ceil(C/simd)*simd weights per output channel
    max_pos: int = 4096  # output positions H*W of one channel
    max_kernel: int = 11
    max_stride: int = 4
    max_channels: int = 4096
    max_raw: int = 1024  # int32 classifier outputs
    max_layers: int = 64  # layer descriptors per network (the on-chip cycle profile)
    shadow_lane: int = 2048  # shadow bytes per PE lane per layer
    max_batch: int = 16  # images a vector (Linear) layer takes at once, sharing one weight load (power of two)
    #: dedicated shadow lanes beside the PE array (conv.hpp): they compute the shadow copies of a position's
    #: protected neurons in its one pass where these need at most this many values; lanes PE .. PE+K-1 of the
    #: fault registers. 0 builds none (every shadow is a rotated pass of the array). K x SIMD DSP48E1s: 4 fits
    #: 8 x 8 and 16 x 16 on the xc7z020, 2 fits 8 x 32 (benchmarks/accelerator.py).
    shadow_units: int = 4
    latency: Latency = field(default_factory=Latency)

    def __post_init__(self) -> None:
        # Every field reaches generated C++ (accel_config.hpp) and Tcl: checked as a real int first.
        for f in fields(self):
            if f.name not in ("latency", "shadow_units"):
                check_int(getattr(self, f.name), f"accelerator.{f.name}", 1, MAX_CAPACITY)
        check_int(self.shadow_units, "accelerator.shadow_units", 0, MAX_SHADOW_UNITS)
        if not isinstance(self.latency, Latency):
            raise ParameterError(f"accelerator.latency must be a table of loop latencies, got {self.latency!r:.80}")
        if self.pe < 1 or self.pe > MAX_PE or self.pe & (self.pe - 1):
            raise ParameterError(f"PE must be a power of two in 1..{MAX_PE}, got {self.pe}")
        if self.max_batch > 64 or self.max_batch & (self.max_batch - 1):
            raise ParameterError(f"max_batch must be a power of two <= 64 (the kernel steps by shifts), got {self.max_batch}")
        if self.max_batch > self.max_pos:
            raise ParameterError(f"max_batch ({self.max_batch}) cannot exceed max_pos ({self.max_pos}): a batched "
                                 "layer's images are the positions of one map")
        if self.simd not in SIMD_CHOICES:
            raise ParameterError(f"SIMD must be one of {SIMD_CHOICES} (whole 64-bit weight beats), got {self.simd}")
        for name in ("max_in", "max_out", "max_fanin", "max_pos", "max_kernel", "max_stride", "max_channels",
                     "max_raw", "shadow_lane", "max_layers"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)}")
        for name, unit in (("max_in", self.simd), ("max_fanin", self.simd), ("max_out", self.out_banks),
                           ("max_raw", self.out_banks)):
            if getattr(self, name) % unit:
                raise ParameterError(f"{name} ({getattr(self, name)}) must be a multiple of {unit}")
        if self.max_channels > 0xFFFF or self.max_pos > 0x10000:
            raise ParameterError("critical-table entries hold a 16-bit channel and a 16-bit position: "
                                 "max_channels <= 65535 and max_pos <= 65536")
        if self.max_in >= 1 << 24:
            raise ParameterError(f"max_in ({self.max_in}) must stay below 2**24: the kernel's index multipliers are "
                                 "24 x 17 bits (hls/include/resilq/ops.hpp)")
        if self.max_kernel > 255 or self.max_stride > 255:
            raise ParameterError("kernel and stride are 8-bit descriptor fields")

    @property
    def out_banks(self) -> int:
        """Banks of the output buffer: conv lanes (PE) and pool lanes (SIMD) each write distinct banks."""
        return max(self.pe, self.simd)

    @property
    def macs_per_cycle(self) -> int:
        return self.pe * self.simd

    @property
    def fault_lanes(self) -> int:
        """Lanes a lane fault can name: the PE array's, then the dedicated shadow lanes."""
        return self.pe + self.shadow_units

    def hw_config_word(self) -> int:
        """The HW_CONFIG register value: PE in bits 0-7, SIMD in bits 8-15, shadow lanes in bits 16-23."""
        return (self.pe & 0xFF) | ((self.simd & 0xFF) << 8) | ((self.shadow_units & 0xFF) << 16)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def config_id(self) -> int:
        """CRC-32 of the configuration (the CONFIG_ID register): the driver checks it against the overlay."""
        return zlib.crc32(json.dumps(self.as_dict(), sort_keys=True).encode()) & 0xFFFFFFFF

    @property
    def tag(self) -> str:
        """Short name of the configuration, used for build directories."""
        return f"pe{self.pe}_simd{self.simd}_{self.config_id:08x}"

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> AccelConfig:
        """The configuration a manifest or file records, every key and type checked (``source``: the file)."""
        prefix = f"{source}: " if source else ""
        try:
            check_mapping(data, "accelerator", optional=tuple(f.name for f in fields(cls)))
            data = dict(data)
            if "latency" in data:
                check_mapping(data["latency"], "accelerator.latency", optional=tuple(f.name for f in fields(Latency)))
                data["latency"] = Latency(**data["latency"])
            return cls(**data)
        except ParameterError as exc:
            raise ParameterError(f"{prefix}{exc}") from None


DEFAULT_CONFIG = AccelConfig()
