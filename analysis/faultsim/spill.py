"""Golden chunks that do not fit the fault simulator's memory cache, kept on disk instead of recomputed.

A campaign on many images (AlexNet-CIFAR x 10,000: ~9 GB of golden tensors) cannot keep every golden chunk in
memory, and recomputing the uncached ones on every call costs a full fault-free inference per image per
chunk of faults (about a fifth of a 10,000-image AlexNet campaign). A :class:`GoldenSpill` writes each
uncached chunk once, as plain ``.npy`` files (read back with ``allow_pickle=False``), and loads it on the
next call: a copy from the page cache instead of an inference. The worker processes of one machine share
one spill directory (a chunk is written to a temporary folder and renamed into place, so a reader sees a
whole chunk or none), and a resumed campaign finds its chunks again. So that two workers do not compute the same chunk side by side,
a worker *claims* a chunk before computing it (a file created exclusively, :meth:`GoldenSpill.claim`) and
visits the chunks others have claimed last (:meth:`FaultSimulator._chunk_order`), reading them back by then. A
claim is only an ordering hint: a chunk whose claimer died is computed by whoever reaches it, so a stale
claim costs time, never a result.

The directory is keyed by the model's hash, the digest of the inputs and the chunk size, so a spill can never
serve another model or image set; every file is checked (names, dtypes, shapes) before it is used, every
compute layer's outputs must follow from its accumulators, and the input and top-1 are not stored but taken
from the inputs and the logits; a chunk that fails is recomputed and rewritten. (A max-pool's stored output
is checked by shape and dtype only.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import MismatchError
from ..ir.model import Model
from .golden import Golden, inputs_key
from .outmap import OutputMap, accumulator_dtype


def spill_key(model: Model, x: np.ndarray, batch_size: int) -> str:
    """Name of the spill folder of ``model`` on the batch ``x`` cut into chunks of ``batch_size``."""
    return f"{model.hash}-{inputs_key(x)[:16]}-b{batch_size}"


class GoldenSpill:
    """One folder of golden chunks of one (model, inputs, chunk size), under ``root``."""

    def __init__(self, root: str | os.PathLike, model: Model, x: np.ndarray, batch_size: int):
        self.model = model
        self.n, self.batch_size = int(x.shape[0]), int(batch_size)
        self.path = Path(root) / spill_key(model, x, batch_size)
        self.path.mkdir(parents=True, exist_ok=True)

    def _chunk_dir(self, c: int) -> Path:
        return self.path / f"chunk-{c:05d}"

    def _rows(self, c: int) -> int:
        return min(self.batch_size, self.n - c * self.batch_size)

    def _expected(self, c: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """File name -> (shape, dtype) every file of chunk ``c`` must have."""
        rows, model = self._rows(c), self.model
        files: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for i, layer in enumerate(model.layers):
            size = model.out_size(i)
            if hasattr(layer, "weight"):
                dtype = np.dtype(accumulator_dtype(layer))
                files[f"acc-{i:03d}.npy"] = ((rows, size), dtype)
            else:
                dtype = np.dtype(np.float32)
            files[f"out-{i:03d}.npy"] = ((rows, size), dtype)
        return files

    def has(self, c: int) -> bool:
        """Whether chunk ``c`` has been written (it is checked only when loaded)."""
        return self._chunk_dir(c).is_dir()

    def claim(self, c: int) -> bool:
        """Claim chunk ``c`` for this process: True if the claim is new (created exclusively), False if another
        process claimed it first."""
        try:
            fd = os.open(self.path / f"claim-{c:05d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError:  # cannot write a claim (read-only or full disk): compute it, as without a spill
            return True
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True

    def save(self, c: int, golden: Golden) -> None:
        """Write chunk ``c`` (atomically: another process sees all of it or none)."""
        final = self._chunk_dir(c)
        if final.is_dir():
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".chunk-{c:05d}-", dir=self.path))
        try:
            for i, a in golden.out.items():
                if i >= 0:
                    np.save(tmp / f"out-{i:03d}.npy", a)
            for i, a in golden.acc.items():
                np.save(tmp / f"acc-{i:03d}.npy", a)
            os.rename(tmp, final)
        except OSError:  # another process renamed its copy first, or the disk is full: keep recomputing
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self, c: int, maps: dict[int, OutputMap], x: np.ndarray) -> Golden | None:
        """Chunk ``c`` (whose inputs are ``x``) as a :class:`Golden`, or None when it is missing or any file fails
        its check."""
        folder = self._chunk_dir(c)
        if not folder.is_dir():
            return None
        arrays: dict[str, np.ndarray] = {}
        for name, (shape, dtype) in self._expected(c).items():
            try:
                a = np.load(folder / name, allow_pickle=False)
            except (OSError, ValueError):
                return self._discard(folder)
            if a.shape != shape or a.dtype != dtype:
                return self._discard(folder)
            arrays[name] = a
        out, acc = {}, {}
        for name, a in arrays.items():
            if name.startswith("out-"):
                out[int(name[4:7])] = a
            elif name.startswith("acc-"):
                acc[int(name[4:7])] = a
        try:
            return Golden.restore(self.model, maps, x, out, acc)
        except MismatchError:  # the outputs do not follow from the accumulators: not ours, recompute
            return self._discard(folder)

    @staticmethod
    def _discard(folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        return None

    def remove(self) -> None:
        """Delete this spill (its folder and everything in it)."""
        shutil.rmtree(self.path, ignore_errors=True)
