"""RejectionAwareAccuracy vs numpy / scikit-learn references, batch invariance and validation (its 2-process
DDP sync is one of the cases of ``tests/test_metrics_ddp.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from src.metrics.robustness import RejectionAwareAccuracy, rejection_aware_accuracy

KEYS = {"rejection_rate", "acc_reject_as_correct", "acc_reject_as_error", "acc_accepted", "count"}


# ----------------------------------------------------------------------------------------------------------
# Independent reference: per-sample outcomes scored with sklearn on masked arrays
# ----------------------------------------------------------------------------------------------------------


def _reference(correct: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """Each convention as a plain accuracy: prediction 'right' (1) vs the label 1 under that convention."""
    n = len(correct)
    ones = np.ones(n, dtype=int)
    accepted = ~rejected
    as_correct = np.where(rejected, 1, correct.astype(int))  # a rejection is a caught attack
    as_error = np.where(rejected, 0, correct.astype(int))  # a rejection is a refused clean input
    return {
        "rejection_rate": float(np.mean(rejected)),
        "acc_reject_as_correct": accuracy_score(ones, as_correct),
        "acc_reject_as_error": accuracy_score(ones, as_error),
        "acc_accepted": (
            accuracy_score(ones[accepted], correct[accepted].astype(int)) if accepted.any() else math.nan
        ),
        "count": float(n),
    }


def _flags(n: int, seed: int, p_reject: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(n) < 0.6, rng.random(n) < p_reject


def _assert_matches(got: dict[str, float], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys() == KEYS
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-7, nan_ok=True), key


@pytest.mark.parametrize(
    ("n", "seed", "p_reject"), [(50, 0, 0.3), (257, 1, 0.5), (1000, 2, 0.1), (7, 3, 0.9)]
)
def test_matches_sklearn_reference(n: int, seed: int, p_reject: float) -> None:
    correct, rejected = _flags(n, seed, p_reject)
    _assert_matches(
        rejection_aware_accuracy(torch.tensor(correct), torch.tensor(rejected)), _reference(correct, rejected)
    )


def test_all_rejected_gives_nan_accepted_accuracy() -> None:
    correct, _ = _flags(40, 4, 0.0)
    rejected = np.ones(40, dtype=bool)
    out = rejection_aware_accuracy(torch.tensor(correct), torch.tensor(rejected))
    _assert_matches(out, _reference(correct, rejected))
    assert math.isnan(out["acc_accepted"])
    assert out["rejection_rate"] == out["acc_reject_as_correct"] == 1.0 and out["acc_reject_as_error"] == 0.0


def test_none_rejected_all_accuracies_equal_plain_accuracy() -> None:
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(5)
    labels, preds = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    plain = accuracy_score(labels, preds)
    out = rejection_aware_accuracy(torch.tensor(preds == labels), torch.zeros(300, dtype=torch.bool))
    assert out["rejection_rate"] == 0.0
    for key in ("acc_reject_as_correct", "acc_reject_as_error", "acc_accepted"):
        assert out[key] == pytest.approx(plain, rel=1e-6), key


def test_hand_computed_example() -> None:
    # accepted & right, accepted & wrong, two rejected (their `correct` flag is ignored), accepted & right
    correct = torch.tensor([True, False, True, False, True])
    rejected = torch.tensor([0, 0, 1, 1, 0])  # integer 0/1 flags are accepted
    metric = RejectionAwareAccuracy()
    metric.update(correct, rejected)
    out = metric.compute()
    assert all(v.dtype == torch.float32 and v.ndim == 0 for v in out.values())
    assert {k: float(v) for k, v in out.items()} == pytest.approx(
        {
            "rejection_rate": 2 / 5,
            "acc_reject_as_correct": 4 / 5,
            "acc_reject_as_error": 2 / 5,
            "acc_accepted": 2 / 3,
            "count": 5.0,
        }
    )
    assert (int(metric.count), int(metric.rejected), int(metric.accepted_correct)) == (5, 2, 2)


def test_batch_splitting_invariance() -> None:
    correct, rejected = _flags(101, 6, 0.35)
    c, r = torch.tensor(correct), torch.tensor(rejected)
    whole = RejectionAwareAccuracy()
    whole.update(c, r)
    split = RejectionAwareAccuracy()
    for lo, hi in ((0, 1), (1, 1), (1, 30), (30, 33), (33, 101)):  # uneven, one empty batch
        split.update(c[lo:hi], r[lo:hi])
    expected = whole.compute()
    got = split.compute()
    for key in KEYS:
        assert torch.equal(got[key], expected[key]), key
    split.reset()
    split.update(c, r)
    assert torch.equal(split.compute()["acc_accepted"], expected["acc_accepted"])  # reset clears the counters


def test_input_validation() -> None:
    metric = RejectionAwareAccuracy()
    ok = torch.ones(4, dtype=torch.bool)
    name = "RejectionAwareAccuracy"
    with pytest.raises(ValueError, match=f"{name}: `correct` and `rejected` must have the same shape"):
        metric.update(ok, ok[:3])
    with pytest.raises(ValueError, match=f"{name}: `rejected` must be 1-D \\[B\\], got shape \\(2, 2\\)"):
        metric.update(ok, ok.reshape(2, 2))
    with pytest.raises(ValueError, match=f"{name}: `correct` must be 1-D"):
        metric.update(ok.reshape(2, 2), ok.reshape(2, 2))
    with pytest.raises(
        ValueError, match=f"{name}: `correct` must be boolean or integer 0/1, got torch.float32"
    ):
        metric.update(torch.tensor([0.2, 0.9, 1.0, 0.0]), ok)
    with pytest.raises(ValueError, match=f"{name}: `rejected` must hold only 0 or 1, found \\[2\\]"):
        metric.update(ok, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=f"{name}: `rejected` must be a torch.Tensor, got list"):
        metric.update(ok, [0, 1, 0, 1])  # type: ignore[arg-type]
    assert int(metric.count) == 0  # refused batches leave no trace


def test_empty_compute_raises() -> None:
    with pytest.raises(ValueError, match="RejectionAwareAccuracy: compute\\(\\) called on an empty state"):
        rejection_aware_accuracy(torch.empty(0, dtype=torch.bool), torch.empty(0, dtype=torch.bool))
    metric = RejectionAwareAccuracy()
    with (
        pytest.warns(UserWarning, match="called before the ``update``"),
        pytest.raises(ValueError, match="compute\\(\\) called on an empty state"),
    ):
        metric.compute()
