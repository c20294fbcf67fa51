"""Every interval a campaign reports stays inside the range its metric can reach (docs/campaigns.md):
a rate in [0, 1], an accuracy loss in [acc0 - 1, acc0], an accuracy under fault in [0, 1] -- including the
all-masked fallback of a small breakdown group and a group of a single fault."""

import numpy as np
import pytest

from resilq.arith import FaultMode
from resilq.campaign.engine import How, Outcomes
from resilq.campaign.sampling import FaultSample, SlotKind
from resilq.campaign.statistics import _critical_and_loss, mean_interval, summarize, wilson


@pytest.mark.parametrize("golden_correct", [98, 50, 3])
def test_all_masked_group_loss_is_clipped_to_the_reachable_range(golden_correct):
    images, faults = 100, 3  # 3 faults that changed nothing: Wilson upper bound of 0/3 is ~0.56
    changed = np.zeros(faults, dtype=np.int64)
    correct = np.full(faults, golden_correct, dtype=np.int64)
    crit, loss = _critical_and_loss(changed, correct, golden_correct, images, 1000, 0.95)
    acc0 = golden_correct / images
    upper = wilson(0, faults).high
    assert upper > 0.5
    assert (crit.value, crit.low, crit.high) == (0.0, 0.0, upper)
    assert loss.value == 0.0
    assert loss.low == pytest.approx(max(acc0 - 1, -upper)) and loss.high == pytest.approx(min(acc0, upper))
    assert acc0 - 1 <= loss.low <= 0 <= loss.high <= acc0


def test_a_single_fault_gets_the_whole_reachable_range_not_infinity():
    iv = mean_interval(np.array([0.25]), population=50, bounds=(0.0, 1.0))
    assert (iv.value, iv.low, iv.high) == (0.25, 0.0, 1.0)


def _meta(images, golden_correct, layers):
    return {"images": images, "population": sum((s["neurons"] + s["shadows"]) * 8 for s in layers),
            "fault_free_correct": golden_correct, "masks": 8, "layers": layers,
            "mask_values": [1 << b for b in range(8)], "sample_size": 0}


def test_every_interval_of_a_summary_is_inside_its_metric_range():
    rng = np.random.default_rng(5)
    images, golden_correct = 40, 37  # acc0 = 92.5 %
    layers = [{"name": "conv1", "index": 0, "neurons": 30, "shadows": 0, "protected": 0},
              {"name": "fc1", "index": 1, "neurons": 20, "shadows": 4, "protected": 4},
              {"name": "fc2", "index": 2, "neurons": 5, "shadows": 0, "protected": 0}]
    # conv1: faults that change things; fc1: 2 faults that change nothing; fc2: a single fault
    layer = np.array([0] * 40 + [1, 1] + [2])
    n = layer.size
    changed = np.concatenate([rng.integers(0, images + 1, 40), [0, 0], [7]])
    correct = np.concatenate([np.clip(golden_correct - changed[:40] + rng.integers(0, 3, 40), 0, images),
                              [golden_correct] * 2, [golden_correct - 7]])
    sample = FaultSample(layer, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                         1 << rng.integers(0, 8, n), np.where(layer == 1, SlotKind.PROTECTED, SlotKind.NEURON),
                         FaultMode.FLIP, 0)
    meta = _meta(images, golden_correct, layers)
    meta["sample_size"] = n
    outcomes = Outcomes(changed.astype(np.int64), correct.astype(np.int64), [b"\0" * 32] * n,
                        np.full(n, How.PROPAGATED, dtype=np.int64))
    s = summarize(meta, sample, np.arange(n), outcomes)
    acc0 = golden_correct / images

    def inside(iv, lo, hi):
        assert lo - 1e-12 <= iv.low <= iv.value <= iv.high <= hi + 1e-12, (iv, lo, hi)

    inside(s.fault_free_accuracy, 0, 1)
    inside(s.accuracy_under_fault, 0, 1)
    inside(s.accuracy_loss, acc0 - 1, acc0)
    inside(s.critical_rate, 0, 1)
    inside(s.critical_faults, 0, 1)
    rows = s.by_layer + s.by_bit + s.by_kind
    assert {r.label for r in s.by_layer} == {"conv1", "fc1", "fc2"}
    for row in rows:
        if row.faults:
            inside(row.critical_rate, 0, 1)
            inside(row.accuracy_loss, acc0 - 1, acc0)
    fc1 = next(r for r in s.by_layer if r.label == "fc1")
    assert fc1.accuracy_loss.low == pytest.approx(acc0 - 1)  # the Wilson half-width (~0.66) was clipped
    assert fc1.accuracy_loss.high == pytest.approx(wilson(0, 2).high)
    fc2 = next(r for r in s.by_layer if r.label == "fc2")
    assert (fc2.accuracy_loss.low, fc2.accuracy_loss.high) == (pytest.approx(acc0 - 1), pytest.approx(acc0))
