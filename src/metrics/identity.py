"""Identity metrics on face embeddings: verification accuracy (LFW 10-fold protocol), retrieval rank-k / mAP,
balanced verification pairs, and a DDP-safe embedding collector.

Conventions
-----------
* Similarity is the cosine similarity of L2-normalised embeddings; higher means "more likely the same".
* A pair is predicted *same* when ``score >= threshold``.
* Ranking ties are broken by gallery index (lower index first), i.e. the order of a *stable* descending
  sort, so results never depend on the ``torch.topk`` / sort kernel or on the chunk size.
* All functions raise :class:`ValueError` naming the function for bad input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from src.metrics._checks import check_embeddings, check_finite, check_labels, check_tensor

__all__ = [
    "EmbeddingCollector",
    "cosine_similarity_matrix",
    "mean_average_precision",
    "retrieval_rank_k",
    "verification_accuracy",
    "verification_pairs",
]


def _l2_normalise(name: str, arg: str, x: Tensor) -> Tensor:
    """L2-normalise rows, refusing zero-norm rows (their cosine similarity is undefined)."""
    norms = x.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError(
            f"{name}: `{arg}` has {int((norms == 0).sum())} all-zero row(s); cosine is undefined"
        )
    return x / norms.unsqueeze(1)


def cosine_similarity_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of every row of ``a`` ``[N, D]`` with every row of ``b`` ``[M, D]`` → ``[N, M]``."""
    name = "cosine_similarity_matrix"
    a = check_embeddings(name, "a", a)
    b = check_embeddings(name, "b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name}: embedding sizes differ: a has D={a.shape[1]}, b has D={b.shape[1]}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return (
        _l2_normalise(name, "a", a.to(dtype)) @ _l2_normalise(name, "b", b.to(device=a.device, dtype=dtype)).T
    )


# ----------------------------------------------------------------------------------------------------
# Verification (LFW protocol)
# ----------------------------------------------------------------------------------------------------


def _best_threshold(scores: Tensor, is_same: Tensor) -> float:
    """Threshold maximising accuracy of ``score >= t`` on (scores, is_same); exact over all splits.

    Candidates (ascending): ``-inf`` (all "same"), the midpoint of every pair of consecutive unique scores,
    ``+inf`` (all "different"). These realise every distinct split of the training scores — exactly the
    splits that thresholds at the unique scores give, so the best training accuracy is the same — but sit in
    the gaps, so a held-out score just below the lowest genuine training score is not misclassified
    (with thresholds at the unique scores, perfectly separated data scored 0.998 instead of 1.0).
    Ties in training accuracy go to the smallest candidate. Vectorised with sorted counts: O(n log n).
    """
    uniq = torch.unique(scores)  # sorted ascending
    inf = torch.tensor([torch.inf], dtype=uniq.dtype)
    candidates = torch.cat([-inf, (uniq[:-1] + uniq[1:]) / 2, inf])
    pos = torch.sort(scores[is_same]).values
    neg = torch.sort(scores[~is_same]).values
    # For threshold t: correct = #pos with score >= t + #neg with score < t.
    pos_below = torch.searchsorted(pos, candidates, side="left")
    neg_below = torch.searchsorted(neg, candidates, side="left")
    correct = (pos.numel() - pos_below) + neg_below
    return float(candidates[int(torch.argmax(correct))])  # argmax: first (smallest) among the maxima


def _fold_index(name: str, n: int, num_folds: int, fold_ids: Tensor | None) -> Tensor:
    """Fold number (0..num_folds-1) of each of the n pairs."""
    if not isinstance(num_folds, int) or num_folds < 2:
        raise ValueError(f"{name}: num_folds must be an integer >= 2, got {num_folds!r}")
    if fold_ids is None:
        if n < num_folds:
            raise ValueError(f"{name}: {n} pairs cannot be split into num_folds={num_folds} folds")
        # Contiguous folds in the given order, sized as numpy.array_split (first n % k folds get one more).
        folds = torch.empty(n, dtype=torch.long)
        for f, chunk in enumerate(torch.tensor_split(torch.arange(n), num_folds)):
            folds[chunk] = f
        return folds
    fold_ids = check_tensor(name, "fold_ids", fold_ids)
    fold_ids = check_labels(name, "fold_ids", fold_ids, n).cpu()
    uniq, folds = torch.unique(fold_ids, return_inverse=True)
    if uniq.numel() != num_folds:
        raise ValueError(
            f"{name}: fold_ids holds {uniq.numel()} distinct folds but num_folds={num_folds}; "
            "pass the matching num_folds"
        )
    return folds


def verification_accuracy(
    scores: Tensor,
    is_same: Tensor,
    num_folds: int = 10,
    fold_ids: Tensor | None = None,
) -> dict[str, object]:
    """Verification accuracy with the LFW k-fold protocol (threshold chosen on the other k-1 folds).

    For each fold, the threshold is the candidate that maximises the training (other folds) accuracy of the
    rule ``score >= threshold``; candidates are ``-inf``, the midpoints between consecutive unique training
    scores and ``+inf`` — an exhaustive search over every distinct split of the training scores, no grid.
    Ties go to the smallest threshold. The accuracy of that threshold on the held-out fold is the fold
    accuracy. Scores are compared in float64 (float32 scores have float64 midpoints strictly between them).

    Folds: by default contiguous folds in the given order (fold sizes as ``numpy.array_split``; LFW's
    ``pairs.txt`` is ordered that way, 10 × 600 pairs). With ``fold_ids`` (any integers, one per pair) the
    folds are its distinct values and ``num_folds`` must equal their number.

    Returns ``{"mean": float, "std": float, "thresholds": Tensor[k], "fold_accuracies": Tensor[k]}`` where
    ``std`` is the population standard deviation (ddof=0) over folds, as LFW tables report it.
    """
    name = "verification_accuracy"
    scores = check_tensor(name, "scores", scores)
    is_same = check_tensor(name, "is_same", is_same)
    if scores.ndim != 1 or scores.numel() == 0:
        raise ValueError(f"{name}: `scores` must be a non-empty 1-D tensor, got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"{name}: `scores` must be floating point, got {scores.dtype}")
    check_finite(name, "scores", scores)
    if is_same.shape != scores.shape:
        raise ValueError(
            f"{name}: `is_same` must have the shape of `scores` {tuple(scores.shape)}, "
            f"got {tuple(is_same.shape)}"
        )
    if is_same.dtype != torch.bool:
        if is_same.is_floating_point() or not bool(((is_same == 0) | (is_same == 1)).all()):
            raise ValueError(f"{name}: `is_same` must be boolean (or integer 0/1), got {is_same.dtype}")
        is_same = is_same.bool()

    s = scores.detach().to("cpu", torch.float64)
    y = is_same.detach().cpu()
    folds = _fold_index(name, s.numel(), num_folds, fold_ids)

    thresholds = torch.empty(num_folds, dtype=torch.float64)
    accuracies = torch.empty(num_folds, dtype=torch.float64)
    for f in range(num_folds):
        test = folds == f
        train = ~test  # never empty: there are at least 2 non-empty folds
        t = _best_threshold(s[train], y[train])
        thresholds[f] = t
        accuracies[f] = ((s[test] >= t) == y[test]).double().mean()
    return {
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std(correction=0)),
        "thresholds": thresholds,
        "fold_accuracies": accuracies,
    }


# ----------------------------------------------------------------------------------------------------
# Retrieval (identification)
# ----------------------------------------------------------------------------------------------------


def _check_retrieval_inputs(
    name: str,
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    chunk_size: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Validate, move to the probe device, L2-normalise; returns (probe, p_labels, gallery, g_labels)."""
    probe_emb = check_embeddings(name, "probe_emb", probe_emb)
    gallery_emb = check_embeddings(name, "gallery_emb", gallery_emb)
    if probe_emb.shape[1] != gallery_emb.shape[1]:
        raise ValueError(
            f"{name}: embedding sizes differ: probes have D={probe_emb.shape[1]}, "
            f"gallery D={gallery_emb.shape[1]}"
        )
    probe_labels = check_labels(name, "probe_labels", probe_labels, probe_emb.shape[0])
    gallery_labels = check_labels(name, "gallery_labels", gallery_labels, gallery_emb.shape[0])
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"{name}: chunk_size must be a positive integer, got {chunk_size!r}")
    device = probe_emb.device
    dtype = torch.promote_types(probe_emb.dtype, gallery_emb.dtype)
    probe = _l2_normalise(name, "probe_emb", probe_emb.detach().to(dtype))
    gallery = _l2_normalise(name, "gallery_emb", gallery_emb.detach().to(device, dtype))
    return probe, probe_labels.to(device), gallery, gallery_labels.to(device)


def _first_match_position(scores: Tensor, same: Tensor) -> Tensor:
    """0-based position of the first same-label gallery item in the ranking (score desc, index asc).

    ``scores``/``same`` are ``[P, G]``; probes without any same-label item get position ``G`` (never a hit).
    """
    g = scores.shape[1]
    index = torch.arange(g, device=scores.device)
    best = torch.where(same, scores, torch.full_like(scores, -torch.inf)).amax(dim=1, keepdim=True)
    # Lowest gallery index among the same-label items attaining the best score.
    first = torch.where(same & (scores == best), index, g).amin(dim=1, keepdim=True)
    ahead = (scores > best).sum(dim=1) + ((scores == best) & (index < first)).sum(dim=1)
    return torch.where(same.any(dim=1), ahead, torch.full_like(ahead, g))


def retrieval_rank_k(
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = (1, 5),
    chunk_size: int = 4096,
) -> dict[str, float]:
    """Closed-set identification rank-k: share of probes whose top-k gallery items contain a same-label item.

    Cosine similarity on L2-normalised embeddings; ties are ranked by gallery index (lower first), so the
    result is deterministic and independent of ``chunk_size``. Instead of ``torch.topk`` (whose tie order is
    unspecified) the position of the first same-label item is counted directly (#items scoring higher plus
    #equal-scoring items with a lower index), which is exact for every k at once. Probes are processed
    ``chunk_size`` at a time, so memory is ``O(chunk_size × G)``.
    Probes with no same-label gallery item count as misses (the denominator is all probes). A probe that
    also appears in the gallery matches itself: remove it beforehand for leave-one-out protocols.

    Returns ``{"rank{k}": float}`` for each ``k`` in ``ks``.
    """
    name = "retrieval_rank_k"
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise ValueError(f"{name}: ks must be a non-empty sequence of positive integers, got {ks!r}")
    probe, p_lab, gallery, g_lab = _check_retrieval_inputs(
        name, probe_emb, probe_labels, gallery_emb, gallery_labels, chunk_size
    )
    positions = []
    for start in range(0, probe.shape[0], chunk_size):
        scores = probe[start : start + chunk_size] @ gallery.T
        same = p_lab[start : start + chunk_size, None] == g_lab[None, :]
        positions.append(_first_match_position(scores, same))
    pos = torch.cat(positions)
    return {f"rank{k}": float((pos < k).double().mean()) for k in ks}


def mean_average_precision(
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    chunk_size: int = 1024,
) -> float:
    """Mean over probes of the average precision of the gallery ranking (score desc, ties by index asc).

    AP of one probe = mean over its same-label gallery items of the precision at that item's position.
    Probes without any same-label gallery item are excluded (AP undefined); if none remain, ValueError.
    Memory is ``O(chunk_size × G)`` (one stable sort per chunk).
    """
    name = "mean_average_precision"
    probe, p_lab, gallery, g_lab = _check_retrieval_inputs(
        name, probe_emb, probe_labels, gallery_emb, gallery_labels, chunk_size
    )
    ap_sum = torch.zeros((), dtype=torch.float64, device=probe.device)
    n_valid = 0
    ranks = torch.arange(1, gallery.shape[0] + 1, device=probe.device, dtype=torch.float64)
    for start in range(0, probe.shape[0], chunk_size):
        scores = probe[start : start + chunk_size] @ gallery.T
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
        same = (p_lab[start : start + chunk_size, None] == g_lab[order]).double()
        n_pos = same.sum(dim=1)
        precision = same.cumsum(dim=1) / ranks
        valid = n_pos > 0
        ap_sum += ((precision * same).sum(dim=1)[valid] / n_pos[valid]).sum()
        n_valid += int(valid.sum())
    if n_valid == 0:
        raise ValueError(f"{name}: no probe has a same-label gallery item; mAP is undefined")
    return float(ap_sum / n_valid)


# ----------------------------------------------------------------------------------------------------
# Verification pairs
# ----------------------------------------------------------------------------------------------------


def _uniform_below(high: Tensor, generator: torch.Generator) -> Tensor:
    """One uniform integer in ``[0, high_i)`` per element of ``high`` (int64, CPU)."""
    u = torch.rand(high.shape, generator=generator, dtype=torch.float64)
    return torch.minimum((u * high).long(), high - 1)


def verification_pairs(
    labels: Tensor, num_pairs: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample ``num_pairs`` verification pairs, half genuine and half impostor, deterministically.

    Genuine pair: ``a`` uniform over samples whose label occurs at least twice, ``b`` uniform over the *other*
    samples with that label. Impostor pair: ``a`` uniform over all samples, ``b`` uniform over samples with a
    different label. Pairs are drawn with replacement (a pair may repeat) and then shuffled with the same
    generator, so contiguous folds (see :func:`verification_accuracy`) mix genuine and impostor pairs.
    Returns CPU tensors ``(idx_a: long[P], idx_b: long[P], is_same: bool[P])``; ``num_pairs`` must be even.
    The same labels, ``num_pairs`` and generator state give the same pairs.
    """
    name = "verification_pairs"
    labels = check_tensor(name, "labels", labels)
    if labels.ndim != 1:
        raise ValueError(f"{name}: `labels` must be 1-D, got shape {tuple(labels.shape)}")
    labels = check_labels(name, "labels", labels, labels.shape[0]).cpu()
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"{name}: `generator` must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(num_pairs, int) or num_pairs < 2 or num_pairs % 2:
        raise ValueError(f"{name}: num_pairs must be a positive even integer, got {num_pairs!r}")
    n = labels.numel()
    order = torch.argsort(labels, stable=True)  # sample indices grouped by label
    _, group, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    if counts.numel() < 2:
        raise ValueError(f"{name}: impostor pairs need at least 2 distinct labels, got {counts.numel()}")
    starts = torch.cumsum(counts, 0) - counts  # start of each label group in `order`
    pos_in_order = torch.empty(n, dtype=torch.long)
    pos_in_order[order] = torch.arange(n)
    half = num_pairs // 2

    eligible = torch.nonzero(counts[group] >= 2).flatten()
    if eligible.numel() == 0:
        raise ValueError(
            f"{name}: genuine pairs need a label with at least 2 samples; every label occurs once"
        )
    gen_a = eligible[_uniform_below(torch.full((half,), eligible.numel()), generator)]
    ga = group[gen_a]
    offset = _uniform_below(counts[ga] - 1, generator)  # among the other count-1 members of the group
    offset = offset + (offset >= pos_in_order[gen_a] - starts[ga]).long()  # skip `a` itself
    gen_b = order[starts[ga] + offset]

    imp_a = _uniform_below(torch.full((half,), n), generator)
    ia = group[imp_a]
    r = _uniform_below(n - counts[ia], generator)  # among samples outside a's group
    r = r + (r >= starts[ia]).long() * counts[ia]
    imp_b = order[r]

    idx_a = torch.cat([gen_a, imp_a])
    idx_b = torch.cat([gen_b, imp_b])
    is_same = torch.cat([torch.ones(half, dtype=torch.bool), torch.zeros(half, dtype=torch.bool)])
    perm = torch.randperm(num_pairs, generator=generator)
    return idx_a[perm], idx_b[perm], is_same[perm]


# ----------------------------------------------------------------------------------------------------
# Gather-style collector
# ----------------------------------------------------------------------------------------------------


class EmbeddingCollector(Metric):
    """Collects ``(embeddings, labels)`` over batches and, under DDP, over ranks (``dist_reduce_fx="cat"``).

    Gather-style identity metrics (rank-k, TAR@FAR, verification over all pairs) need every embedding at
    once; feed ``compute()``'s output to :func:`retrieval_rank_k` & co. Embeddings are stored detached as
    float32 so that all ranks gather tensors of one dtype; ranks may hold uneven numbers of samples, and a
    rank that saw no data at all is handled (torchmetrics alone would gather a mis-shaped placeholder).
    The gathered order is rank 0's samples, then rank 1's, ... (each in update order). Note that a
    ``DistributedSampler`` pads uneven datasets with duplicates; results-table evaluation runs on one device.

    ``compute()`` returns ``(embeddings: float32[N, D], labels: long[N])`` and raises :class:`ValueError`
    when nothing was collected.
    """

    is_differentiable = False
    full_state_update = False

    embeddings: list[Tensor] | Tensor
    labels: list[Tensor] | Tensor

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        """Append one batch: ``embeddings`` ``[B, D]`` (finite floats) and integer ``labels`` ``[B]``."""
        name = "EmbeddingCollector"
        embeddings = check_embeddings(name, "embeddings", embeddings)
        labels = check_labels(name, "labels", labels, embeddings.shape[0])
        if self.embeddings and self.embeddings[0].shape[1] != embeddings.shape[1]:
            raise ValueError(
                f"{name}: embedding size changed from D={self.embeddings[0].shape[1]} "
                f"to D={embeddings.shape[1]}"
            )
        self.embeddings.append(embeddings.detach().to(torch.float32))
        self.labels.append(labels.detach().to(torch.long))

    def _sync_dist(
        self, dist_sync_fn: object = gather_all_tensors, process_group: object | None = None
    ) -> None:
        """Give an empty rank correctly shaped/typed placeholders, then let torchmetrics gather.

        Every rank takes part in one extra all-reduce (the embedding size), so the collectives match.
        """
        if isinstance(self.embeddings, list):
            local = self.embeddings[0].shape[1] if self.embeddings else 0
            dim = torch.tensor([local], dtype=torch.long, device=self.device)
            dist.all_reduce(dim, op=dist.ReduceOp.MAX, group=process_group or self.process_group)
            if not self.embeddings:
                self.embeddings = [torch.zeros(0, int(dim), dtype=torch.float32, device=self.device)]
                self.labels = [torch.zeros(0, dtype=torch.long, device=self.device)]
        super()._sync_dist(dist_sync_fn, process_group=process_group)  # type: ignore[arg-type]

    def compute(self) -> tuple[Tensor, Tensor]:
        """All collected embeddings and labels (from every rank), concatenated."""
        emb = dim_zero_cat(self.embeddings) if isinstance(self.embeddings, list) and self.embeddings else None
        if isinstance(self.embeddings, Tensor):
            emb = self.embeddings
        if emb is None or emb.shape[0] == 0:
            raise ValueError(
                "EmbeddingCollector: compute() called on an empty state (no embeddings collected)"
            )
        labels = self.labels if isinstance(self.labels, Tensor) else dim_zero_cat(self.labels)
        return emb, labels
