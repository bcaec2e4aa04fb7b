"""Identity metrics vs brute-force numpy references (LFW 10-fold protocol, full-sort ranking) and sklearn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from src.metrics import (
    EmbeddingCollector,
    cosine_similarity_matrix,
    mean_average_precision,
    retrieval_rank_k,
    verification_accuracy,
    verification_pairs,
)

# ----------------------------------------------------------------------------------------------------------
# Independent references (deliberately naive)
# ----------------------------------------------------------------------------------------------------------


def _reference_lfw(
    scores: np.ndarray, same: np.ndarray, folds: list[np.ndarray]
) -> tuple[float, float, list[float], list[float]]:
    """Loop folds; loop every candidate threshold (-inf, midpoints of sorted unique training scores, +inf)
    in ascending order; keep the first best."""
    n = len(scores)
    accs, thresholds = [], []
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        best_t, best_acc = None, -1.0
        uniq = sorted(set(scores[train].tolist()))
        candidates = [-np.inf] + [(lo + hi) / 2 for lo, hi in itertools.pairwise(uniq)] + [np.inf]
        for t in candidates:
            acc = np.mean((scores[train] >= t) == same[train])
            if acc > best_acc:
                best_t, best_acc = t, acc
        thresholds.append(best_t)
        accs.append(float(np.mean((scores[test] >= best_t) == same[test])))
    return float(np.mean(accs)), float(np.std(accs)), thresholds, accs


def _reference_ranking(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gallery order per probe: full stable sort by descending cosine (ties: lower gallery index first)."""
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    scores = p @ g.T
    return np.stack([np.argsort(-row, kind="stable") for row in scores])


def _reference_rank_k(p, pl, g, gl, ks) -> dict[str, float]:  # type: ignore[no-untyped-def]
    order = _reference_ranking(p, g)
    out = {}
    for k in ks:
        hits = [bool((gl[order[i, :k]] == pl[i]).any()) for i in range(len(p))]
        out[f"rank{k}"] = float(np.mean(hits))
    return out


def _reference_map(p, pl, g, gl) -> float:  # type: ignore[no-untyped-def]
    order = _reference_ranking(p, g)
    aps = []
    for i in range(len(p)):
        rel = gl[order[i]] == pl[i]
        if not rel.any():
            continue
        precisions = [rel[: j + 1].sum() / (j + 1) for j in range(len(rel)) if rel[j]]
        aps.append(np.mean(precisions))
    return float(np.mean(aps))


# ----------------------------------------------------------------------------------------------------------
# verification_accuracy
# ----------------------------------------------------------------------------------------------------------


def _scores(n: int, seed: int, separation: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping genuine/impostor scores, rounded to 2 decimals so that ties occur."""
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.5
    scores = np.round(rng.normal(size=n) + separation * same, 2)
    return scores, same


@pytest.mark.parametrize(("n", "seed"), [(600, 0), (203, 1), (6000, 2)])
def test_verification_accuracy_matches_bruteforce(n: int, seed: int) -> None:
    scores, same = _scores(n, seed)
    folds = np.array_split(np.arange(n), 10)
    if n > 1000:  # the naive reference is O(n^2); check a subset of its work on the big case
        scores, same, folds = scores[:1000], same[:1000], np.array_split(np.arange(1000), 10)
    mean, std, thresholds, accs = _reference_lfw(scores, same, folds)
    out = verification_accuracy(torch.tensor(scores), torch.tensor(same))
    assert out["mean"] == pytest.approx(mean, abs=1e-12)
    assert out["std"] == pytest.approx(std, abs=1e-12)
    np.testing.assert_array_equal(out["thresholds"].numpy(), thresholds)
    np.testing.assert_allclose(out["fold_accuracies"].numpy(), accs, rtol=0, atol=1e-12)


def test_verification_accuracy_with_fold_ids_and_float32() -> None:
    scores, same = _scores(300, seed=3)
    rng = np.random.default_rng(4)
    fold_ids = rng.permutation(np.arange(300) % 5) * 7 + 100  # arbitrary integer ids, interleaved
    folds = [np.flatnonzero(fold_ids == f) for f in np.unique(fold_ids)]
    mean, _, thresholds, accs = _reference_lfw(scores.astype(np.float32).astype(np.float64), same, folds)
    out = verification_accuracy(
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(same).long(),  # 0/1 integers are accepted
        num_folds=5,
        fold_ids=torch.tensor(fold_ids),
    )
    assert out["mean"] == pytest.approx(mean, abs=1e-12)
    np.testing.assert_array_equal(out["thresholds"].numpy(), thresholds)
    np.testing.assert_allclose(out["fold_accuracies"].numpy(), accs, atol=1e-12)


def test_verification_accuracy_perfect_and_random() -> None:
    g = torch.Generator().manual_seed(0)
    same = torch.rand(1000, generator=g) < 0.5
    separated = torch.where(
        same, 0.6 + 0.4 * torch.rand(1000, generator=g), 0.4 * torch.rand(1000, generator=g)
    )
    out = verification_accuracy(separated, same)
    assert out["mean"] == 1.0 and out["std"] == 0.0
    assert ((out["thresholds"] > 0.4) & (out["thresholds"] < 0.6)).all()

    noise = torch.rand(6000, generator=g)
    out = verification_accuracy(noise, torch.arange(6000) % 2 == 0)
    assert abs(out["mean"] - 0.5) < 0.04


def test_verification_accuracy_all_impostors_picks_inf() -> None:
    """A training set of impostors only is best served by 'all different' (threshold +inf)."""
    scores = torch.linspace(0, 1, 20)
    out = verification_accuracy(scores, torch.zeros(20, dtype=torch.bool), num_folds=2)
    assert torch.isinf(out["thresholds"]).all() and out["mean"] == 1.0


def test_verification_accuracy_errors() -> None:
    scores = torch.rand(20)
    same = torch.rand(20) < 0.5
    name = "verification_accuracy"
    with pytest.raises(ValueError, match=f"{name}: `is_same` must have the shape of `scores`"):
        verification_accuracy(scores, same[:10])
    with pytest.raises(ValueError, match=f"{name}: `scores` contains non-finite values \\(1 NaN"):
        verification_accuracy(torch.where(torch.arange(20) == 3, float("nan"), scores), same)
    with pytest.raises(ValueError, match=f"{name}: `is_same` must be boolean"):
        verification_accuracy(scores, torch.full((20,), 2))
    with pytest.raises(ValueError, match=f"{name}: 5 pairs cannot be split into num_folds=10"):
        verification_accuracy(scores[:5], same[:5])
    with pytest.raises(ValueError, match=f"{name}: num_folds must be an integer >= 2"):
        verification_accuracy(scores, same, num_folds=1)
    with pytest.raises(ValueError, match=f"{name}: fold_ids holds 2 distinct folds but num_folds=10"):
        verification_accuracy(scores, same, fold_ids=torch.arange(20) % 2)
    with pytest.raises(ValueError, match=f"{name}: `scores` must be a non-empty 1-D tensor"):
        verification_accuracy(torch.empty(0), torch.empty(0, dtype=torch.bool))


# ----------------------------------------------------------------------------------------------------------
# retrieval_rank_k / mean_average_precision / cosine_similarity_matrix
# ----------------------------------------------------------------------------------------------------------


def _random_embeddings(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(15, 32))
    gl = rng.integers(0, 15, size=120)
    pl = rng.integers(0, 18, size=37)  # labels 15..17 have no gallery mate
    g = centres[gl] + 1.5 * rng.normal(size=(120, 32))
    p = np.concatenate([centres, rng.normal(size=(3, 32))])[pl] + 1.5 * rng.normal(size=(37, 32))
    return p, pl, g, gl


def _tied_embeddings(seed: int) -> tuple[np.ndarray, ...]:
    """±1 vectors in 4-D: 16 distinct directions, so many exact score ties (all products exact in float32)."""
    rng = np.random.default_rng(seed)
    g = rng.choice([-1.0, 1.0], size=(60, 4))
    p = rng.choice([-1.0, 1.0], size=(25, 4))
    return p, rng.integers(0, 6, size=25), g, rng.integers(0, 6, size=60)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 36, 4096])
def test_rank_k_matches_full_sort(chunk_size: int) -> None:
    ks = (1, 2, 5, 10)
    p, pl, g, gl = _random_embeddings(seed=chunk_size)
    ref = _reference_rank_k(p, pl, g, gl, ks)
    out = retrieval_rank_k(
        torch.tensor(p), torch.tensor(pl), torch.tensor(g), torch.tensor(gl), ks=ks, chunk_size=chunk_size
    )
    assert out == pytest.approx(ref, abs=1e-12)
    assert 0 < out["rank1"] < out["rank10"] < 1  # a non-trivial case

    p, pl, g, gl = _tied_embeddings(seed=chunk_size)
    ref = _reference_rank_k(p, pl, g, gl, ks)
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in {"p": p, "g": g}.items()}
    out = retrieval_rank_k(t["p"], torch.tensor(pl), t["g"], torch.tensor(gl), ks=ks, chunk_size=chunk_size)
    assert out == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
def test_map_matches_full_sort(chunk_size: int) -> None:
    for p, pl, g, gl in (_random_embeddings(seed=10), _tied_embeddings(seed=11)):
        ref = _reference_map(p, pl, g, gl)
        out = mean_average_precision(
            torch.tensor(p), torch.tensor(pl), torch.tensor(g), torch.tensor(gl), chunk_size=chunk_size
        )
        assert out == pytest.approx(ref, abs=1e-12)


def _exact_tied_embeddings(seed: int, n_probe: int, n_gallery: int, n_labels: int) -> tuple[np.ndarray, ...]:
    """Directions whose normalised entries are 0, ±0.5 or ±1 (±1 vectors and ±2·one-hots in 4-D): every
    cosine is exact in float32 and float64, and exact ties between matching and non-matching items abound."""
    rng = np.random.default_rng(seed)
    dirs = np.concatenate(
        [np.array(list(itertools.product([-1.0, 1.0], repeat=4))), 2 * np.eye(4), -2 * np.eye(4)]
    )
    p = dirs[rng.integers(0, len(dirs), n_probe)]
    g = dirs[rng.integers(0, len(dirs), n_gallery)]
    return p, rng.integers(0, n_labels + 1, n_probe), g, rng.integers(0, n_labels, n_gallery)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("chunk_size", "n_labels"), [(1, 3), (7, 3), (None, 3), (5, 40), (None, 40)])
def test_retrieval_exact_ties_many_positives(
    chunk_size: int | None, n_labels: int, dtype: torch.dtype
) -> None:
    """Many same-label items per probe (up to ~100) and exact ties everywhere, incl. the gallery-index
    tie-break between matching and non-matching items; one label value has no gallery item."""
    p, pl, g, gl = _exact_tied_embeddings(n_labels, n_probe=41, n_gallery=300, n_labels=n_labels)
    args = (torch.tensor(p, dtype=dtype), torch.tensor(pl), torch.tensor(g, dtype=dtype), torch.tensor(gl))
    ks = (1, 2, 5, 20)
    out = retrieval_rank_k(*args, ks=ks, chunk_size=chunk_size)
    assert out == pytest.approx(_reference_rank_k(p, pl, g, gl, ks), abs=1e-12)
    assert mean_average_precision(*args, chunk_size=chunk_size) == pytest.approx(
        _reference_map(p, pl, g, gl), abs=1e-12
    )


@pytest.mark.parametrize("chunk_size", [2, None])
def test_retrieval_one_item_per_identity_gallery(chunk_size: int | None) -> None:
    """At most one same-label gallery item per probe (the sort-free mAP path), with and without exact ties."""
    rng = np.random.default_rng(30)
    g = rng.normal(size=(90, 8))
    gl = rng.permutation(90)  # unique gallery labels
    p = rng.normal(size=(25, 8))
    pl = rng.integers(0, 100, size=25)  # some labels have no gallery item
    tp, _, tg, _ = _exact_tied_embeddings(31, n_probe=25, n_gallery=90, n_labels=3)
    for probe, gallery in ((p, g), (tp, tg)):
        args = (torch.tensor(probe), torch.tensor(pl), torch.tensor(gallery), torch.tensor(gl))
        assert retrieval_rank_k(*args, ks=(1, 3), chunk_size=chunk_size) == pytest.approx(
            _reference_rank_k(probe, pl, gallery, gl, (1, 3)), abs=1e-12
        )
        assert mean_average_precision(*args, chunk_size=chunk_size) == pytest.approx(
            _reference_map(probe, pl, gallery, gl), abs=1e-12
        )


def test_retrieval_automatic_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """chunk_size=None sizes chunks from RETRIEVAL_CHUNK_BYTES (671 probes at G = 100k in float32, i.e.
    2 × 671 × 100k × 4 bytes <= 512 MiB); a small budget gives many chunks and the same result."""
    from src.metrics import retrieval as identity

    assert identity._chunk_rows(None, 10_000, 100_000, 4, 0) == 671
    assert 2 * 671 * 100_000 * 4 <= identity.RETRIEVAL_CHUNK_BYTES < 2 * 672 * 100_000 * 4
    assert identity._chunk_rows(None, 10_000, 100_000, 4, 10) == 670  # + the same-label index tables
    assert identity._chunk_rows(16, 10_000, 100_000, 4, 10) == 16
    p, pl, g, gl = _random_embeddings(seed=21)
    args = (torch.tensor(p), torch.tensor(pl), torch.tensor(g), torch.tensor(gl))
    full = (retrieval_rank_k(*args, ks=(1, 5)), mean_average_precision(*args))
    monkeypatch.setattr(identity, "RETRIEVAL_CHUNK_BYTES", 3 * 120 * 16)  # 3 probes per chunk (float64)
    assert identity._chunk_rows(None, 37, 120, 8, 0) == 3
    assert (retrieval_rank_k(*args, ks=(1, 5)), mean_average_precision(*args)) == full
    assert full == (
        pytest.approx(_reference_rank_k(p, pl, g, gl, (1, 5))),
        pytest.approx(_reference_map(p, pl, g, gl)),
    )


def test_rank_k_hand_built() -> None:
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    g_lab = torch.tensor([7, 8, 9, 9])
    probes = torch.tensor([[2.0, 0.1], [0.0, 3.0], [1.0, 0.0]])
    p_lab = torch.tensor([9, 8, 9])
    # probe 0: ranking 0 (lab 7), 2 (lab 9) -> rank 2; probe 1: rank 1;
    # probe 2: gallery 0 and 2 tie at 1.0, index 0 (lab 7) first -> rank 2.
    out = retrieval_rank_k(probes, p_lab, gallery, g_lab, ks=(1, 2, 3))
    assert out == {"rank1": pytest.approx(1 / 3), "rank2": 1.0, "rank3": 1.0}


def test_cosine_similarity_matrix_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 16)), rng.normal(size=(5, 16))
    ours = cosine_similarity_matrix(torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(ours.numpy(), cosine_similarity(a, b), rtol=0, atol=1e-12)


def test_retrieval_errors() -> None:
    p, pl = torch.randn(4, 8), torch.arange(4)
    g, gl = torch.randn(6, 8), torch.arange(6)
    name = "retrieval_rank_k"
    with pytest.raises(ValueError, match=f"{name}: embedding sizes differ"):
        retrieval_rank_k(p, pl, g[:, :4], gl)
    with pytest.raises(ValueError, match=f"{name}: `gallery_labels` must have shape \\[6\\]"):
        retrieval_rank_k(p, pl, g, gl[:5])
    with pytest.raises(ValueError, match=f"{name}: `probe_emb` has 1 all-zero row"):
        retrieval_rank_k(torch.cat([p[:3], torch.zeros(1, 8)]), pl, g, gl)
    with pytest.raises(ValueError, match=f"{name}: `gallery_emb` contains non-finite values"):
        retrieval_rank_k(p, pl, torch.full((6, 8), float("inf")), gl)
    with pytest.raises(ValueError, match=f"{name}: ks must be a non-empty sequence of positive integers"):
        retrieval_rank_k(p, pl, g, gl, ks=(0,))
    with pytest.raises(ValueError, match=f"{name}: chunk_size must be a positive integer"):
        retrieval_rank_k(p, pl, g, gl, chunk_size=0)
    with pytest.raises(ValueError, match=f"{name}: `probe_labels` must be an integer tensor"):
        retrieval_rank_k(p, pl.float(), g, gl)
    with pytest.raises(ValueError, match="mean_average_precision: no probe has a same-label gallery item"):
        mean_average_precision(p, pl + 100, g, gl)
    with pytest.raises(ValueError, match="cosine_similarity_matrix: `a` must have shape \\[N, D\\]"):
        cosine_similarity_matrix(torch.randn(3), g)


# ----------------------------------------------------------------------------------------------------------
# verification_pairs
# ----------------------------------------------------------------------------------------------------------


def test_verification_pairs_balanced_valid_and_deterministic() -> None:
    labels = torch.tensor([3, 3, 3, 5, 9, 9, 1, 1, 1, 1, 4])  # 5 and 4 are singletons
    a, b, same = verification_pairs(labels, 400, torch.Generator().manual_seed(0))
    assert a.shape == b.shape == same.shape == (400,)
    assert same.dtype == torch.bool and int(same.sum()) == 200
    np.testing.assert_array_equal((labels[a] == labels[b]).numpy(), same.numpy())
    assert (a != b).all()
    assert same[:200].any() and (~same[:200]).any()  # shuffled: contiguous folds mix both kinds
    # every index can appear: singletons in impostor pairs, each member of a group in genuine pairs
    assert set(torch.cat([a, b]).tolist()) == set(range(len(labels)))
    a2, b2, same2 = verification_pairs(labels, 400, torch.Generator().manual_seed(0))
    assert torch.equal(a, a2) and torch.equal(b, b2) and torch.equal(same, same2)
    a3, _, _ = verification_pairs(labels, 400, torch.Generator().manual_seed(1))
    assert not torch.equal(a, a3)


def test_verification_pairs_errors() -> None:
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="verification_pairs: num_pairs must be a positive even integer"):
        verification_pairs(torch.tensor([0, 0, 1]), 5, g)
    with pytest.raises(ValueError, match="verification_pairs: impostor pairs need at least 2 distinct"):
        verification_pairs(torch.tensor([2, 2, 2]), 4, g)
    with pytest.raises(ValueError, match="verification_pairs: genuine pairs need a label with at least 2"):
        verification_pairs(torch.tensor([0, 1, 2]), 4, g)
    with pytest.raises(ValueError, match="verification_pairs: `generator` must be a torch.Generator"):
        verification_pairs(torch.tensor([0, 0, 1]), 4, 0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# EmbeddingCollector (single process; DDP in test_metrics_ddp.py)
# ----------------------------------------------------------------------------------------------------------


def test_embedding_collector_single_process() -> None:
    collector = EmbeddingCollector()
    e1, e2 = torch.randn(3, 8), torch.randn(5, 8, dtype=torch.float64)
    collector.update(e1, torch.tensor([0, 1, 2]))
    collector.update(e2, torch.tensor([3, 4, 5, 6, 7]))
    emb, labels = collector.compute()
    torch.testing.assert_close(emb, torch.cat([e1, e2.float()]))
    assert emb.dtype == torch.float32 and labels.dtype == torch.long
    assert labels.tolist() == list(range(8))
    with pytest.raises(ValueError, match="EmbeddingCollector: embedding size changed from D=8 to D=4"):
        collector.update(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="EmbeddingCollector: `labels` must have shape \\[2\\]"):
        collector.update(torch.randn(2, 8), torch.tensor([0]))
    collector.reset()
    with (
        pytest.warns(UserWarning, match="called before the ``update``"),
        pytest.raises(ValueError, match="EmbeddingCollector: compute\\(\\) called on an empty state"),
    ):
        collector.compute()
