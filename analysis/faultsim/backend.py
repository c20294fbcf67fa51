"""Where the fault simulator multiplies a *change* by weights: numpy (the default) or torch tensors.

The propagation (:mod:`.steps`) is numpy throughout; only its two arithmetic kernels go through a backend:

* ``matmul(a, b)``: a cone product ``Δin @ M`` (or a classifier's ``Δ @ W``, or a bound's ``Δlo @ M+``);
* ``conv(grid, layer, weights)``: the change of a wide patch convolved with the layer's weights
  (``(K, C, ph, pw)`` -> ``(K, O * oh * ow)``, the patch holds its own zero padding).

Both are exact because every operand is an integer held in the float type that
:func:`resilq.faultsim.outmap.accumulator_dtype` chose for the layer (float32 only when
``255 * Σ|w| + worst-case accumulator < 2**24``): an integer-valued sum below the significand limit is the
same in any summation order. That holds for direct, im2col/GEMM and blocked algorithms, NOT for Winograd
or FFT convolutions (fractional transforms) nor for TF32 (10-bit mantissa inputs). :class:`TorchBackend`
therefore switches those off and checks every result it returns for integer values (a non-exact kernel
that slipped through raises :class:`~resilq.errors.MismatchError` instead of giving a wrong NVF).

``torch`` is imported only when a torch backend is asked for: the numpy core stays numpy-only (it runs next
to the board's driver).
"""

from __future__ import annotations

import numpy as np

from ..errors import MismatchError, ParameterError
from ..ir.kernels import im2col

#: The devices ``--device`` accepts (None / not given: the numpy backend).
DEVICES = ("cpu", "cuda")


class NumpyBackend:
    """BLAS through numpy: im2col + one matmul for a patch."""

    name = "numpy"

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    @staticmethod
    def conv(grid: np.ndarray, layer, weights: np.ndarray) -> np.ndarray:
        """``(K, O * oh * ow)`` accumulator change of the patches ``grid`` (K, C, ph, pw) for the layer's
        ``(C*k*k, O)`` weight matrix ``weights`` (stride of ``layer``, no padding: the patch holds it)."""
        k = grid.shape[0]
        cols = im2col(grid, layer.kernel, layer.stride, 0)  # (K, oh, ow, C*k*k)
        _, oh, ow, _ = cols.shape
        out = cols.reshape(-1, cols.shape[-1]) @ weights  # (K*oh*ow, O)
        return np.ascontiguousarray(out.reshape(k, oh, ow, -1).transpose(0, 3, 1, 2)).reshape(k, -1)


NUMPY = NumpyBackend()


def exact_torch_flags(torch) -> None:
    """Switch off every torch path that is not exact on integer-valued float32/float64 operands.

    * TF32 (``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``; PyTorch docs,
      "CUDA semantics: TensorFloat-32 (TF32) on Ampere (and later) devices"), and the float32 matmul
      precision ``"highest"`` (``torch.set_float32_matmul_precision``: no TF32 / bfloat16 internal products);
    * NNPACK on the CPU (``torch.backends.nnpack.set_flags(False)``, pytorch/pytorch#116152), whose
      convolutions are Winograd/FFT based;
    * cuDNN's algorithm search (``torch.backends.cudnn.benchmark = False``) and its non-deterministic
      algorithms (``torch.backends.cudnn.deterministic = True``; PyTorch docs, "Reproducibility"). cuDNN can
      still pick a Winograd or FFT algorithm by heuristics, so :class:`TorchBackend` runs its convolutions
      with cuDNN disabled (``torch.backends.cudnn.flags(enabled=False)``): PyTorch's own im2col + cuBLAS
      GEMM, exact with TF32 off.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_float32_matmul_precision("highest")
    torch.backends.nnpack.set_flags(False)


class TorchBackend:
    """The same two kernels on torch tensors of ``device`` ("cpu" or "cuda"); numpy arrays in and out.

    ``conv``: ``"native"`` runs torch's own convolution (``torch.nn.functional.conv2d``; oneDNN or the
    im2col fallback on the CPU, see :func:`exact_torch_flags` for CUDA), ``"im2col"`` unfolds and multiplies.
    Weight matrices of a layer (they live as long as the simulator) are moved to the device once. On the CPU
    torch runs ``threads`` intra-op threads (default 1: one process per core, as the numpy core's BLAS).
    """

    def __init__(self, device: str = "cpu", conv: str = "native", threads: int | None = 1):
        try:
            import torch
        except ImportError as e:  # pragma: no cover - torch is a dependency of the training side
            raise ParameterError(f"--device {device} needs torch (pip install torch): {e}") from None
        if device not in DEVICES:
            raise ParameterError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
        if device == "cuda" and not torch.cuda.is_available():
            raise ParameterError("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
        if conv not in ("native", "im2col"):
            raise ParameterError(f"unknown torch convolution {conv!r}; expected native or im2col")
        exact_torch_flags(torch)
        if device == "cpu" and threads is not None:
            torch.set_num_threads(threads)
        self.torch, self.device, self.conv_kind = torch, torch.device(device), conv
        self.name = f"torch-{device}"
        self._weights: dict[int, tuple[np.ndarray, object]] = {}

    # ------------------------------------------------------------------------------ transfers
    def _tensor(self, a: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def _kept(self, w: np.ndarray, make):
        """A device tensor made from the long-lived weight array ``w`` once (keyed by identity, ``w`` kept)."""
        hit = self._weights.get(id(w))
        if hit is None or hit[0] is not w:
            hit = (w, make(w))
            self._weights[id(w)] = hit
        return hit[1]

    def _back(self, t) -> np.ndarray:
        if not self.torch.equal(t, self.torch.round(t)):
            raise MismatchError(
                f"the {self.name} backend returned a non-integer accumulator: a non-exact kernel "
                "(Winograd, FFT or TF32) ran; use the numpy backend (no --device)"
            )
        return t.cpu().numpy()

    # ------------------------------------------------------------------------------ kernels
    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self._back(self._tensor(a) @ self._tensor(b))

    def conv(self, grid: np.ndarray, layer, weights: np.ndarray) -> np.ndarray:
        torch = self.torch
        k, kernel, stride = grid.shape[0], layer.kernel, layer.stride
        with torch.no_grad():
            g = self._tensor(grid)
            if self.conv_kind == "native":
                w4 = self._kept(weights, lambda w: self._tensor(w.T.reshape(w.shape[1], -1, kernel, kernel)))
                with torch.backends.cudnn.flags(enabled=False):
                    out = torch.nn.functional.conv2d(g, w4, stride=stride)
            else:
                wt = self._kept(weights, self._tensor)
                c, ph, pw = grid.shape[1:]
                oh, ow = (ph - kernel) // stride + 1, (pw - kernel) // stride + 1
                cols = torch.nn.functional.unfold(g, kernel, stride=stride)  # (K, C*k*k, oh*ow), C-k-k order
                out = (cols.transpose(1, 2) @ wt).transpose(1, 2).reshape(k, -1, oh, ow)
            return self._back(out.reshape(k, -1))


def array_backend(device: str | None = None, conv: str = "native"):
    """The numpy backend (``device`` None) or a :class:`TorchBackend` on ``device``."""
    return NUMPY if device is None else TorchBackend(device, conv)


__all__ = ["DEVICES", "NUMPY", "NumpyBackend", "TorchBackend", "array_backend", "exact_torch_flags"]
