"""Impersonation success rate and the 1:N protection success rate vs independent references: hand-computed
cases, brute-force loops over sorted Python lists (the published evaluation's own procedure), numpy cosine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.metrics import (
    PUBLISHED_FAR_THRESHOLDS,
    ImpersonationSuccessRate,
    impersonation_success_rate,
    impostors_at_or_above_genuine,
    match_rate,
    protection_rank_success_rate,
    published_threshold,
    retrieval_rank_k,
    target_similarities,
    threshold_at_far,
)
from src.networks.recognizers import RECOGNIZERS

pytestmark = pytest.mark.filterwarnings("ignore:The ``compute`` method of metric:UserWarning")

# ----------------------------------------------------------------------------------------------------------
# Impersonation (1:1 against a target identity)
# ----------------------------------------------------------------------------------------------------------


def test_published_table_values_and_recognizer_names() -> None:
    """The table holds the published values (rounded to 4 decimals as the papers print them), is keyed by
    registered recognizer names, and thresholds grow as the FAR shrinks."""
    printed = {
        "ir152": (0.0946, 0.1668, 0.2279),
        "ir_se50": (0.1448, 0.2410, 0.3127),
        "facenet_vggface2": (0.2566, 0.4091, 0.5912),
        "mobilefacenet": (0.1836, 0.3016, 0.3809),
    }
    assert set(PUBLISHED_FAR_THRESHOLDS) == set(printed) and set(printed) <= set(RECOGNIZERS)
    for name, values in printed.items():
        got = tuple(published_threshold(name, far) for far in (0.1, 0.01, 1e-3))
        assert got == pytest.approx(values, abs=5e-5)
        assert got[0] < got[1] < got[2]
    assert published_threshold("ir152", 1e-2) == 0.166788
    with pytest.raises(
        ValueError, match="published_threshold: no published thresholds for recognizer 'arcface'"
    ):
        published_threshold("arcface", 0.01)
    with pytest.raises(ValueError, match=r"at far=0\.05; available FARs: 0\.001, 0\.01, 0\.1"):
        published_threshold("ir152", 0.05)
    with pytest.raises(TypeError):
        PUBLISHED_FAR_THRESHOLDS["ir152"][0.01] = 0.0  # type: ignore[index]


def test_success_rate_is_strict_and_hand_computed() -> None:
    scores = torch.tensor([0.1, 0.241045, 0.3, 0.5, 0.241044], dtype=torch.float64)
    t = published_threshold("ir_se50", 0.01)  # 0.241045: the tie is not a success
    assert impersonation_success_rate(scores, t) == pytest.approx(2 / 5)
    assert match_rate(scores, t) == pytest.approx(3 / 5)  # the >= rule counts the tie
    assert impersonation_success_rate(scores.float(), -1.0) == 1.0
    assert impersonation_success_rate(scores, 0.5) == 0.0


def test_success_rate_equals_match_rate_without_ties_and_the_class_accumulates() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(1000, generator=g) * 2 - 1
    for t in (-0.3, 0.0, 0.1668, 0.9):
        assert impersonation_success_rate(scores, t) == pytest.approx(match_rate(scores, t), abs=0)
        assert impersonation_success_rate(scores, t) == pytest.approx(float(np.mean(scores.numpy() > t)))
    metric = ImpersonationSuccessRate(threshold=0.1668)
    for chunk in torch.tensor_split(scores, [3, 400, 401]):
        metric.update(chunk)
    value = metric.compute()
    assert value.dtype == torch.float64
    assert float(value) == impersonation_success_rate(scores, 0.1668)


def test_computed_threshold_realises_at_most_the_far_under_the_strict_rule() -> None:
    """threshold_at_far (defined for >=) is also conservative for >: exactly floor(far n) impostors pass when
    scores are distinct, and never more with ties."""
    g = torch.Generator().manual_seed(1)
    impostors = torch.randn(2000, generator=g, dtype=torch.float64) * 0.1
    for far in (0.1, 0.01, 0.001):
        t = threshold_at_far(impostors, far)
        assert impersonation_success_rate(impostors, t) == pytest.approx(int(far * 2000) / 2000)
    tied = torch.tensor([0.5] * 5 + [0.1] * 95, dtype=torch.float64)
    t = threshold_at_far(tied, 0.05)  # 5 tied impostors at the top: accepting them all is exactly 5 %
    assert impersonation_success_rate(tied, t) == pytest.approx(0.05)
    t = threshold_at_far(tied, 0.04)  # cannot accept 4 of 5 tied: none accepted
    assert impersonation_success_rate(tied, t) == 0.0


def test_target_similarities_match_numpy_cosine() -> None:
    g = torch.Generator().manual_seed(2)
    protected = torch.randn(7, 16, generator=g)
    target = torch.randn(16, generator=g)
    p, t = protected.double().numpy(), target.double().numpy()
    expected = p @ t / np.linalg.norm(p, axis=1) / np.linalg.norm(t)
    for tgt in (target, target[None]):
        got = target_similarities(protected, tgt)
        assert got.dtype == torch.float64 and got.shape == (7,)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    per_image = torch.randn(7, 16, generator=g)
    q = per_image.double().numpy()
    expected = (p * q).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(q, axis=1)
    np.testing.assert_allclose(target_similarities(protected, per_image).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: impersonation_success_rate(torch.zeros(0), 0.1), "non-empty 1-D floating"),
        (lambda: impersonation_success_rate(torch.tensor([1, 2]), 0.1), "non-empty 1-D floating"),
        (lambda: impersonation_success_rate(torch.tensor([0.1, float("nan")]), 0.1), "non-finite"),
        (lambda: impersonation_success_rate(torch.tensor([0.1]), float("nan")), "threshold is NaN"),
        (lambda: impersonation_success_rate([0.1], 0.1), "must be a torch.Tensor"),
        (lambda: ImpersonationSuccessRate(threshold="high"), "threshold must be a number"),
        (lambda: ImpersonationSuccessRate(threshold=0.2).compute(), "empty state"),
        (lambda: target_similarities(torch.ones(3, 4), torch.ones(2, 4)), "1 or N=3 embeddings"),
        (lambda: target_similarities(torch.ones(3, 4), torch.ones(5)), "embedding sizes differ"),
    ],
)
def test_impersonation_bad_input(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------------------------------------------------
# 1:N protection success rate
# ----------------------------------------------------------------------------------------------------------


def _reference_psr(query: np.ndarray, gallery: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """The published procedure, literally: per query, the list of impostor cosines sorted descending; success
    at top-k when the genuine cosine is <= the k-th entry."""
    n = len(query)
    hits = {k: 0 for k in ks}
    for i in range(n):
        q = query[i] / np.linalg.norm(query[i])
        cos = [float(q @ (g / np.linalg.norm(g))) for g in gallery]
        genuine = cos[i]
        impostors = sorted((c for j, c in enumerate(cos) if j != i), reverse=True)
        for k in ks:
            hits[k] += genuine <= impostors[k - 1]
    return {f"top{k}": hits[k] / n for k in ks}


@pytest.mark.parametrize(("n", "m", "d"), [(40, 40, 8), (25, 60, 4), (3, 7, 2)])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_protection_rank_matches_brute_force(n: int, m: int, d: int, chunk_size: int | None) -> None:
    g = torch.Generator().manual_seed(n * 100 + m)
    gallery = torch.randn(m, d, generator=g, dtype=torch.float64)
    noise = 1.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    query = gallery[:n] + noise  # genuine item usually, but not always, the best
    ks = (1, 2, 5) if m > 5 else (1, 2)
    ours = protection_rank_success_rate(query, gallery, ks=ks, chunk_size=chunk_size)
    expected = _reference_psr(query.numpy(), gallery.numpy(), ks)
    assert ours == pytest.approx(expected, abs=0)
    assert 0 < ours["top1"] < 1  # the cases exercise both outcomes


def test_protection_rank_is_one_minus_rank_k_without_ties() -> None:
    g = torch.Generator().manual_seed(5)
    gallery = torch.randn(50, 16, generator=g)
    query = gallery[:30] + 0.9 * torch.randn(30, 16, generator=g)
    psr = protection_rank_success_rate(query, gallery, ks=(1, 5, 10))
    rank = retrieval_rank_k(query, torch.arange(30), gallery, torch.arange(50), ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert psr[f"top{k}"] == pytest.approx(1 - rank[f"rank{k}"], abs=1e-15)


def test_protection_rank_ties_count_as_protected() -> None:
    """Hand-built scores with exact ties (embeddings on the unit circle, exactly representable cosines)."""
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # query 0: genuine row 0 -> 1; impostors (rows 1, 2, 3) 0, 1, -1: one tie -> protected at top-1 only
    # query 1: genuine row 1 -> 1; impostors 0, 0, 0 -> never protected
    # query 2: genuine row 2 -> 0; impostors 0, -1, 0: two ties -> protected at top-1 and top-2
    counts = impostors_at_or_above_genuine(query, e)
    assert counts.tolist() == [1, 0, 2]
    assert protection_rank_success_rate(query, e, ks=(1, 2, 3)) == {"top1": 2 / 3, "top2": 1 / 3, "top3": 0.0}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: protection_rank_success_rate(torch.ones(4, 2), torch.ones(3, 2)), "M >= N"),
        (lambda: protection_rank_success_rate(torch.randn(3, 2), torch.randn(3, 2)), "k=5 needs at least 5"),
        (lambda: protection_rank_success_rate(torch.randn(3, 2), torch.randn(3, 2), ks=()), "ks must be"),
        (lambda: protection_rank_success_rate(torch.randn(3, 2), torch.randn(3, 2), ks=(0,)), "ks must be"),
        (lambda: protection_rank_success_rate(torch.randn(2, 2), torch.randn(2, 3), ks=(1,)), "sizes differ"),
        (lambda: protection_rank_success_rate(torch.randn(2, 2), torch.randn(4, 2), (1,), 0), "chunk_size"),
        (lambda: impostors_at_or_above_genuine(torch.randn(1, 2), torch.randn(1, 2)), "has no impostor"),
        (lambda: impostors_at_or_above_genuine(torch.zeros(2, 2), torch.randn(3, 2)), "all-zero row"),
    ],
)
def test_protection_rank_bad_input(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()
