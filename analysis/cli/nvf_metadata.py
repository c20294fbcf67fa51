"""The metadata of an ``.nvf`` file, checked before ``resilq table`` / ``nvf-compare`` print or plot it.

The analysis records, beside the values, what tables and plots need without the model (model and dataset
names, the sample fraction, every layer's name and shape, the critical share of each bit). A file from
someone else may hold anything there; each entry these commands read is checked for type and range here,
so bad metadata is a :class:`FormatError` naming the key, not a traceback deep in matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..nvf.result import NVFResult
from ..validation import check_int, check_mapping, check_number, check_str


def check_nvf_metadata(result: NVFResult, source: str | Path) -> NVFResult:
    """``result`` if every metadata entry the NVF commands use has its type and range; else FormatError."""
    meta, src = result.metadata, f"{source}: metadata"
    for key in ("model", "dataset", "split"):
        if key in meta:
            check_str(meta[key], f"{src}.{key}", error=FormatError)
    if meta.get("sample") is not None:
        check_number(meta["sample"], f"{src}.sample", 0.0, 1.0, FormatError, positive=True)
    if "layers" in meta:
        layers = check_mapping(meta["layers"], f"{src}.layers", closed=False, error=FormatError)
        for i in result.layers:
            entry = layers.get(str(i))
            if entry is None:
                continue
            check_mapping(entry, f"{src}.layers.{i}", closed=False, error=FormatError)
            if "name" in entry:
                check_str(entry["name"], f"{src}.layers.{i}.name", error=FormatError)
            if "shape" in entry:
                shape = entry["shape"]
                if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
                    raise FormatError(f"{src}.layers.{i}.shape must be a list of 1 to 3 sizes, got {shape!r:.80}")
                for d in shape:
                    check_int(d, f"{src}.layers.{i}.shape", 1, result.values[i].size, FormatError)
                if int(np.prod(shape)) != result.values[i].size:
                    raise FormatError(f"{src}.layers.{i}.shape {shape} does not hold the layer's "
                                      f"{result.values[i].size} values")
    if meta.get("bit_critical"):
        bits = check_mapping(meta["bit_critical"], f"{src}.bit_critical", closed=False, error=FormatError)
        for i in result.layers:
            row = bits.get(str(i))
            if not isinstance(row, list) or len(row) != 8:
                raise FormatError(f"{src}.bit_critical.{i} must list 8 fractions (one per bit), got {row!r:.80}")
            for b in row:
                check_number(b, f"{src}.bit_critical.{i}", 0.0, 1.0, FormatError)
    return result
