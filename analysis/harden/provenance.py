"""Content digests that tie a derived model (hardened, pruned) to the artefacts it was made from."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..nvf import NVFResult


def nvf_digest(nvf: NVFResult) -> str:
    """SHA-256 of an NVF result's content (network hash, method, inputs and every value), independent of
    the file it was read from: the same analysis saved twice has the same digest."""
    h = hashlib.sha256(json.dumps({"network_hash": nvf.network_hash, "method": nvf.method, "inputs": int(nvf.inputs),
                                   "layers": nvf.layers}, sort_keys=True).encode())
    for i in nvf.layers:
        arr = np.ascontiguousarray(nvf.values[i], dtype=np.float64)
        h.update(f"L{i}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()
