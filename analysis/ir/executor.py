"""The bit-true reference executor of the integer IR (SPEC §1, §2, §4), vectorised over the batch.

This is the definition every other engine (the fault-propagation core, the accelerator emulator, the
HLS C-simulation, the board) is checked against. It runs protected networks: shadows are computed,
faults land in the slot they address, and the corrector writes one value back into the original slot.
numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..arith import Scheme, apply_fault, clip_range, correct, requantize, split_half
from ..errors import ShapeError
from .kernels import accumulate, maxpool, weight_matrix_of
from .layers import ComputeLayer, Conv2d, Flatten, Linear, MaxPool2d, neuron_shift
from .model import Model


@dataclass
class RunResult:
    """``logits``: classifier output (int32 accumulators, or int8 if the classifier requantizes).
    ``activations``: every layer's output tensor, in layer order, when requested; ``accumulators``: the
    accumulators (int64) of every Conv2d/Linear layer by layer index, when requested."""

    logits: np.ndarray
    activations: list[np.ndarray] | None = None
    accumulators: dict[int, np.ndarray] | None = None

    @property
    def predictions(self) -> np.ndarray:
        return top1(self.logits)


def top1(logits: np.ndarray) -> np.ndarray:
    """Top-1 class; ties go to the lowest index (as ``torch.argmax`` and the accelerator do)."""
    return np.argmax(logits, axis=1)


def check_input(model: Model, x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.int8:
        raise ShapeError(f"the executor takes an int8 batch; got {getattr(x, 'dtype', type(x).__name__)} "
                         "(quantize float inputs with model.quantize_input)")
    want = tuple(model.input.shape)
    if x.ndim == len(want):
        x = x[None]
    if x.shape[1:] != want:
        raise ShapeError(f"input batch has shape {x.shape}, the model expects (N, {', '.join(map(str, want))})")
    return x


class Executor:
    """Runs a model; caches per-layer weight matrices so repeated batches cost only the arithmetic."""

    def __init__(self, model: Model, shadow_layers: dict[int, dict[int, ComputeLayer]] | None = None):
        """``shadow_layers``: where shadow copies read their own stored words (``Protection.own_weights`` with a
        weight fault, :attr:`resilq.fault_kinds.Resolved.shadow_layers`): ``{layer: {copy: layer}}``."""
        self.model = model
        self._weights = {i: weight_matrix_of(layer) for i, layer in enumerate(model.layers)
                         if isinstance(layer, (Conv2d, Linear))}
        self._shadow_layers = shadow_layers or {}
        self._shadow_weights = {i: {j: weight_matrix_of(lay) for j, lay in copies.items()}
                                for i, copies in self._shadow_layers.items()}

    def run(self, x: np.ndarray, faults: Iterable = (), collect: bool = False,
            batch_size: int = 1024, progress: Callable[[int], None] | None = None,
            first_index: int = 0, accumulators: bool = False) -> RunResult:
        """Run the int8 batch ``x`` with ``faults`` present in every inference.

        ``faults`` are fault descriptors of any kind (SPEC §7): output :class:`resilq.faults.Fault`,
        :class:`resilq.fault_kinds.LaneFault`, ``WeightFault`` or ``BerFault``; several may be present at
        once. ``first_index`` is the global index of ``x[0]`` (per-inference BER draws depend on it).
        ``accumulators``: also keep every compute layer's accumulators (the fault simulator's golden run).
        """
        x = check_input(self.model, x)
        faults = list(faults)
        if any(getattr(f, "kind", "output") != "output" for f in faults):
            from ..fault_kinds import resolve

            resolved = resolve(self.model, faults)
            runner = self if resolved.model is self.model and not resolved.shadow_layers else \
                Executor(resolved.model, resolved.shadow_layers)
            return runner._run(x, resolved.faults, collect, batch_size, progress, first_index,
                               resolved.row_masks if resolved.per_inference else None, accumulators)
        for fault in faults:
            fault.check(self.model)
        return self._run(x, faults, collect, batch_size, progress, first_index, None, accumulators)

    def _run(self, x, faults, collect, batch_size, progress, first_index, row_masks,
             accumulators: bool = False) -> RunResult:
        by_layer: dict[int, list] = {}
        for fault in faults:
            by_layer.setdefault(fault.layer, []).append(fault)
        logits, acts = [], [[] for _ in self.model.layers] if collect else None
        accs: dict[int, list] | None = {i: [] for i in self._weights} if accumulators else None
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start:start + batch_size]
            masks = None
            if row_masks is not None:
                masks = row_masks(np.arange(first_index + start, first_index + start + chunk.shape[0]))
            out = self._forward(chunk, by_layer, acts, masks, accs)
            logits.append(out)
            if progress is not None:
                progress(min(batch_size, x.shape[0] - start))
        result = RunResult(np.concatenate(logits))
        if collect:
            result.activations = [np.concatenate(a) for a in acts]
        if accs is not None:
            result.accumulators = {i: np.concatenate(a) for i, a in accs.items()}
        return result

    def _forward(self, x: np.ndarray, faults: dict[int, list], acts: list | None,
                 masks: dict[int, np.ndarray] | None = None, accs: dict[int, list] | None = None) -> np.ndarray:
        for i, layer in enumerate(self.model.layers):
            if isinstance(layer, (Conv2d, Linear)):
                acc = accumulate(layer, x, self._weights[i])
                if accs is not None:
                    accs[i].append(acc)
                shadow_acc = None
                if i in self._shadow_layers:  # shadow copies with their own stored words
                    shadow_acc = {j: accumulate(lay, x, self._shadow_weights[i][j])
                                  for j, lay in self._shadow_layers[i].items()}
                x = acc if layer.requant is None else self._output(i, layer, acc, faults.get(i, ()),
                                                                    None if masks is None else masks.get(i), shadow_acc)
            elif isinstance(layer, MaxPool2d):
                x = maxpool(layer, x)
            elif isinstance(layer, Flatten):
                x = x.reshape(x.shape[0], -1)
            if acts is not None:
                acts[i].append(x)
        return x

    def _output(self, index: int, layer: ComputeLayer, acc: np.ndarray, faults: Sequence,
                masks: np.ndarray | None = None, shadow_acc: dict[int, np.ndarray] | None = None,
                cols: np.ndarray | None = None) -> np.ndarray:
        """What the next layer reads: :meth:`_finish`, then the layer's clip (if any)."""
        out = self._finish(index, layer, acc, faults, masks, shadow_acc, cols)
        clip = getattr(layer, "clip", None)
        return out if clip is None else clip_range(out, clip.bound, clip.variant)

    def _finish(self, index: int, layer: ComputeLayer, acc: np.ndarray, faults: Sequence,
                masks: np.ndarray | None = None, shadow_acc: dict[int, np.ndarray] | None = None,
                cols: np.ndarray | None = None) -> np.ndarray:
        """Requantize, then (for a protected layer) compute the shadows, inject, and correct (a layer's clip, if
        any, follows: it restricts the value the corrector wrote, i.e. what the next layer reads).

        ``masks`` (optional, ``(N, slots)`` uint8): per-inference XOR masks of every slot (BER draws).
        ``shadow_acc`` (optional): ``{copy: accumulators}`` of shadow copies that read their own stored words
        (``Protection.own_weights``); the other copies repeat the original's value.
        ``cols`` (optional, sorted flat neuron indices): ``acc`` (and ``shadow_acc``) hold only these neurons'
        accumulators, ``(N, len(cols))``, and so does the result -- the same values the whole layer would hold
        there. Every neuron a fault or a non-zero mask touches (through its original slot or a shadow) must be
        among them (the fault simulator's sparse steps, :mod:`resilq.faultsim.multi`)."""
        lo, hi = layer.requant.bounds
        out_shape = self.model.out_shape(index)
        if cols is None:
            shift = layer.requant.shift.reshape((-1,) + (1,) * (acc.ndim - 2))
        else:
            shift = neuron_shift(layer, out_shape, cols)
        out = requantize(acc, shift, lo, hi)
        prot = layer.protection
        if not faults and masks is None and (prot is None or prot.n_protected == 0) or (cols is not None
                                                                                          and not cols.size):
            return out
        n = acc.shape[0]
        flat = out.reshape(n, -1)  # a view: out is C-contiguous, so writes to flat land in out
        n_out = int(np.prod(out_shape))

        if prot is not None and prot.n_protected:
            which = np.arange(prot.n_protected)  # the protected neurons present (all, or those among cols)
            if cols is None:
                idx = prot.neurons
            else:
                at = np.minimum(np.searchsorted(cols, prot.neurons), cols.size - 1)
                which = which[cols[at] == prot.neurons]
                idx = at[which]
            if prot.scheme is Scheme.SPLIT or shadow_acc:
                shift_n = neuron_shift(layer, out_shape, prot.neurons[which])
            if prot.scheme is Scheme.SPLIT:
                flat[:, idx] = split_half(acc.reshape(n, -1)[:, idx], shift_n)
            base = flat[:, idx].copy()
            shadows = np.repeat(base[:, :, None], prot.copies - 1, axis=2)  # (N, present, copies-1)
            for j, sacc in (shadow_acc or {}).items():  # copy j computed from its own stored words
                own = sacc.reshape(n, -1)[:, idx]
                shadows[:, :, j - 1] = split_half(own, shift_n) if prot.scheme is Scheme.SPLIT else \
                    requantize(own, shift_n, lo, hi)
            on_shadows = [f for f in faults if f.slot >= n_out]
            if on_shadows:  # slot n_out + p*(copies-1) + j: shadow j of protected neuron p
                p, j = np.divmod(np.array([f.slot for f in on_shadows], dtype=np.int64) - n_out, prot.copies - 1)
                q = p if cols is None else np.minimum(np.searchsorted(which, p), max(which.size - 1, 0))
                missing = np.flatnonzero(which[q] != p) if which.size else np.arange(p.size)
                if missing.size:
                    raise ValueError(f"layer {index}: shadow slot {on_shadows[missing[0]].slot} carries a fault but "
                                     "its neuron is not among the columns")
                _apply_faults(shadows, (q, j), on_shadows)
            if masks is not None:
                shadow_masks = masks[:, n_out:].reshape(n, prot.n_protected, prot.copies - 1)
                shadows ^= (shadow_masks if cols is None else shadow_masks[:, which]).view(np.int8)
        on_neurons = [f for f in faults if f.slot < n_out]
        if on_neurons:
            slots = np.array([f.slot for f in on_neurons], dtype=np.int64)
            at = slots
            if cols is not None:  # the columns of ``flat`` holding the faulty neurons
                at = np.minimum(np.searchsorted(cols, slots), max(cols.size - 1, 0))
                missing = np.flatnonzero(cols[at] != slots)
                if missing.size:
                    raise ValueError(f"layer {index}: neuron {slots[missing[0]]} carries a fault but is not among "
                                     "the columns")
            _apply_faults(flat, (at,), on_neurons)
        if masks is not None:
            flat ^= (masks[:, :n_out] if cols is None else masks[:, cols]).view(np.int8)
        if prot is not None and prot.n_protected:
            copies = [flat[:, idx]] + [shadows[:, :, j] for j in range(prot.copies - 1)]
            flat[:, idx] = correct(prot.scheme, copies)
        return out


def _apply_faults(target: np.ndarray, where: tuple[np.ndarray, ...], faults: Sequence) -> None:
    """Apply each of ``faults`` (in order) to its column of ``target`` (in place): fault ``k`` to
    ``target[:, where[0][k], ...]``. Where every fault has a column of its own, all at once (each column gets
    exactly what the one-by-one loop gives it); where two share one, one by one, so that their order holds."""
    if len(faults) > 1 and len(set(zip(*(w.tolist() for w in where)))) == len(faults):
        masks = np.array([f.mask for f in faults], dtype=np.uint8)
        modes = np.array([int(f.mode) for f in faults], dtype=np.int64)
        index = (slice(None),) + where
        target[index] = apply_fault(target[index], masks, modes)
        return
    for k, f in enumerate(faults):
        index = (slice(None),) + tuple(int(w[k]) for w in where)
        target[index] = apply_fault(target[index], f.mask, f.mode)


def run(model: Model, x: np.ndarray, faults: Iterable = (), collect: bool = False,
        batch_size: int = 1024) -> RunResult:
    """One-shot convenience wrapper around :class:`Executor`."""
    return Executor(model).run(x, faults=faults, collect=collect, batch_size=batch_size)


def predict(model: Model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    return run(model, x, batch_size=batch_size).predictions
