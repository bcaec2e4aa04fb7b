"""ROC AUC / EER / TAR@FAR (pooled and k-fold), FAR thresholds, protection success rate, and their
torchmetrics classes — against scikit-learn, brute-force numpy references and closed-form cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from src.metrics.identity import (
    DEFAULT_FARS,
    ProtectionSuccessRate,
    VerificationMetrics,
    match_rate,
    protection_success_rate,
    tar_at_far_kfold,
    threshold_at_far,
    verification_accuracy,
    verification_roc,
    verification_summary,
)

# ----------------------------------------------------------------------------------------------------------
# Independent references
# ----------------------------------------------------------------------------------------------------------


def _scores(n: int, seed: int, separation: float = 1.5, decimals: int | None = 2) -> tuple[np.ndarray, ...]:
    """Overlapping genuine/impostor scores; rounded (ties) unless ``decimals`` is None."""
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.4
    scores = rng.normal(size=n) + separation * same
    return (np.round(scores, decimals) if decimals is not None else scores), same


def _reference_eer(scores: np.ndarray, same: np.ndarray) -> float:
    """EER on sklearn's ROC polyline: walk its segments, intersect the first one crossing FPR = 1 - TPR."""
    fpr, tpr, _ = roc_curve(same, scores, drop_intermediate=False)
    for i in range(1, len(fpr)):
        g0, g1 = fpr[i - 1] + tpr[i - 1] - 1, fpr[i] + tpr[i] - 1
        if g0 < 0 <= g1:
            w = -g0 / (g1 - g0)
            return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))
    raise AssertionError("ROC does not cross the EER line")


def _reference_tar(scores: np.ndarray, same: np.ndarray, far: float) -> float:
    """Highest TPR among sklearn's ROC vertices with FPR <= far (no interpolation)."""
    fpr, tpr, _ = roc_curve(same, scores, drop_intermediate=False)
    return float(tpr[fpr <= far].max())


def _reference_threshold(impostor: np.ndarray, far: float) -> float:
    """Smallest candidate (next float above an impostor score, or -inf) whose FAR is <= far: scan the
    candidates from the top (FAR grows as the threshold falls) and keep the last one that satisfies it."""
    candidates = sorted({-np.inf, *(np.nextafter(v, np.inf) for v in impostor)}, reverse=True)
    best = np.inf
    for t in candidates:
        if np.sum(impostor >= t) / len(impostor) > far:
            break
        best = t
    return float(best)


# ----------------------------------------------------------------------------------------------------------
# verification_roc
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed", "decimals"), [(3000, 0, 2), (800, 1, None), (20_000, 2, 3)])
def test_verification_roc_matches_sklearn(n: int, seed: int, decimals: int | None) -> None:
    scores, same = _scores(n, seed, decimals=decimals)
    out = verification_roc(torch.tensor(scores), torch.tensor(same))
    assert out["auc"] == pytest.approx(roc_auc_score(same, scores), abs=1e-12)
    assert out["eer"] == pytest.approx(_reference_eer(scores, same), abs=1e-12)
    assert out["num_genuine"] == same.sum() and out["num_impostor"] == (~same).sum()
    n_imp = int((~same).sum())
    for far in DEFAULT_FARS:
        if far * n_imp < 1:
            assert math.isnan(out["tar_at_far_pooled"][far]) and not out["far_resolved"][far]
            assert math.isnan(out["threshold_at_far"][far])
            continue
        assert out["far_resolved"][far]
        assert out["tar_at_far_pooled"][far] == pytest.approx(_reference_tar(scores, same, far), abs=1e-15)
        t = out["threshold_at_far"][far]
        assert t == _reference_threshold(scores[~same], far)
        assert np.mean(scores[~same] >= t) <= far


def test_verification_roc_eer_threshold_on_the_crossing_segment() -> None:
    scores, same = _scores(500, seed=5, decimals=None)
    out = verification_roc(torch.tensor(scores), torch.tensor(same))
    t = out["eer_threshold"]
    # FPR and FNR at the thresholds just above / below bracket the EER.
    far_at = np.mean(scores[~same] >= t)
    frr_at = np.mean(scores[same] < t)
    assert abs(far_at - out["eer"]) <= 2 / (~same).sum() + 1e-12
    assert abs(frr_at - out["eer"]) <= 2 / same.sum() + 1e-12


def test_verification_roc_closed_forms() -> None:
    g = torch.Generator().manual_seed(0)
    same = torch.arange(4000) % 2 == 0
    # Perfect separation: AUC 1, EER 0, TAR 1 at every resolvable FAR.
    separated = torch.where(
        same, 0.6 + 0.4 * torch.rand(4000, generator=g), 0.5 * torch.rand(4000, generator=g)
    )
    out = verification_roc(separated, same, fars=(1e-1, 1e-2, 1e-3))
    assert out["auc"] == 1.0 and out["eer"] == 0.0
    assert out["tar_at_far_pooled"] == {1e-1: 1.0, 1e-2: 1.0, 1e-3: 1.0}
    assert separated[~same].max() < out["eer_threshold"] == separated[same].min()
    # Identical scores for everyone: the ROC is the diagonal, AUC = EER = 0.5, nothing is accepted at FAR < 1.
    tied = torch.full((4000,), 0.3)
    out = verification_roc(tied, same, fars=(1e-1, 1.0))
    assert out["auc"] == 0.5 and out["eer"] == 0.5
    assert out["tar_at_far_pooled"] == {1e-1: 0.0, 1.0: 1.0} and out["threshold_at_far"][1.0] == -math.inf
    # Same distribution (independent draws): ≈ 0.5.
    noise = torch.rand(20_000, generator=g)
    out = verification_roc(noise, torch.arange(20_000) % 2 == 0)
    assert abs(out["auc"] - 0.5) < 0.02 and abs(out["eer"] - 0.5) < 0.02
    assert (
        abs(out["tar_at_far_pooled"][1e-1] - 0.1) < 0.02
        and abs(out["tar_at_far_pooled"][1e-2] - 0.01) < 0.005
    )


def test_verification_roc_hand_built() -> None:
    # genuine 0.9, 0.8, 0.4 ; impostor 0.7, 0.3, 0.2, 0.1
    scores = torch.tensor([0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1], dtype=torch.float64)
    same = torch.tensor([1, 1, 1, 0, 0, 0, 0])
    out = verification_roc(scores, same, fars=(0.25, 0.5))
    # AUC: 11 of 12 (genuine, impostor) orderings are correct.
    assert out["auc"] == pytest.approx(11 / 12)
    # FAR 0.25 allows one impostor (0.7): threshold just above 0.3 → all 3 genuine pass.
    assert out["tar_at_far_pooled"][0.25] == 1.0 and out["threshold_at_far"][0.25] == math.nextafter(0.3, 1)
    # ROC vertices (FPR, TPR): (0,0) (0,1/3) (0,2/3) (1/4,2/3) (1/4,1) (1/2,1) ...; FPR + TPR - 1 turns
    # non-negative on the vertical step (1/4,2/3)-(1/4,1), so EER = 1/4, at the threshold between 0.7 and 0.4.
    assert out["eer"] == pytest.approx(0.25)
    assert 0.4 < out["eer_threshold"] < 0.7


def test_verification_roc_unresolvable_far_is_nan_with_flag() -> None:
    scores, same = _scores(150, seed=3)  # ~90 impostors
    out = verification_roc(torch.tensor(scores), torch.tensor(same), fars=(1e-1, 1e-2, 1e-3))
    assert out["far_resolved"] == {1e-1: True, 1e-2: False, 1e-3: False}
    assert not math.isnan(out["tar_at_far_pooled"][1e-1])
    assert math.isnan(out["tar_at_far_pooled"][1e-2]) and math.isnan(out["tar_at_far_pooled"][1e-3])


def test_verification_roc_errors() -> None:
    name = "verification_roc"
    scores, same = torch.rand(20), torch.arange(20) % 2 == 0
    with pytest.raises(ValueError, match=f"{name}: needs both genuine and impostor pairs, got 20 genuine"):
        verification_roc(scores, torch.ones(20, dtype=torch.bool))
    with pytest.raises(ValueError, match=f"{name}: `scores` contains non-finite values \\(1 NaN"):
        verification_roc(torch.where(torch.arange(20) == 0, float("nan"), scores), same)
    with pytest.raises(ValueError, match=f"{name}: `is_same` must have the shape of `scores`"):
        verification_roc(scores, same[:5])
    with pytest.raises(ValueError, match=f"{name}: `scores` must be a non-empty 1-D tensor"):
        verification_roc(scores.view(4, 5), same.view(4, 5))
    with pytest.raises(
        ValueError, match=f"{name}: fars must be a non-empty sequence of numbers in \\(0, 1\\]"
    ):
        verification_roc(scores, same, fars=(0.0,))
    with pytest.raises(ValueError, match=f"{name}: `scores` must be a torch.Tensor"):
        verification_roc(scores.numpy(), same)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# tar_at_far_kfold
# ----------------------------------------------------------------------------------------------------------


def _reference_tar_kfold(
    scores: np.ndarray, same: np.ndarray, folds: list[np.ndarray], far: float
) -> list[float]:
    """Per fold: scan for the smallest candidate threshold on the training impostors, TAR on the test fold."""
    n = len(scores)
    tars = []
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        imp_train = scores[train][~same[train]]
        if far * len(imp_train) < 1:  # not a single impostor may be accepted: unresolvable
            tars.append(float("nan"))
            continue
        t = _reference_threshold(imp_train, far)
        tars.append(float(np.mean(scores[test][same[test]] >= t)))
    return tars


@pytest.mark.parametrize(("n", "seed", "num_folds"), [(6000, 0, 10), (999, 1, 10), (500, 2, 4)])
def test_tar_at_far_kfold_matches_bruteforce(n: int, seed: int, num_folds: int) -> None:
    scores, same = _scores(n, seed)
    folds = np.array_split(np.arange(n), num_folds)
    out = tar_at_far_kfold(torch.tensor(scores), torch.tensor(same), num_folds=num_folds)
    for far in DEFAULT_FARS:
        ref = _reference_tar_kfold(scores, same, folds, far)
        got = out[far]["fold_tar"].numpy()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)  # NaN positions must agree too
        if np.isnan(ref).any():
            assert math.isnan(out[far]["mean"]) and not out[far]["resolved"]
        else:
            assert out[far]["resolved"]
            assert out[far]["mean"] == pytest.approx(np.mean(ref), abs=1e-15)
            assert out[far]["std"] == pytest.approx(np.std(ref), abs=1e-15)
            for f, test in enumerate(folds):  # held-out FAR of each fold's threshold
                imp_test = scores[test][~same[test]]
                assert out[far]["fold_far"][f] == pytest.approx(
                    np.mean(imp_test >= float(out[far]["thresholds"][f]))
                )


def test_tar_at_far_kfold_fold_ids_and_errors() -> None:
    scores, same = _scores(400, seed=4)
    fold_ids = np.random.default_rng(0).permutation(np.arange(400) % 4)
    folds = [np.flatnonzero(fold_ids == f) for f in range(4)]
    out = tar_at_far_kfold(
        torch.tensor(scores), torch.tensor(same), fars=(0.1,), num_folds=4, fold_ids=torch.tensor(fold_ids)
    )
    np.testing.assert_allclose(
        out[0.1]["fold_tar"].numpy(), _reference_tar_kfold(scores, same, folds, 0.1), atol=1e-15
    )
    with pytest.raises(ValueError, match="tar_at_far_kfold: fold 0 has no genuine pairs"):
        tar_at_far_kfold(torch.tensor(scores), torch.tensor(np.arange(400) >= 40), num_folds=10)
    with pytest.raises(ValueError, match="tar_at_far_kfold: num_folds must be an integer >= 2"):
        tar_at_far_kfold(torch.tensor(scores), torch.tensor(same), num_folds=1)


def test_verification_summary_collects_the_parts() -> None:
    scores, same = _scores(6000, seed=6)
    s, y = torch.tensor(scores), torch.tensor(same)
    out = verification_summary(s, y)
    acc = verification_accuracy(s, y)
    roc = verification_roc(s, y)
    kfold = tar_at_far_kfold(s, y)
    assert out["accuracy"] == acc["mean"] and out["accuracy_std"] == acc["std"]
    assert out["auc"] == roc["auc"] and out["eer"] == roc["eer"]
    assert out["tar_at_far_pooled"] == roc["tar_at_far_pooled"]
    assert out["far_resolved_pooled"] == roc["far_resolved"]
    for far in DEFAULT_FARS:
        assert out["tar_at_far_fold_mean"][far] == pytest.approx(kfold[far]["mean"], nan_ok=True)
        assert out["tar_at_far_fold_std"][far] == pytest.approx(kfold[far]["std"], nan_ok=True)
    # No ambiguous "tar_at_far": each TAR says whether it is pooled or a fold mean.
    assert "tar_at_far" not in out
    assert out["tar_at_far_pooled"][1e-1] != out["tar_at_far_fold_mean"][1e-1]  # different quantities
    # ~3240 training impostors per fold: FAR 1e-3 allows 3 of them, 1e-4 none (NaN).
    assert out["far_resolved_fold"] == {1e-1: True, 1e-2: True, 1e-3: True, 1e-4: False}
    assert math.isnan(out["tar_at_far_fold_mean"][1e-4]) and math.isnan(out["tar_at_far_fold_std"][1e-4])
    assert not any(key.startswith("tar_at_far") and key.endswith("_std") and "fold" not in key for key in out)
    assert "tar_at_far" not in roc  # the pooled dict names its TAR explicitly


# ----------------------------------------------------------------------------------------------------------
# threshold_at_far / protection_success_rate / match_rate
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("far", [0.5, 0.1, 0.01, 0.7, 1.0])
def test_threshold_at_far_matches_scan(far: float) -> None:
    rng = np.random.default_rng(7)
    impostor = np.round(rng.normal(size=1000), 2)  # many ties
    t = threshold_at_far(torch.tensor(impostor, dtype=torch.float32), far)
    imp32 = impostor.astype(np.float32).astype(np.float64)
    assert t == _reference_threshold(imp32, far)
    assert np.mean(imp32 >= t) <= far
    if far < 1:
        assert np.mean(imp32 >= np.nextafter(t, -np.inf)) > far  # nothing lower keeps the FAR


def test_threshold_at_far_errors() -> None:
    with pytest.raises(
        ValueError, match="threshold_at_far: far=0.001 with 100 impostor scores accepts no impostor"
    ):
        threshold_at_far(torch.rand(100), 1e-3)
    with pytest.raises(ValueError, match="threshold_at_far: fars must be a non-empty sequence"):
        threshold_at_far(torch.rand(100), 1.5)
    with pytest.raises(ValueError, match="threshold_at_far: `impostor_scores` contains non-finite values"):
        threshold_at_far(torch.tensor([0.1, float("inf")]), 0.5)
    with pytest.raises(
        ValueError, match="threshold_at_far: `impostor_scores` must be a non-empty 1-D floating"
    ):
        threshold_at_far(torch.arange(10), 0.5)


def test_protection_success_rate_vs_numpy() -> None:
    rng = np.random.default_rng(8)
    clean_impostor = rng.normal(0.0, 0.1, size=5000).astype(np.float32)
    protected = rng.normal(0.2, 0.2, size=777).astype(np.float32)
    for far in (1e-1, 1e-2, 1e-3):
        t = threshold_at_far(torch.tensor(clean_impostor), far)
        psr = protection_success_rate(torch.tensor(protected), t)
        assert psr == pytest.approx(np.mean(protected.astype(np.float64) < t), abs=0)
        assert match_rate(torch.tensor(protected), t) == pytest.approx(1 - psr, abs=1e-15)
    # The float64 comparison matters: the threshold is the next float64 above an impostor score, which
    # rounds back to that score in float32; the score itself must count as protected (not matched).
    t = threshold_at_far(torch.tensor(clean_impostor), 0.1)
    at_threshold = torch.tensor([np.float32(np.nextafter(t, -np.inf))])
    assert protection_success_rate(at_threshold, t) == 1.0
    with pytest.raises(ValueError, match="protection_success_rate: threshold is NaN"):
        protection_success_rate(torch.tensor(protected), float("nan"))
    with pytest.raises(
        ValueError, match="protection_success_rate: `scores` must be a non-empty 1-D floating"
    ):
        protection_success_rate(torch.zeros(0), 0.3)
    with pytest.raises(ValueError, match="match_rate: `scores` contains non-finite values"):
        match_rate(torch.tensor([float("nan")]), 0.3)


# ----------------------------------------------------------------------------------------------------------
# torchmetrics classes (single process; DDP in test_metrics_ddp.py)
# ----------------------------------------------------------------------------------------------------------


def test_verification_metrics_class_equals_functional() -> None:
    scores, same = _scores(1203, seed=9)
    s, y = torch.tensor(scores, dtype=torch.float32), torch.tensor(same)
    metric = VerificationMetrics()
    for idx in torch.arange(1203).split(100):
        metric.update(s[idx], y[idx].long())
    expected = verification_summary(s, y)
    got = metric.compute()
    assert got.keys() == expected.keys()
    for key in ("accuracy", "accuracy_std", "auc", "eer", "eer_threshold"):
        assert got[key] == expected[key]
    assert got["tar_at_far_fold_mean"] == pytest.approx(expected["tar_at_far_fold_mean"], nan_ok=True)
    assert got["tar_at_far_pooled"] == pytest.approx(expected["tar_at_far_pooled"], nan_ok=True)

    # With a global pair index, the update order does not matter.
    shuffled = VerificationMetrics(fars=(0.1,))
    perm = torch.randperm(1203, generator=torch.Generator().manual_seed(0))
    for idx in perm.split(97):
        shuffled.update(s[idx], y[idx], index=idx)
    got = shuffled.compute()
    assert got["accuracy"] == expected["accuracy"]
    assert got["tar_at_far_fold_mean"][0.1] == expected["tar_at_far_fold_mean"][0.1]

    roc_only = VerificationMetrics(num_folds=None)
    roc_only.update(s, y)
    assert roc_only.compute() == verification_roc(s, y)


def test_verification_metrics_class_errors() -> None:
    metric = VerificationMetrics()
    with (
        pytest.warns(UserWarning, match="called before the ``update``"),
        pytest.raises(ValueError, match="VerificationMetrics: compute\\(\\) called on an empty state"),
    ):
        metric.compute()
    metric.update(torch.rand(30), torch.arange(30) % 2, index=torch.arange(30))
    metric.update(torch.rand(30), torch.arange(30) % 2)
    with pytest.raises(ValueError, match="VerificationMetrics: `index` was given for 30 of 60 pairs"):
        metric.compute()
    metric = VerificationMetrics()
    metric.update(torch.rand(30), torch.arange(30) % 2, index=torch.arange(30))
    metric.update(torch.rand(30), torch.arange(30) % 2, index=torch.arange(30))
    with pytest.raises(ValueError, match="VerificationMetrics: duplicate pair indices"):
        metric.compute()
    with pytest.raises(ValueError, match="VerificationMetrics: `is_same` must be boolean"):
        metric.update(torch.rand(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="VerificationMetrics: num_folds must be an integer >= 2 or None"):
        VerificationMetrics(num_folds=1)


def test_protection_success_rate_class() -> None:
    rng = np.random.default_rng(10)
    scores = torch.tensor(rng.normal(0.3, 0.2, size=1000))
    metric = ProtectionSuccessRate(threshold=0.35)
    for chunk in scores.split(128):
        metric.update(chunk)
    assert float(metric.compute()) == protection_success_rate(scores, 0.35)
    with pytest.raises(ValueError, match="ProtectionSuccessRate: threshold is NaN"):
        ProtectionSuccessRate(threshold=float("nan"))
    metric.reset()
    with (
        pytest.warns(UserWarning, match="called before the ``update``"),
        pytest.raises(ValueError, match="ProtectionSuccessRate: compute\\(\\) called on an empty state"),
    ):
        metric.compute()
