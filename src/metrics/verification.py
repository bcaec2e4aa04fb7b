"""Face verification: LFW k-fold accuracy, ROC AUC, EER, TAR@FAR (pooled and k-fold), thresholds at a fixed
FAR, the protection success rate, balanced verification pairs, and DDP-safe accumulators.

Conventions
-----------
* Scores are similarities (higher means "more likely the same"), e.g. the cosine similarity of L2-normalised
  embeddings or the angular similarity of :mod:`src.metrics.identity_settings`.
* A pair is predicted *same* when ``score >= threshold``; verification scores are compared in float64 and
  every curve number (AUC, EER, TAR@FAR) comes from :mod:`src.metrics.curves`, shared with detection.
* TAR@FAR is conservative, without interpolation: the threshold is the smallest one whose impostor
  false-accept rate is ``<= FAR`` (:func:`threshold_at_far`); a FAR finer than ``1 / #impostors`` gives NaN
  and ``far_resolved = False``.
* **Pooled vs fold mean.** ``tar_at_far_pooled`` is the TAR of one threshold on all pairs pooled
  (:func:`verification_roc`); ``tar_at_far_fold_mean`` / ``tar_at_far_fold_std`` are the mean and spread over
  folds of the k-fold protocol (threshold from the other folds, :func:`tar_at_far_kfold`), the number
  face-privacy papers report. They are different quantities and never share a key.
* Standard deviations over folds are population ones (ddof=0), as LFW tables report them.
* All functions raise :class:`ValueError` naming the function for bad input.

Definitions and measured agreement with the references: ``docs/metrics.md`` ("Verification").
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from src.metrics import curves
from src.metrics._checks import check_finite, check_labels, check_tensor
from src.metrics.gather import GatherMetric

__all__ = [
    "DEFAULT_FARS",
    "ProtectionSuccessRate",
    "VerificationMetrics",
    "match_rate",
    "protection_success_rate",
    "tar_at_far_kfold",
    "threshold_at_far",
    "verification_accuracy",
    "verification_pairs",
    "verification_roc",
    "verification_summary",
]

#: FARs at which TAR is reported by default. Face-privacy papers report 1e-1, 1e-2, 1e-3; 1e-4 needs at least
#: 10,000 impostor pairs (per training split in the k-fold variant), otherwise it comes back NaN.
DEFAULT_FARS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)


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
    (far,) = curves.check_fars(name, (far,))
    n = impostor_scores.numel()
    k = curves.max_false_accepts(far, n)
    if k == 0:
        raise ValueError(
            f"{name}: far={far:g} with {n} impostor scores accepts no impostor (far × n < 1), so the FAR "
            f"cannot be resolved; use at least {math.ceil(1 / far)} impostor scores or a larger far"
        )
    imp = torch.sort(impostor_scores.detach().to("cpu", torch.float64), descending=True).values
    return curves.far_threshold(imp, k)


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
    FAR-1e-2 threshold it is the impersonation attack success rate (ASR) of makeup-transfer protection papers.
    """
    s, t = _check_rate_inputs("match_rate", scores, threshold)
    return float((s >= t).double().mean())


def verification_roc(
    scores: Tensor, is_same: Tensor, fars: Sequence[float] = DEFAULT_FARS
) -> dict[str, object]:
    """ROC AUC, equal error rate and TAR at fixed FARs of verification scores, all pairs **pooled** (no folds;
    :func:`tar_at_far_kfold` gives the k-fold TAR).

    * ``auc``: area under the ROC (trapezoids; tied scores form one diagonal step) — the Mann-Whitney
      statistic with ties counted 1/2 (:func:`src.metrics.curves.roc_auc`).
    * ``eer``: where FPR = FNR on the ROC with straight segments between vertices (the FaceNet
      ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)``, solved in closed form);
      ``eer_threshold`` is interpolated linearly between the thresholds of that segment's vertices (its upper
      vertex's threshold when the segment starts at the ``+inf`` vertex).
    * ``tar_at_far_pooled[far]``: the share of genuine pairs with ``score >= threshold_at_far[far]``, the
      threshold of :func:`threshold_at_far` on the impostor scores (conservative, realised FAR <= far, no
      interpolation) — the highest TPR of the ROC vertices with FPR <= far. When ``far × #impostors < 1``
      the FAR cannot be resolved: TAR and threshold are NaN and ``far_resolved[far]`` is False (no
      exception, so one small set can still report the other FARs).

    Needs at least one genuine and one impostor pair (ValueError otherwise). Returns
    ``{"auc", "eer", "eer_threshold": float, "tar_at_far_pooled", "threshold_at_far": {far: float},
    "far_resolved": {far: bool}, "num_genuine", "num_impostor": int}`` (float64 values).
    """
    name = "verification_roc"
    s, y = _check_verification_inputs(name, scores, is_same)
    fars = curves.check_fars(name, fars)
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    if n_gen == 0 or n_imp == 0:
        raise ValueError(
            f"{name}: needs both genuine and impostor pairs, got {n_gen} genuine and {n_imp} impostor"
        )
    summary = curves.curve_summary(s, y, name)
    tar = curves.tar_at_far(s, y, fars, name)
    return {
        "auc": summary["auc"],
        "eer": summary["eer"],
        "eer_threshold": summary["eer_threshold_interpolated"],
        "tar_at_far_pooled": {far: value for far, (value, _) in tar.items()},
        "threshold_at_far": {far: threshold for far, (_, threshold) in tar.items()},
        "far_resolved": {far: not math.isnan(value) for far, (value, _) in tar.items()},
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
    (the FaceNet ``calculate_val`` protocol that face-privacy papers use, but with the exact conservative
    threshold instead of interpolating a 0.001 distance grid); the fold's TAR is the share of its genuine
    pairs with ``score >= threshold`` and its FAR the share of its impostor pairs (NaN if it has none).
    Folds as in :func:`verification_accuracy`. A test fold without genuine pairs raises ValueError. When
    ``far × #training impostors < 1`` in some fold, that fold's TAR is NaN, so ``mean``/``std`` are NaN and
    ``resolved`` is False.

    Returns ``{far: {"mean", "std": float, "fold_tar", "fold_far", "thresholds": Tensor[k],
    "resolved": bool}}`` with ``std`` over folds, ddof=0 (as for the accuracy).
    """
    name = "tar_at_far_kfold"
    s, y = _check_verification_inputs(name, scores, is_same)
    fars = curves.check_fars(name, fars)
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
            k = curves.max_false_accepts(far, imp_train.numel())
            t = curves.far_threshold(imp_train, k) if k > 0 else math.nan
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
    """Everything one verification setting reports (one results-table cell block), as plain float64 numbers.

    * ``accuracy`` / ``accuracy_std``: :func:`verification_accuracy` (k-fold mean / population std);
    * ``auc``, ``eer``, ``eer_threshold``: :func:`verification_roc` on the pooled pairs;
    * ``tar_at_far_pooled`` / ``far_resolved_pooled``: TAR of one threshold on the pooled pairs
      (:func:`verification_roc`);
    * ``tar_at_far_fold_mean`` / ``tar_at_far_fold_std`` / ``far_resolved_fold``: :func:`tar_at_far_kfold`
      mean / population std over folds (the TAR@FAR of face-privacy results tables); NaN and not resolved
      where some fold's training impostors cannot resolve the FAR;
    * ``num_genuine``, ``num_impostor``;
    * ``tar_at_far``: deprecated alias of ``tar_at_far_fold_mean``, kept for existing callers.

    Every TAR entry is a dict ``{far: value}``.
    """
    acc = verification_accuracy(scores, is_same, num_folds=num_folds, fold_ids=fold_ids)
    roc = verification_roc(scores, is_same, fars=fars)
    kfold = tar_at_far_kfold(scores, is_same, fars=fars, num_folds=num_folds, fold_ids=fold_ids)
    fold_mean = {far: entry["mean"] for far, entry in kfold.items()}
    return {
        "accuracy": acc["mean"],
        "accuracy_std": acc["std"],
        "auc": roc["auc"],
        "eer": roc["eer"],
        "eer_threshold": roc["eer_threshold"],
        "tar_at_far_pooled": roc["tar_at_far_pooled"],
        "far_resolved_pooled": roc["far_resolved"],
        "tar_at_far_fold_mean": fold_mean,
        "tar_at_far_fold_std": {far: entry["std"] for far, entry in kfold.items()},
        "far_resolved_fold": {far: entry["resolved"] for far, entry in kfold.items()},
        "num_genuine": roc["num_genuine"],
        "num_impostor": roc["num_impostor"],
    }


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


class VerificationMetrics(GatherMetric):
    """Verification metrics of score/label pairs accumulated over batches and DDP ranks (``cat`` states
    gathered by :class:`src.metrics.gather.GatherMetric`).

    ``update(scores, is_same, index=None)`` appends one batch of pair scores (higher = same) and labels;
    ``compute()`` returns :func:`verification_summary` (k-fold accuracy, AUC, EER, k-fold TAR@FAR; all pairs
    pooled over ranks) when ``num_folds`` is set, else :func:`verification_roc`.
    Folds are contiguous in the pairs' order, so the order must be reproducible: pass ``index`` (a unique
    global pair number, e.g. the dataset index) with every batch and the pairs are sorted by it before the
    folds are cut — the result then equals the single-process one however the pairs were sharded. Without
    ``index`` the order is rank 0's pairs, then rank 1's, ... Duplicate indices (a padding sampler) are an
    error. AUC/EER/pooled TAR do not depend on the order.
    """

    scores: list[Tensor] | Tensor
    is_same: list[Tensor] | Tensor
    index: list[Tensor] | Tensor

    def __init__(
        self, fars: Sequence[float] = DEFAULT_FARS, num_folds: int | None = 10, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.fars = curves.check_fars("VerificationMetrics", fars)
        if num_folds is not None and (not isinstance(num_folds, int) or num_folds < 2):
            raise ValueError(
                f"VerificationMetrics: num_folds must be an integer >= 2 or None, got {num_folds!r}"
            )
        self.num_folds = num_folds
        self.add_gather_state("scores", torch.float64)
        self.add_gather_state("is_same", torch.long)
        self.add_gather_state("index", torch.long)

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
        scores, is_same, index = (
            self.gathered("scores"),
            self.gathered("is_same").bool(),
            self.gathered("index"),
        )
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


class ThresholdShare(Metric):
    """The share of scores on one side of a threshold fixed at construction, over batches and ranks (``sum``
    states, exact under DDP). Subclasses say which side counts (:meth:`counts`) and name themselves."""

    is_differentiable = False
    full_state_update = False
    #: what an empty ``compute()`` error calls the scores
    described = "scores"

    hits: Tensor
    total: Tensor

    def __init__(self, threshold: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        _, self.threshold = _check_rate_inputs(type(self).__name__, torch.zeros(1), threshold)
        self.add_state("hits", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @abstractmethod
    def counts(self, scores: Tensor) -> Tensor:
        """Which of the float64 ``scores`` count (a boolean mask)."""

    def update(self, scores: Tensor) -> None:
        """Count one batch of scores (1-D, finite, floating)."""
        s, _ = _check_rate_inputs(type(self).__name__, scores, self.threshold)
        self.hits += int(self.counts(s).sum())
        self.total += s.numel()

    def compute(self) -> Tensor:
        """The share of counted scores over all ranks (float64 scalar)."""
        if int(self.total) == 0:
            raise ValueError(
                f"{type(self).__name__}: compute() called on an empty state (no {self.described} on any rank)"
            )
        return self.hits.double() / self.total.double()


class ProtectionSuccessRate(ThresholdShare):
    """:func:`protection_success_rate` accumulated over batches and ranks.

    ``threshold`` is fixed at construction (e.g. :func:`threshold_at_far` on clean impostor pairs);
    ``update(scores)`` takes the similarities of protected images to their own identity; ``compute()``
    returns the float64 share with ``score < threshold`` (compared in float64).
    """

    described = "scores"

    def counts(self, scores: Tensor) -> Tensor:
        """Protected: not matched to their own identity (``score < threshold``)."""
        return scores < self.threshold
