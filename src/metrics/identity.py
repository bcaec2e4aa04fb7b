"""Identity metrics on face embeddings: verification (LFW 10-fold accuracy, ROC AUC, EER, TAR@FAR pooled and
10-fold), thresholds at a fixed FAR and the protection success rate, retrieval rank-k / mAP at 100k-gallery
scale, balanced verification pairs, and DDP-safe accumulators (embeddings, verification pairs, PSR).
The four PRO-Face settings and similarity statistics are in :mod:`src.metrics.identity_settings`.

Conventions
-----------
* Similarity is the cosine similarity of L2-normalised embeddings (or any score where higher means "more
  likely the same", e.g. the angular similarity of :mod:`src.metrics.identity_settings`).
* A pair is predicted *same* when ``score >= threshold``; verification scores are compared in float64.
* TAR@FAR is conservative, without interpolation: the threshold is the smallest one whose impostor
  false-accept rate is ``<= FAR`` (:func:`threshold_at_far`); a FAR finer than ``1 / #impostors`` gives NaN
  and ``far_resolved = False`` (:func:`verification_roc`).
* Standard deviations over folds are population ones (ddof=0), as LFW tables report them.
* Ranking ties are broken by gallery index (lower index first), i.e. the order of a *stable* descending
  sort, so results never depend on the ``torch.topk`` / sort kernel or on the chunk size.
* All functions raise :class:`ValueError` naming the function for bad input.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from src.metrics._checks import check_embeddings, check_finite, check_labels, check_tensor

__all__ = [
    "DEFAULT_FARS",
    "RETRIEVAL_CHUNK_BYTES",
    "EmbeddingCollector",
    "ProtectionSuccessRate",
    "VerificationMetrics",
    "cosine_similarity_matrix",
    "match_rate",
    "mean_average_precision",
    "protection_success_rate",
    "retrieval_rank_k",
    "tar_at_far_kfold",
    "threshold_at_far",
    "verification_accuracy",
    "verification_pairs",
    "verification_roc",
    "verification_summary",
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


def _stable_argsort(x: Tensor) -> Tensor:
    """Stable ascending argsort of a 1-D tensor; numpy's on CPU (≈30× faster than torch's stable sort)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.argsort(x.numpy(), kind="stable"))
    return torch.argsort(x, stable=True)


def _check_verification_inputs(name: str, scores: object, is_same: object) -> tuple[Tensor, Tensor]:
    """Validate a 1-D finite float ``scores`` and a matching boolean (or 0/1) ``is_same``.

    Returns CPU copies: scores as float64 (float32 scores have float64 midpoints strictly between them),
    ``is_same`` as bool.
    """
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
    return scores.detach().to("cpu", torch.float64), is_same.detach().cpu()


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
    s, y = _check_verification_inputs(name, scores, is_same)
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
# ROC, EER, TAR@FAR, thresholds at a fixed FAR, protection success rate
# ----------------------------------------------------------------------------------------------------

#: FARs at which TAR is reported by default. PRO-Face reports 1e-1, 1e-2, 1e-3; 1e-4 needs at least 10,000
#: impostor pairs (per training split in the k-fold variant), otherwise it comes back NaN (see below).
DEFAULT_FARS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)


def _check_fars(name: str, fars: Sequence[float]) -> tuple[float, ...]:
    """FARs as a tuple of floats in (0, 1]."""
    fars = tuple(fars)
    if not fars or any(
        isinstance(f, bool) or not isinstance(f, int | float) or not 0 < float(f) <= 1 for f in fars
    ):
        raise ValueError(f"{name}: fars must be a non-empty sequence of numbers in (0, 1], got {fars!r}")
    return tuple(float(f) for f in fars)


def _max_false_accepts(far: float, n_impostor: int) -> int:
    """Largest ``k`` with ``k / n_impostor <= far`` (the float comparison an ROC's FPR is tested with)."""
    k = min(math.floor(far * n_impostor), n_impostor)
    while k < n_impostor and (k + 1) / n_impostor <= far:
        k += 1
    while k > 0 and k / n_impostor > far:
        k -= 1
    return k


def _far_threshold(impostor_desc: Tensor, k: int) -> float:
    """Smallest float64 ``t`` with at most ``k`` impostor scores ``>= t`` (scores sorted descending).

    That is the next float64 above the ``(k+1)``-th highest impostor score (``-inf`` when ``k`` covers
    all of them): every threshold at or below that score accepts ``k + 1`` impostors.
    """
    if k >= impostor_desc.numel():
        return -math.inf
    return math.nextafter(float(impostor_desc[k]), math.inf)


def threshold_at_far(impostor_scores: Tensor, far: float) -> float:
    """Decision threshold fixed by a false-accept rate on impostor (different-identity, clean) scores.

    Convention (conservative, no interpolation): with ``k = floor(far × n)`` (the largest ``k`` with
    ``k / n <= far``), the threshold is the smallest float64 ``t`` such that at most ``k`` impostor scores
    satisfy ``score >= t`` — the next float64 above the ``(k+1)``-th highest impostor score (``-inf`` when
    ``far = 1``). The realised FAR is ``<= far``; it never depends on genuine scores. Compare scores with it
    in float64 (:func:`protection_success_rate` and :func:`match_rate` do): rounded to float32, ``t`` can
    equal that impostor score and accept it.

    Raises :class:`ValueError` when ``far × n < 1``: the threshold would accept no impostor at all, so the
    FAR it reaches cannot be told from 0 with ``n`` pairs — use more impostor pairs or a larger FAR.
    """
    name = "threshold_at_far"
    impostor_scores = check_tensor(name, "impostor_scores", impostor_scores)
    if impostor_scores.ndim != 1 or impostor_scores.numel() == 0 or not impostor_scores.is_floating_point():
        raise ValueError(
            f"{name}: `impostor_scores` must be a non-empty 1-D floating tensor, got shape "
            f"{tuple(impostor_scores.shape)} and dtype {impostor_scores.dtype}"
        )
    check_finite(name, "impostor_scores", impostor_scores)
    (far,) = _check_fars(name, (far,))
    n = impostor_scores.numel()
    k = _max_false_accepts(far, n)
    if k == 0:
        raise ValueError(
            f"{name}: far={far:g} with {n} impostor scores accepts no impostor (far × n < 1), so the FAR "
            f"cannot be resolved; use at least {math.ceil(1 / far)} impostor scores or a larger far"
        )
    imp = torch.sort(impostor_scores.detach().to("cpu", torch.float64), descending=True).values
    return _far_threshold(imp, k)


def _check_rate_inputs(name: str, scores: object, threshold: float) -> tuple[Tensor, float]:
    """Validate 1-D finite float scores and a non-NaN threshold; scores come back as CPU float64."""
    scores = check_tensor(name, "scores", scores)
    if scores.ndim != 1 or scores.numel() == 0 or not scores.is_floating_point():
        raise ValueError(
            f"{name}: `scores` must be a non-empty 1-D floating tensor, got shape {tuple(scores.shape)} "
            f"and dtype {scores.dtype}"
        )
    check_finite(name, "scores", scores)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: threshold must be a number, got {threshold!r}") from None
    if math.isnan(threshold):
        raise ValueError(f"{name}: threshold is NaN")
    return scores.detach().to("cpu", torch.float64), threshold


def protection_success_rate(scores: Tensor, threshold: float) -> float:
    """Share of protected images *not* matched to their own identity: ``mean(score < threshold)``.

    ``scores[i]`` is the similarity of protected image ``i`` to a clean image of its own identity; the
    threshold is usually :func:`threshold_at_far` on clean impostor pairs of the same recognizer (e.g. FAR
    1e-2 / 1e-3). A pair is a match when ``score >= threshold`` (the convention of this module), compared
    in float64.
    """
    s, t = _check_rate_inputs("protection_success_rate", scores, threshold)
    return float((s < t).double().mean())


def match_rate(scores: Tensor, threshold: float) -> float:
    """Share of pairs matched at a threshold: ``mean(score >= threshold)`` in float64.

    ``1 - protection_success_rate``; with ``scores = cos(f(x_protected), f(x_target))`` and the per-model
    FAR-1e-2 threshold it is the impersonation attack success rate (ASR) of makeup_privacy.md §8.
    """
    s, t = _check_rate_inputs("match_rate", scores, threshold)
    return float((s >= t).double().mean())


def _roc(s: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ROC vertices ``(fpr, tpr, thresholds)`` of the rule ``score >= t`` for ``t`` = ``+inf`` and then every
    unique score in descending order (as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``)."""
    order = _stable_argsort(-s)  # descending
    s_sorted, y_sorted = s[order], y[order]
    last = torch.ones_like(y_sorted)
    last[:-1] = s_sorted[1:] != s_sorted[:-1]  # last element of each run of equal scores
    tps = torch.cumsum(y_sorted, 0)[last].double()
    fps = torch.cumsum(~y_sorted, 0)[last].double()
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, fps / fps[-1]])
    tpr = torch.cat([zero, tps / tps[-1]])
    thresholds = torch.cat([torch.full((1,), torch.inf, dtype=torch.float64), s_sorted[last]])
    return fpr, tpr, thresholds


def _lerp(a: float, b: float, w: float) -> float:
    """``a + w (b - a)``, exact at ``w = 0`` and ``w = 1``."""
    return a + w * (b - a) if w < 0.5 else b - (1 - w) * (b - a)


def verification_roc(
    scores: Tensor, is_same: Tensor, fars: Sequence[float] = DEFAULT_FARS
) -> dict[str, object]:
    """ROC AUC, equal error rate and TAR at fixed FARs of verification scores (higher = more likely same).

    All pairs are pooled (no folds; see :func:`tar_at_far_kfold` for the PRO-Face 10-fold TAR).

    * ``auc``: area under the ROC (trapezoids; tied scores form one diagonal step) — the Mann-Whitney
      statistic with ties counted 1/2, equal to ``sklearn.metrics.roc_auc_score``.
    * ``eer``: where FPR = FNR on the ROC with straight segments between vertices (the FaceNet / PRO-Face
      ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)``, solved in closed form);
      ``eer_threshold`` is interpolated linearly between the thresholds of that segment's vertices (its upper
      vertex's threshold when the segment starts at the ``+inf`` vertex).
    * ``tar_at_far[far]``: the share of genuine pairs with ``score >= threshold_at_far[far]``, the threshold
      of :func:`threshold_at_far` on the impostor scores (conservative, realised FAR <= far, no
      interpolation) — equal to the highest TPR of the ROC vertices with FPR <= far. When
      ``far × #impostors < 1`` the FAR cannot be resolved: TAR and threshold are NaN and
      ``far_resolved[far]`` is False (no exception, so one small set can still report the other FARs).

    Needs at least one genuine and one impostor pair (ValueError otherwise). Returns
    ``{"auc", "eer", "eer_threshold": float, "tar_at_far", "threshold_at_far": {far: float},
    "far_resolved": {far: bool}, "num_genuine", "num_impostor": int}``.
    """
    name = "verification_roc"
    s, y = _check_verification_inputs(name, scores, is_same)
    fars = _check_fars(name, fars)
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    if n_gen == 0 or n_imp == 0:
        raise ValueError(
            f"{name}: needs both genuine and impostor pairs, got {n_gen} genuine and {n_imp} impostor"
        )
    fpr, tpr, thr = _roc(s, y)
    auc = float(torch.trapezoid(tpr, fpr))
    gap = fpr + tpr - 1  # FPR - FNR: -1 at the +inf vertex, +1 at the last one, non-decreasing
    i = int(torch.nonzero(gap >= 0)[0])
    w = float(-gap[i - 1] / (gap[i] - gap[i - 1]))
    eer = _lerp(float(fpr[i - 1]), float(fpr[i]), w)
    eer_threshold = float(thr[i]) if i == 1 else _lerp(float(thr[i - 1]), float(thr[i]), w)

    imp = torch.sort(s[~y], descending=True).values
    gen = s[y]
    tar, thresholds, resolved = {}, {}, {}
    for far in fars:
        k = _max_false_accepts(far, n_imp)
        resolved[far] = k > 0
        thresholds[far] = _far_threshold(imp, k) if k > 0 else math.nan
        tar[far] = float((gen >= thresholds[far]).double().mean()) if k > 0 else math.nan
    return {
        "auc": auc,
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_far": tar,
        "threshold_at_far": thresholds,
        "far_resolved": resolved,
        "num_genuine": n_gen,
        "num_impostor": n_imp,
    }


def tar_at_far_kfold(
    scores: Tensor,
    is_same: Tensor,
    fars: Sequence[float] = DEFAULT_FARS,
    num_folds: int = 10,
    fold_ids: Tensor | None = None,
) -> dict[float, dict[str, object]]:
    """TAR at fixed FARs, k-fold protocol: threshold from the other k-1 folds, TAR on the held-out fold.

    For each fold, the threshold is :func:`threshold_at_far` on the impostor scores of the *training* folds
    (the PRO-Face / FaceNet ``calculate_val`` protocol, but with the exact conservative threshold instead of
    interpolating a 0.001 distance grid); the fold's TAR is the share of its genuine pairs with
    ``score >= threshold`` and its FAR the share of its impostor pairs (NaN if it has none). Folds as in
    :func:`verification_accuracy`. A test fold without genuine pairs raises ValueError. When
    ``far × #training impostors < 1`` in some fold, that fold's TAR is NaN, so ``mean``/``std`` are NaN and
    ``resolved`` is False.

    Returns ``{far: {"mean", "std": float, "fold_tar", "fold_far", "thresholds": Tensor[k],
    "resolved": bool}}`` with ``std`` over folds, ddof=0 (as for the accuracy).
    """
    name = "tar_at_far_kfold"
    s, y = _check_verification_inputs(name, scores, is_same)
    fars = _check_fars(name, fars)
    folds = _fold_index(name, s.numel(), num_folds, fold_ids)
    out = {
        far: {
            "fold_tar": torch.empty(num_folds, dtype=torch.float64),
            "fold_far": torch.empty(num_folds, dtype=torch.float64),
            "thresholds": torch.empty(num_folds, dtype=torch.float64),
        }
        for far in fars
    }
    for f in range(num_folds):
        test = folds == f
        gen_test, imp_test = s[test & y], s[test & ~y]
        if gen_test.numel() == 0:
            raise ValueError(f"{name}: fold {f} has no genuine pairs, so its TAR is undefined")
        imp_train = torch.sort(s[~test & ~y], descending=True).values
        for far in fars:
            k = _max_false_accepts(far, imp_train.numel())
            t = _far_threshold(imp_train, k) if k > 0 else math.nan
            out[far]["thresholds"][f] = t
            out[far]["fold_tar"][f] = (gen_test >= t).double().mean() if k > 0 else math.nan
            out[far]["fold_far"][f] = (
                (imp_test >= t).double().mean() if k > 0 and imp_test.numel() else math.nan
            )
    for entry in out.values():
        tars = entry["fold_tar"]
        entry["mean"] = float(tars.mean())
        entry["std"] = float(tars.std(correction=0))
        entry["resolved"] = not bool(tars.isnan().any())
    return out


def verification_summary(
    scores: Tensor,
    is_same: Tensor,
    num_folds: int = 10,
    fold_ids: Tensor | None = None,
    fars: Sequence[float] = DEFAULT_FARS,
) -> dict[str, object]:
    """Everything one verification setting reports (one PRO-Face table cell block), as plain numbers.

    ``accuracy``/``accuracy_std``: :func:`verification_accuracy` (k-fold); ``auc``, ``eer``,
    ``eer_threshold``: :func:`verification_roc` on the pooled pairs; ``tar_at_far``/``tar_at_far_std``:
    :func:`tar_at_far_kfold` mean/std over folds (the PRO-Face TAR@FAR); ``tar_at_far_pooled``: TAR of the
    pooled ROC; ``far_resolved``: False where the k-fold TAR is NaN because the FAR is below the resolution.
    """
    acc = verification_accuracy(scores, is_same, num_folds=num_folds, fold_ids=fold_ids)
    roc = verification_roc(scores, is_same, fars=fars)
    kfold = tar_at_far_kfold(scores, is_same, fars=fars, num_folds=num_folds, fold_ids=fold_ids)
    return {
        "accuracy": acc["mean"],
        "accuracy_std": acc["std"],
        "auc": roc["auc"],
        "eer": roc["eer"],
        "eer_threshold": roc["eer_threshold"],
        "tar_at_far": {far: entry["mean"] for far, entry in kfold.items()},
        "tar_at_far_std": {far: entry["std"] for far, entry in kfold.items()},
        "tar_at_far_pooled": roc["tar_at_far"],
        "far_resolved": {far: entry["resolved"] for far, entry in kfold.items()},
        "num_genuine": roc["num_genuine"],
        "num_impostor": roc["num_impostor"],
    }


# ----------------------------------------------------------------------------------------------------
# Retrieval (identification)
# ----------------------------------------------------------------------------------------------------

#: Working memory (bytes) the retrieval functions allow themselves per probe chunk when ``chunk_size`` is
#: ``None``: the score block ``[chunk, G]`` plus one scratch block of the same shape (8 bytes per probe ×
#: gallery item in float32), so 671 probes per chunk at G = 100,000. The only other sizeable allocation is the
#: L2-normalised copy of the embeddings (G × D × 4 bytes: 205 MB at G = 100k, D = 512); the measured peak
#: extra memory (RSS) of a 10k-probe × 100k-gallery × 512-d search is about 0.71 GB.
RETRIEVAL_CHUNK_BYTES = 512 * 2**20


def _normalised_rows(name: str, arg: str, x: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Validated, L2-normalised copy of an ``[N, D]`` embedding matrix in ``dtype`` on ``device``.

    Fast path: all row norms finite and non-zero implies every element is finite (an inf or NaN element makes
    its row norm non-finite), so the full element-wise check (≈1 s at 100k × 512) only runs to explain a
    failure.
    """
    if isinstance(x, Tensor) and x.ndim == 2 and x.numel() > 0 and x.is_floating_point():
        x = x.detach().to(device, dtype)
        norms = torch.linalg.vector_norm(x, dim=1)
        if bool(torch.isfinite(norms).all()) and bool((norms > 0).all()):
            return x / norms.unsqueeze(1)
    return _l2_normalise(name, arg, check_embeddings(name, arg, x).detach().to(device, dtype))


def _check_retrieval_inputs(
    name: str,
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    chunk_size: int | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Validate, move to the probe device, L2-normalise; returns (probe, p_labels, gallery, g_labels)."""
    probe_emb = check_tensor(name, "probe_emb", probe_emb)
    gallery_emb = check_tensor(name, "gallery_emb", gallery_emb)
    if probe_emb.ndim == 2 and gallery_emb.ndim == 2 and probe_emb.shape[1] != gallery_emb.shape[1]:
        raise ValueError(
            f"{name}: embedding sizes differ: probes have D={probe_emb.shape[1]}, "
            f"gallery D={gallery_emb.shape[1]}"
        )
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
    ):
        raise ValueError(f"{name}: chunk_size must be a positive integer or None, got {chunk_size!r}")
    device = probe_emb.device
    dtype = torch.promote_types(probe_emb.dtype, gallery_emb.dtype)
    probe = _normalised_rows(name, "probe_emb", probe_emb, dtype, device)
    gallery = _normalised_rows(name, "gallery_emb", gallery_emb, dtype, device)
    probe_labels = check_labels(name, "probe_labels", probe_labels, probe.shape[0])
    gallery_labels = check_labels(name, "gallery_labels", gallery_labels, gallery.shape[0])
    return probe, probe_labels.to(device, torch.long), gallery, gallery_labels.to(device, torch.long)


class _GalleryGroups:
    """The gallery grouped by label, so each probe's same-label items are found without a ``[P, G]`` mask.

    ``members[starts[c] : starts[c] + counts[c]]`` are the gallery indices (ascending) with label
    ``labels[c]``; ``labels`` is sorted, so a probe label is looked up by binary search.
    """

    def __init__(self, gallery_labels: Tensor) -> None:
        self.members = _stable_argsort(gallery_labels)
        self.labels, self.counts = torch.unique_consecutive(gallery_labels[self.members], return_counts=True)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def _lookup(self, probe_labels: Tensor) -> tuple[Tensor, Tensor]:
        """(group of each probe label, number of same-label gallery items; 0 when the label is absent)."""
        group = torch.searchsorted(self.labels, probe_labels).clamp_(max=self.labels.numel() - 1)
        return group, torch.where(self.labels[group] == probe_labels, self.counts[group], 0)

    def max_positives(self, probe_labels: Tensor) -> int:
        """Largest number of same-label gallery items of any probe."""
        return int(self._lookup(probe_labels)[1].max())

    def positives(self, probe_labels: Tensor) -> tuple[Tensor, Tensor]:
        """``(index [n, m], valid [n, m])``: the same-label gallery indices of each probe (ascending), padded
        to the chunk's largest count ``m`` with index 0 and ``valid`` False."""
        group, count = self._lookup(probe_labels)
        k = torch.arange(int(count.max()), device=probe_labels.device)
        valid = k < count[:, None]
        return self.members[torch.where(valid, self.starts[group][:, None] + k, 0)], valid


def _chunk_rows(chunk_size: int | None, n_probes: int, n_gallery: int, itemsize: int, max_pos: int) -> int:
    """Probes per chunk: ``chunk_size`` if given, else as many as fit :data:`RETRIEVAL_CHUNK_BYTES`."""
    if chunk_size is None:
        per_probe = n_gallery * 2 * itemsize + 64 * max_pos  # score + scratch rows; positive-index tables
        chunk_size = max(1, RETRIEVAL_CHUNK_BYTES // per_probe)
    return min(chunk_size, n_probes)


def _chunk_first_positions(scores: Tensor, index: Tensor, valid: Tensor, flags: Tensor) -> Tensor:
    """0-based position of each row's first same-label item in the ranking (score desc, index asc).

    ``scores`` ``[n, G]``; ``index``/``valid`` ``[n, m]`` the same-label columns; ``flags`` an ``[n, G]``
    float scratch buffer. The best same-label score ``b`` and the lowest index ``f`` attaining it come from
    the gathered same-label columns (no ``[n, G]`` label mask); then position = #items scoring ``> b`` +
    #other items scoring exactly ``b`` at an index ``< f`` (counted row by row, only in rows where such an
    exact tie exists). The two comparison passes write 0/1 into the float buffer and sum it (exact below
    2**24 items in float32), several times faster than summing a bool tensor. Rows without a same-label item
    get ``G``.
    """
    n_gallery = scores.shape[1]
    pos_scores = scores.gather(1, index).masked_fill_(~valid, -torch.inf)
    best = pos_scores.amax(dim=1, keepdim=True)
    at_best = valid & (pos_scores == best)
    first = torch.where(at_best, index, n_gallery).amin(dim=1).tolist()
    position = torch.gt(scores, best, out=flags).sum(dim=1).long()
    n_equal = torch.eq(scores, best, out=flags).sum(dim=1).long()
    has_match = valid.any(dim=1)
    for row in torch.nonzero(has_match & (n_equal > at_best.sum(dim=1))).flatten().tolist():
        position[row] += int((scores[row, : first[row]] == best[row]).sum())
    return torch.where(has_match, position, n_gallery)


def _flag_dtype(n_gallery: int) -> torch.dtype:
    """Scratch dtype whose sums of 0/1 over a row are exact: float32 below 2**24 items, else float64."""
    return torch.float32 if n_gallery < 2**24 else torch.float64


def _first_match_positions(
    probe: Tensor, p_lab: Tensor, gallery: Tensor, groups: _GalleryGroups, chunk_size: int
) -> Tensor:
    """Position of each probe's first same-label gallery item (``G`` if none), ``chunk_size`` probes at a
    time: one matmul into a reused buffer, then :func:`_chunk_first_positions`."""
    n_probe, n_gallery = probe.shape[0], gallery.shape[0]
    out = torch.full((n_probe,), n_gallery, dtype=torch.long, device=probe.device)
    scores_buf = torch.empty(chunk_size, n_gallery, dtype=probe.dtype, device=probe.device)
    flags_buf = torch.empty(chunk_size, n_gallery, dtype=_flag_dtype(n_gallery), device=probe.device)
    for start in range(0, n_probe, chunk_size):
        stop = min(start + chunk_size, n_probe)
        index, valid = groups.positives(p_lab[start:stop])
        if index.shape[1] == 0:
            continue  # no probe of this chunk has a same-label gallery item
        scores = torch.mm(probe[start:stop], gallery.T, out=scores_buf[: stop - start])
        out[start:stop] = _chunk_first_positions(scores, index, valid, flags_buf[: stop - start])
    return out


def retrieval_rank_k(
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = (1, 5),
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Closed-set identification rank-k: share of probes whose top-k gallery items contain a same-label item.

    Cosine similarity on L2-normalised embeddings, computed in the promoted input dtype (float32 embeddings
    give a float32 matmul); ties are ranked by gallery index (lower first), so the result is deterministic.
    Instead of ``torch.topk`` (whose tie order is unspecified) the position of the first same-label item is
    counted directly (#items scoring higher plus #equal-scoring items with a lower index), which is exact for
    every k at once. Probes are processed ``chunk_size`` at a time (``None``: as many as fit
    :data:`RETRIEVAL_CHUNK_BYTES`, 671 at G = 100k in float32), so memory is ``O(chunk_size × G)``: a
    10k-probe × 100k-gallery × 512-d float32 search peaks at ≈ 0.71 GB extra and costs 1.07× the fastest bare
    chunked matmul on an idle 2-core CPU (``make bench-metrics``).
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
    groups = _GalleryGroups(g_lab)
    rows = _chunk_rows(
        chunk_size, probe.shape[0], gallery.shape[0], probe.element_size(), groups.max_positives(p_lab)
    )
    pos = _first_match_positions(probe, p_lab, gallery, groups, rows)
    return {f"rank{k}": float((pos < k).double().mean()) for k in ks}


def _sorted_rows(src: Tensor, dst: Tensor, pool: ThreadPoolExecutor | None) -> Tensor:
    """``dst`` ← the rows of ``src`` sorted ascending (values only); returns ``dst``.

    On CPU numpy's SIMD sort is used — about 20× faster than ``torch.sort``, which also builds an index
    tensor — on blocks of 4 rows (copied, then sorted while still in cache) spread over ``pool``'s threads
    (numpy releases the GIL while sorting), so the sort scales with the cores as the matmul does.
    """
    if src.device.type != "cpu":
        return dst.copy_(torch.sort(src, dim=1).values)
    source, target = src.numpy(), dst.numpy()

    def sort_block(lo: int) -> None:
        np.copyto(target[lo : lo + 4], source[lo : lo + 4])
        target[lo : lo + 4].sort(axis=1)

    blocks = range(0, src.shape[0], 4)
    if pool is None:
        for lo in blocks:
            sort_block(lo)
    else:
        list(pool.map(sort_block, blocks))
    return dst


def _average_precisions(
    scores: Tensor, index: Tensor, valid: Tensor, ranked: Tensor
) -> tuple[Tensor, Tensor]:
    """AP of each row of ``scores`` ``[n, G]`` with same-label items ``index``/``valid`` ``[n, m]``.

    ``ranked`` holds the rows of ``scores`` sorted ascending. Returns ``(ap [n], has_match [n])``; rows
    without a same-label item have ``has_match`` False (their AP is meaningless).
    """
    n_gallery = scores.shape[1]
    # Same-label items in ranking order: score desc, then index asc (`index` rows are ascending).
    value, perm = torch.sort(
        scores.gather(1, index).masked_fill_(~valid, -torch.inf), dim=1, descending=True, stable=True
    )
    index, valid = index.gather(1, perm), valid.gather(1, perm)
    n_le = torch.searchsorted(ranked, value, right=True)
    n_equal = n_le - torch.searchsorted(ranked, value)  # gallery items scoring exactly `value`
    ascending = value.flip(1)
    n_equal_pos = torch.searchsorted(ascending, value, right=True) - torch.searchsorted(ascending, value)
    k = torch.arange(value.shape[1], device=scores.device)
    new_value = torch.ones_like(valid)
    new_value[:, 1:] = value[:, 1:] != value[:, :-1]
    run_start = torch.where(new_value, k, 0).cummax(dim=1).values  # first same-label item of equal score
    position = (n_gallery - n_le) + (k - run_start)
    for row, j in torch.nonzero(valid & (n_equal > n_equal_pos)).tolist():  # a non-matching item ties
        tie = scores[row, : int(index[row, j])] == value[row, j]
        position[row, j] = n_gallery - n_le[row, j] + int(tie.sum())
    precision = (k + 1).double() / (position + 1).double()
    n_pos = valid.sum(dim=1)
    return (precision * valid).sum(dim=1) / n_pos.clamp(min=1), n_pos > 0


def mean_average_precision(
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    chunk_size: int | None = None,
) -> float:
    """Mean over probes of the average precision of the gallery ranking (score desc, ties by index asc).

    AP of one probe = mean over its same-label gallery items of the precision at that item's position.
    Probes without any same-label gallery item are excluded (AP undefined); if none remain, ValueError.

    Exact without an argsort of the gallery: the position of a same-label item with score ``s`` at index
    ``i`` is #items scoring ``> s`` (a binary search in a value-sorted copy of the score row) plus #items
    scoring exactly ``s`` at an index ``< i`` — the other same-label items of that score when no other item
    has it, else counted in the raw row. Chunks as in :func:`retrieval_rank_k`; memory ``O(chunk_size × G)``
    (the score block and its sorted copy). On CPU the row sort runs on ``torch.get_num_threads()`` threads;
    a chunk whose probes have at most one same-label item each (a one-image-per-identity gallery) needs no
    sort: AP = 1 / (1 + that item's position), counted as in :func:`retrieval_rank_k`.
    Cost at 10k probes × 100k gallery × 512-d float32 on an idle 2-core CPU (``make bench-metrics``): 1.47×
    the fastest bare chunked matmul with 10 gallery images per identity — the row sort (≈0.45× the matmul) is
    the extra — and about 1.1× with one image per identity; peak extra memory ≈ 0.71 GB.
    """
    name = "mean_average_precision"
    probe, p_lab, gallery, g_lab = _check_retrieval_inputs(
        name, probe_emb, probe_labels, gallery_emb, gallery_labels, chunk_size
    )
    n_probe, n_gallery = probe.shape[0], gallery.shape[0]
    groups = _GalleryGroups(g_lab)
    rows = _chunk_rows(chunk_size, n_probe, n_gallery, probe.element_size(), groups.max_positives(p_lab))
    scores_buf = torch.empty(rows, n_gallery, dtype=probe.dtype, device=probe.device)
    sorted_buf = torch.empty_like(scores_buf)
    ap_sum = torch.zeros((), dtype=torch.float64, device=probe.device)
    n_valid = 0
    workers = min(torch.get_num_threads(), rows) if probe.device.type == "cpu" else 1
    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for start in range(0, n_probe, rows):
            stop = min(start + rows, n_probe)
            index, valid = groups.positives(p_lab[start:stop])
            if index.shape[1] == 0:
                continue  # no probe of this chunk has a same-label gallery item
            scores = torch.mm(probe[start:stop], gallery.T, out=scores_buf[: stop - start])
            if index.shape[1] == 1:  # at most one same-label item per probe: AP = 1 / (its rank), no sort
                flags = sorted_buf[: stop - start]  # the sort buffer is free: reuse it as the scratch buffer
                if flags.dtype == torch.float32 and _flag_dtype(n_gallery) == torch.float64:
                    flags = torch.empty_like(flags, dtype=torch.float64)
                position = _chunk_first_positions(scores, index, valid, flags)
                ap, has_match = 1.0 / (position + 1).double(), valid[:, 0]
            else:
                ranked = _sorted_rows(scores, sorted_buf[: stop - start], pool)
                ap, has_match = _average_precisions(scores, index, valid, ranked)
            ap_sum += ap[has_match].sum()
            n_valid += int(has_match.sum())
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


# ----------------------------------------------------------------------------------------------------
# Accumulating verification / protection metrics (torchmetrics, DDP-safe)
# ----------------------------------------------------------------------------------------------------


class _TypedCatMetric(Metric):
    """Base for metrics with 1-D ``cat`` list states of fixed dtypes (:attr:`cat_dtypes`).

    torchmetrics gives a rank that saw no data a float32 placeholder for every empty list state, which would
    make ranks gather tensors of different dtypes (long labels on one rank, float32 on another); here an
    empty state gets an empty tensor of its declared dtype instead.
    """

    is_differentiable = False
    full_state_update = False
    cat_dtypes: dict[str, torch.dtype] = {}  # noqa: RUF012  (class-level declaration, never mutated)

    def _sync_dist(
        self, dist_sync_fn: object = gather_all_tensors, process_group: object | None = None
    ) -> None:
        """Give empty list states typed, correctly placed placeholders, then let torchmetrics gather."""
        for attr, dtype in self.cat_dtypes.items():
            if isinstance(getattr(self, attr), list) and not getattr(self, attr):
                setattr(self, attr, [torch.zeros(0, dtype=dtype, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group=process_group)  # type: ignore[arg-type]

    def _cat(self, attr: str) -> Tensor:
        """The concatenated state ``attr`` (an empty tensor of its dtype when nothing was added)."""
        value = getattr(self, attr)
        if isinstance(value, Tensor):
            return value
        if not value:
            return torch.zeros(0, dtype=self.cat_dtypes[attr], device=self.device)
        return dim_zero_cat(value)


class VerificationMetrics(_TypedCatMetric):
    """Verification metrics of score/label pairs accumulated over batches and DDP ranks (``cat`` states).

    ``update(scores, is_same, index=None)`` appends one batch of pair scores (higher = same) and labels;
    ``compute()`` returns :func:`verification_summary` (k-fold accuracy, AUC, EER, k-fold TAR@FAR; all pairs
    pooled over ranks) when ``num_folds`` is set, else :func:`verification_roc`.
    Folds are contiguous in the pairs' order, so the order must be reproducible: pass ``index`` (a unique
    global pair number, e.g. the dataset index) with every batch and the pairs are sorted by it before the
    folds are cut — the result then equals the single-process one however the pairs were sharded. Without
    ``index`` the order is rank 0's pairs, then rank 1's, ... Duplicate indices (a padding sampler) are an
    error. AUC/EER/pooled TAR do not depend on the order.
    """

    cat_dtypes = {"scores": torch.float64, "is_same": torch.long, "index": torch.long}  # noqa: RUF012

    scores: list[Tensor] | Tensor
    is_same: list[Tensor] | Tensor
    index: list[Tensor] | Tensor

    def __init__(
        self, fars: Sequence[float] = DEFAULT_FARS, num_folds: int | None = 10, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.fars = _check_fars("VerificationMetrics", fars)
        if num_folds is not None and (not isinstance(num_folds, int) or num_folds < 2):
            raise ValueError(
                f"VerificationMetrics: num_folds must be an integer >= 2 or None, got {num_folds!r}"
            )
        self.num_folds = num_folds
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("is_same", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, is_same: Tensor, index: Tensor | None = None) -> None:
        """Append one batch: 1-D finite float ``scores``, boolean (or 0/1) ``is_same``, optional ``index``."""
        name = "VerificationMetrics"
        s, y = _check_verification_inputs(name, scores, is_same)
        self.scores.append(s.to(self.device))
        self.is_same.append(y.to(self.device, torch.long))
        if index is not None:
            index = check_labels(name, "index", check_tensor(name, "index", index), s.numel())
            self.index.append(index.detach().to(self.device, torch.long))

    def compute(self) -> dict[str, object]:
        """The summary over every pair seen on every rank (see the class docstring)."""
        name = "VerificationMetrics"
        scores, is_same, index = self._cat("scores"), self._cat("is_same").bool(), self._cat("index")
        if scores.numel() == 0:
            raise ValueError(f"{name}: compute() called on an empty state (no pairs on any rank)")
        if index.numel():
            if index.numel() != scores.numel():
                raise ValueError(
                    f"{name}: `index` was given for {index.numel()} of {scores.numel()} pairs; pass it with "
                    "every update or never"
                )
            index, order = torch.sort(index.cpu())
            if bool((index[1:] == index[:-1]).any()):
                raise ValueError(f"{name}: duplicate pair indices (a sampler repeated pairs)")
            scores, is_same = scores.cpu()[order], is_same.cpu()[order]
        if self.num_folds is None:
            return verification_roc(scores, is_same, fars=self.fars)
        return verification_summary(scores, is_same, num_folds=self.num_folds, fars=self.fars)


class ProtectionSuccessRate(Metric):
    """:func:`protection_success_rate` accumulated over batches and ranks (``sum`` states, exact under DDP).

    ``threshold`` is fixed at construction (e.g. :func:`threshold_at_far` on clean impostor pairs);
    ``update(scores)`` takes the similarities of protected images to their own identity; ``compute()``
    returns the float64 share with ``score < threshold`` (compared in float64).
    """

    is_differentiable = False
    full_state_update = False

    protected: Tensor
    total: Tensor

    def __init__(self, threshold: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        _, self.threshold = _check_rate_inputs("ProtectionSuccessRate", torch.zeros(1), threshold)
        self.add_state("protected", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: Tensor) -> None:
        """Count one batch of protected-vs-own-identity scores (1-D, finite, floating)."""
        s, _ = _check_rate_inputs("ProtectionSuccessRate", scores, self.threshold)
        self.protected += int((s < self.threshold).sum())
        self.total += s.numel()

    def compute(self) -> Tensor:
        """Share of protected images not matched, over all ranks (float64 scalar)."""
        if int(self.total) == 0:
            raise ValueError(
                "ProtectionSuccessRate: compute() called on an empty state (no scores on any rank)"
            )
        return self.protected.double() / self.total.double()
