"""The four PRO-Face settings on embeddings whose answer is known by construction; pair scores (cosine /
angular) and similarity statistics against numpy / scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from src.metrics.identity import verification_pairs, verification_summary
from src.metrics.identity_settings import (
    SETTINGS,
    cosine_statistics,
    flatten_metrics,
    identity_settings,
    pair_scores,
)

N_ID, PER_ID, HALF = 40, 5, 64


def _synthetic() -> tuple[torch.Tensor, ...]:
    """Embeddings with known verification results.

    * original: one-hot identity direction ×8 plus small integer noise, all in dims [0, 64) → genuine cos
      ≈ 0.97, impostor cos ≈ 0: perfectly separated;
    * protected: the original moved to dims [64, 128) with a fixed permutation → protected–protected has the
      original's geometry (perfect), protected–original has disjoint supports: every score is exactly 0;
    * obfuscated: random vectors in dims [64, 128) → obfuscated–original scores are exactly 0 as well.

    Pairs: 10 folds of 30 genuine + 30 impostor pairs each, so every training split is balanced.
    """
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(N_ID).repeat_interleave(PER_ID)
    n = labels.numel()
    original = torch.zeros(n, 2 * HALF, dtype=torch.float64)
    original[torch.arange(n), labels] = 8.0
    noise_dims = torch.randint(0, HALF, (n, 3), generator=g)
    original[torch.arange(n)[:, None], noise_dims] += torch.randint(-1, 2, (n, 3), generator=g).double()
    protected = torch.zeros_like(original)
    protected[:, HALF:] = original[:, :HALF][:, torch.randperm(HALF, generator=g)]
    obfuscated = torch.zeros_like(original)
    obfuscated[:, HALF:] = torch.randn(n, HALF, generator=g, dtype=torch.float64)
    folds = [verification_pairs(labels, 60, torch.Generator().manual_seed(f)) for f in range(10)]
    pairs = tuple(torch.cat([fold[i] for fold in folds]) for i in range(3))
    return original, obfuscated, protected, labels, pairs


def test_four_settings_known_by_construction() -> None:
    original, obfuscated, protected, _, pairs = _synthetic()
    fars = (1e-1, 1e-2)
    out = identity_settings(original, pairs, obfuscated, protected, fars=fars)
    assert list(out) == list(SETTINGS) == ["orig", "obf", "prot_prot", "prot_orig"]
    for name in ("orig", "prot_prot"):  # recognisable
        r = out[name]
        assert r["accuracy"] == 1.0 and r["accuracy_std"] == 0.0
        assert r["auc"] == 1.0 and r["eer"] == 0.0
        assert r["tar_at_far_fold_mean"] == {1e-1: 1.0, 1e-2: 1.0}
        assert r["tar_at_far_fold_std"] == {1e-1: 0.0, 1e-2: 0.0}
        assert r["tar_at_far_pooled"] == {1e-1: 1.0, 1e-2: 1.0}
        assert r["cosine"]["genuine"]["min"] > 0.9 and r["cosine"]["impostor"]["max"] < 0.2
        assert r["cosine"]["d_prime"] > 10
    for key in ("accuracy", "auc", "eer", "eer_threshold"):  # a permutation keeps the geometry
        assert out["prot_prot"][key] == pytest.approx(out["orig"][key], abs=1e-12)
    for name in ("obf", "prot_orig"):  # every score is exactly 0: chance level by construction
        r = out[name]
        assert r["accuracy"] == 0.5 and r["accuracy_std"] == 0.0  # balanced folds: threshold -inf, half right
        assert r["auc"] == 0.5 and r["eer"] == 0.5
        assert r["tar_at_far_fold_mean"] == {1e-1: 0.0, 1e-2: 0.0}  # nothing accepted without accepting all
        assert r["cosine"]["genuine"]["mean"] == 0.0 and r["cosine"]["impostor"]["std"] == 0.0
        assert math.isnan(r["cosine"]["d_prime"])  # equal means, zero spread


def test_settings_subset_angular_and_reference() -> None:
    """Noisy embeddings: every setting equals verification_summary of sklearn pair cosines; angular gives the
    same ranking metrics (only thresholds move)."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(60), 4)
    centres = rng.normal(size=(60, 32))
    original = centres[labels] + 1.2 * rng.normal(size=(240, 32))
    protected = original + 2.0 * rng.normal(size=(240, 32))
    pairs = verification_pairs(torch.tensor(labels), 1200, torch.Generator().manual_seed(3))
    a, b, same = (t.numpy() for t in pairs)
    cos = np.einsum(
        "ij,ij->i", *(x / np.linalg.norm(x, axis=1, keepdims=True) for x in (protected[a], original[b]))
    )
    expected = verification_summary(torch.tensor(cos), torch.tensor(same), fars=(0.1,))

    t_orig, t_prot = torch.tensor(original, dtype=torch.float32), torch.tensor(protected, dtype=torch.float32)
    out = identity_settings(t_orig, pairs, protected=t_prot, settings=["prot_orig"], fars=(0.1,))
    assert list(out) == ["prot_orig"]
    got = out["prot_orig"]
    assert 0.6 < got["accuracy"] < 0.95  # a non-trivial case
    for key in ("accuracy", "accuracy_std", "auc", "eer"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6)
    for key in ("tar_at_far_fold_mean", "tar_at_far_pooled"):
        assert got[key][0.1] == pytest.approx(expected[key][0.1], abs=1e-6)

    angular = identity_settings(t_orig, pairs, protected=t_prot, distance="angular", fars=(0.1,))
    cosine = identity_settings(t_orig, pairs, protected=t_prot, fars=(0.1,))
    assert list(angular) == ["orig", "prot_prot", "prot_orig"]  # no obfuscated embeddings given
    for name, r in angular.items():
        assert r["distance"] == "angular"
        for key in ("accuracy", "accuracy_std", "auc", "eer"):
            assert r[key] == pytest.approx(cosine[name][key], abs=1e-12)
        assert r["tar_at_far_fold_mean"] == cosine[name]["tar_at_far_fold_mean"]
        assert r["cosine"] == cosine[name]["cosine"]  # statistics are always of the cosine
        assert 0 <= r["eer_threshold"] <= 1  # an angular similarity


def test_pair_scores_match_sklearn_and_arccos() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(50, 16))
    a[0] = b[0]  # cos 1 (clamped), angular similarity 1
    a[1] = -b[1]  # cos -1, angular similarity 0
    expected = np.diag(cosine_similarity(a, b))
    cos = pair_scores(torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(cos.numpy(), expected, rtol=0, atol=1e-12)
    ang = pair_scores(torch.tensor(a), torch.tensor(b), distance="angular")
    np.testing.assert_allclose(
        ang.numpy(), 1 - np.arccos(np.clip(expected, -1, 1)) / np.pi, rtol=0, atol=1e-7
    )
    assert ang[0] == pytest.approx(1.0) and ang[1] == pytest.approx(0.0)
    order_cos, order_ang = np.argsort(cos.numpy(), kind="stable"), np.argsort(ang.numpy(), kind="stable")
    np.testing.assert_array_equal(order_cos, order_ang)  # the same ordering
    with pytest.raises(ValueError, match="pair_scores: distance must be one of \\('cosine', 'angular'\\)"):
        pair_scores(torch.tensor(a), torch.tensor(b), distance="euclidean")
    with pytest.raises(ValueError, match="pair_scores: `emb_a` and `emb_b` must have the same shape"):
        pair_scores(torch.tensor(a), torch.tensor(b[:3]))
    with pytest.raises(ValueError, match="pair_scores: `emb_b` has 1 all-zero row"):
        pair_scores(torch.tensor(a[:2]), torch.zeros(2, 16).index_fill_(0, torch.tensor([0]), 1.0))


def test_cosine_statistics_vs_numpy() -> None:
    rng = np.random.default_rng(3)
    gen, imp = rng.normal(0.6, 0.1, size=1001), rng.normal(0.05, 0.08, size=5000)
    qs = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
    out = cosine_statistics(torch.tensor(gen, dtype=torch.float32), torch.tensor(imp), quantiles=qs)
    gen = gen.astype(np.float32).astype(np.float64)
    for key, x in (("genuine", gen), ("impostor", imp)):
        s = out[key]
        assert s["count"] == len(x)
        assert s["mean"] == pytest.approx(np.mean(x), abs=1e-12)
        assert s["std"] == pytest.approx(np.std(x), abs=1e-12)
        assert (s["min"], s["max"]) == (x.min(), x.max())
        for q in qs:
            assert s["quantiles"][q] == pytest.approx(np.quantile(x, q), abs=1e-12)
    d = (np.mean(gen) - np.mean(imp)) / np.sqrt((np.var(gen) + np.var(imp)) / 2)
    assert out["d_prime"] == pytest.approx(d, rel=1e-12)
    swapped = cosine_statistics(torch.tensor(imp), torch.tensor(gen))
    assert swapped["d_prime"] == pytest.approx(-d, rel=1e-12)  # signed
    assert cosine_statistics(torch.ones(3), torch.zeros(4))["d_prime"] == math.inf
    with pytest.raises(ValueError, match="cosine_statistics: `impostor` must be a non-empty 1-D floating"):
        cosine_statistics(torch.tensor(gen), torch.zeros(0))
    with pytest.raises(ValueError, match="cosine_statistics: `genuine` contains non-finite values"):
        cosine_statistics(torch.tensor([0.1, float("nan")]), torch.tensor(imp))
    with pytest.raises(ValueError, match="cosine_statistics: quantiles must be numbers in \\[0, 1\\]"):
        cosine_statistics(torch.tensor(gen), torch.tensor(imp), quantiles=(1.5,))


def test_identity_settings_errors() -> None:
    original, obfuscated, protected, _, pairs = _synthetic()
    name = "identity_settings"
    with pytest.raises(ValueError, match=f"{name}: setting 'obf' needs the `obfuscated` embeddings"):
        identity_settings(original, pairs, settings=["obf"])
    with pytest.raises(ValueError, match=f"{name}: unknown setting 'adr'"):
        identity_settings(original, pairs, protected=protected, settings=["adr"])
    with pytest.raises(ValueError, match=f"{name}: `protected` must have the shape of `original`"):
        identity_settings(original, pairs, protected=protected[:10])
    with pytest.raises(ValueError, match=f"{name}: `obfuscated` contains non-finite values"):
        identity_settings(original, pairs, obfuscated=torch.full_like(obfuscated, float("nan")))
    bad = (pairs[0], pairs[1] + 1000, pairs[2])
    with pytest.raises(ValueError, match=f"{name}: `idx_b` holds indices outside \\[0, 200\\)"):
        identity_settings(original, bad)
    with pytest.raises(ValueError, match=f"{name}: idx_a, idx_b and is_same must have one length"):
        identity_settings(original, (pairs[0], pairs[1], pairs[2][:10]))
    with pytest.raises(ValueError, match=f"{name}: `pairs` must be a tuple \\(idx_a, idx_b, is_same\\)"):
        identity_settings(original, pairs[:2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"{name}: distance must be one of"):
        identity_settings(original, pairs, distance="l2")
    with pytest.raises(ValueError, match="verification_accuracy: `is_same` must be boolean"):
        identity_settings(original, (pairs[0], pairs[1], torch.full_like(pairs[0], 3)))


def test_flatten_metrics() -> None:
    original, _, protected, _, pairs = _synthetic()
    out = identity_settings(original, pairs, protected=protected, settings=["orig"], fars=(1e-2,))
    flat = flatten_metrics(out)
    assert flat["orig/accuracy"] == 1.0
    assert flat["orig/tar_at_far_fold_mean/0.01"] == 1.0 and flat["orig/far_resolved_fold/0.01"] == 1.0
    assert flat["orig/tar_at_far_pooled/0.01"] == 1.0 and flat["orig/far_resolved_pooled/0.01"] == 1.0
    assert "orig/tar_at_far/0.01" not in flat  # no ambiguous key: pooled and fold mean are named
    assert flat["orig/cosine/genuine/quantiles/0.5"] == out["orig"]["cosine"]["genuine"]["quantiles"][0.5]
    assert "orig/distance" not in flat  # strings are not metrics
    assert all(isinstance(v, float) for v in flat.values())
