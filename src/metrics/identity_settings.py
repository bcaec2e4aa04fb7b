"""The four protection settings of verification, pair similarities (cosine or angular) and similarity
statistics.

A face-protection method is judged by verifying one pair list in four settings (``docs/metrics.md``,
"Protection settings"); the *query* side of a pair is ``idx_a``, the *gallery* side ``idx_b``:

===============  ==================  ==================
setting          query (``idx_a``)   gallery (``idx_b``)
===============  ==================  ==================
``orig``         original            original
``obf``          obfuscated          original
``prot_prot``    protected           protected   ("ADR")
``prot_orig``    protected           original    ("XDR")
===============  ==================  ==================

Each setting reports :func:`src.metrics.verification.verification_summary` (10-fold accuracy mean ± std, AUC,
EER, TAR@FAR pooled and 10-fold mean) plus :func:`cosine_statistics` of its genuine/impostor cosine
similarities.

Angular convention
------------------
The protection papers threshold the angular *distance* ``d = arccos(cos) / π`` ∈ [0, 1] (same if
``d <= t_d``). Every function here takes similarities (higher = same), so ``distance="angular"`` scores a pair
with the angular *similarity* ``1 - d`` ∈ [0, 1]; a published distance threshold is ``1 - threshold``. The
map is monotone, so AUC, EER, TAR@FAR and the k-fold accuracy are those of the cosine (up to float64
rounding of ``arccos``); only the reported thresholds differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from src.metrics._checks import check_embeddings, check_finite, check_tensor
from src.metrics.verification import DEFAULT_FARS, verification_summary

__all__ = [
    "DISTANCES",
    "SETTINGS",
    "cosine_statistics",
    "flatten_metrics",
    "identity_settings",
    "pair_scores",
]

#: setting name → (query embeddings, gallery embeddings)
SETTINGS: dict[str, tuple[str, str]] = {
    "orig": ("original", "original"),
    "obf": ("obfuscated", "original"),
    "prot_prot": ("protected", "protected"),
    "prot_orig": ("protected", "original"),
}
DISTANCES = ("cosine", "angular")


def _unit_rows(name: str, arg: str, x: Tensor) -> Tensor:
    """Float64 copy of ``x`` with L2-normalised rows; an all-zero row is an error (cosine undefined)."""
    x = x.detach().to(torch.float64)
    norms = torch.linalg.vector_norm(x, dim=1)
    if bool((norms == 0).any()):
        raise ValueError(
            f"{name}: `{arg}` has {int((norms == 0).sum())} all-zero row(s); cosine is undefined"
        )
    return x / norms[:, None]


def pair_scores(emb_a: Tensor, emb_b: Tensor, distance: str = "cosine") -> Tensor:
    """Similarity of row ``i`` of ``emb_a`` with row ``i`` of ``emb_b`` (both ``[P, D]``) → float64 ``[P]``.

    ``"cosine"``: cosine similarity in [-1, 1]; ``"angular"``: ``1 - arccos(cos) / π`` in [0, 1] (see the
    module docstring). Computed in float64 on the CPU of the inputs' device.
    """
    name = "pair_scores"
    if distance not in DISTANCES:
        raise ValueError(f"{name}: distance must be one of {DISTANCES}, got {distance!r}")
    emb_a = check_embeddings(name, "emb_a", emb_a)
    emb_b = check_embeddings(name, "emb_b", emb_b)
    if emb_a.shape != emb_b.shape:
        raise ValueError(
            f"{name}: `emb_a` and `emb_b` must have the same shape, got {tuple(emb_a.shape)} and "
            f"{tuple(emb_b.shape)}"
        )
    a = _unit_rows(name, "emb_a", emb_a)
    b = _unit_rows(name, "emb_b", emb_b.to(emb_a.device))
    cos = (a * b).sum(dim=1).clamp(-1.0, 1.0)
    return cos if distance == "cosine" else 1.0 - torch.arccos(cos) / math.pi


def _sorted_quantile(sorted_x: Tensor, q: float) -> float:
    """Quantile of ascending ``sorted_x`` with linear interpolation (numpy's default ``method="linear"``)."""
    pos = q * (sorted_x.numel() - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_x.numel() - 1)
    a, b, w = float(sorted_x[lo]), float(sorted_x[hi]), pos - lo
    return a + w * (b - a) if w < 0.5 else b - (1 - w) * (b - a)


def _describe(name: str, arg: str, x: object, quantiles: tuple[float, ...]) -> dict[str, object]:
    """count / mean / std (ddof=0) / min / max / quantiles of a 1-D finite float tensor."""
    x = check_tensor(name, arg, x)
    if x.ndim != 1 or x.numel() == 0 or not x.is_floating_point():
        raise ValueError(
            f"{name}: `{arg}` must be a non-empty 1-D floating tensor, got shape {tuple(x.shape)} "
            f"and dtype {x.dtype}"
        )
    check_finite(name, arg, x)
    s = torch.sort(x.detach().to("cpu", torch.float64)).values
    return {
        "count": s.numel(),
        "mean": float(s.mean()),
        "std": float(s.std(correction=0)),
        "min": float(s[0]),
        "max": float(s[-1]),
        "quantiles": {q: _sorted_quantile(s, q) for q in quantiles},
    }


def cosine_statistics(
    genuine: Tensor, impostor: Tensor, quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)
) -> dict[str, object]:
    """Summary of genuine and impostor similarity scores and their separation (decidability d').

    Returns ``{"genuine": stats, "impostor": stats, "d_prime": float}`` where ``stats`` is
    ``{"count", "mean", "std", "min", "max", "quantiles": {q: value}}`` — ``std`` is the population standard
    deviation (ddof=0), quantiles interpolate linearly (numpy's default). ``d_prime`` is Daugman's
    decidability ``(mean_g - mean_i) / sqrt((std_g² + std_i²) / 2)``: signed (positive when genuine pairs
    are more similar), ``±inf`` when both spreads are 0 and the means differ, NaN when they are equal too.
    """
    name = "cosine_statistics"
    quantiles = tuple(quantiles)
    if any(isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1 for q in quantiles):
        raise ValueError(f"{name}: quantiles must be numbers in [0, 1], got {quantiles!r}")
    gen = _describe(name, "genuine", genuine, quantiles)
    imp = _describe(name, "impostor", impostor, quantiles)
    diff = gen["mean"] - imp["mean"]
    spread = math.sqrt((gen["std"] ** 2 + imp["std"] ** 2) / 2)
    d_prime = math.nan if spread == 0 and diff == 0 else math.copysign(math.inf, diff)
    if spread > 0:
        d_prime = diff / spread
    return {"genuine": gen, "impostor": imp, "d_prime": d_prime}


def _check_pairs(name: str, pairs: object, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """``pairs = (idx_a, idx_b, is_same)``: three 1-D tensors of one length, indices in ``[0, n)``."""
    if not isinstance(pairs, tuple | list) or len(pairs) != 3:
        raise ValueError(
            f"{name}: `pairs` must be a tuple (idx_a, idx_b, is_same), got {type(pairs).__name__}"
        )
    idx_a, idx_b, is_same = (
        check_tensor(name, arg, t) for arg, t in zip(("idx_a", "idx_b", "is_same"), pairs, strict=True)
    )
    for arg, idx in (("idx_a", idx_a), ("idx_b", idx_b)):
        if idx.ndim != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
            raise ValueError(
                f"{name}: `{arg}` must be a 1-D integer tensor, got {idx.dtype} {tuple(idx.shape)}"
            )
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise ValueError(f"{name}: `{arg}` holds indices outside [0, {n}) (the embedding rows)")
    if not idx_a.shape == idx_b.shape == is_same.shape:
        raise ValueError(
            f"{name}: idx_a, idx_b and is_same must have one length, got {tuple(idx_a.shape)}, "
            f"{tuple(idx_b.shape)} and {tuple(is_same.shape)}"
        )
    return idx_a.cpu(), idx_b.cpu(), is_same.cpu()


def identity_settings(
    original: Tensor,
    pairs: tuple[Tensor, Tensor, Tensor],
    obfuscated: Tensor | None = None,
    protected: Tensor | None = None,
    *,
    distance: str = "cosine",
    settings: Sequence[str] | None = None,
    num_folds: int = 10,
    fold_ids: Tensor | None = None,
    fars: Sequence[float] = DEFAULT_FARS,
) -> dict[str, dict[str, object]]:
    """Verification in the protection settings from embeddings of original, obfuscated and protected images.

    ``original``, ``obfuscated``, ``protected``: ``[N, D]`` embeddings of the same ``N`` images (row ``i``
    of each is image ``i`` in that version); ``pairs = (idx_a, idx_b, is_same)`` indexes those rows (e.g.
    :func:`src.metrics.verification.verification_pairs` or an LFW ``pairs.txt``). ``settings`` (default: every
    setting whose embeddings are given) picks from :data:`SETTINGS`; ``distance`` is ``"cosine"`` or
    ``"angular"`` (module docstring). Folds and FARs as in :func:`verification_summary`.

    Returns ``{setting: verification_summary(...) | {"cosine": cosine_statistics(...), "distance": str}}``;
    the cosine statistics are always of the cosine similarity, whatever ``distance`` scores the pairs.
    """
    name = "identity_settings"
    given = {"original": original, "obfuscated": obfuscated, "protected": protected}
    for arg, emb in given.items():
        if emb is not None:
            check_embeddings(name, arg, emb)
            if emb.shape != original.shape:
                raise ValueError(
                    f"{name}: `{arg}` must have the shape of `original` {tuple(original.shape)}, "
                    f"got {tuple(emb.shape)}"
                )
    if distance not in DISTANCES:
        raise ValueError(f"{name}: distance must be one of {DISTANCES}, got {distance!r}")
    available = [s for s, (q, g) in SETTINGS.items() if given[q] is not None and given[g] is not None]
    if settings is None:
        settings = available
    for setting in settings:
        if setting not in SETTINGS:
            raise ValueError(f"{name}: unknown setting {setting!r}; choose from {list(SETTINGS)}")
        if setting not in available:
            missing = [v for v in SETTINGS[setting] if given[v] is None]
            raise ValueError(f"{name}: setting {setting!r} needs the `{missing[0]}` embeddings")
    idx_a, idx_b, is_same = _check_pairs(name, pairs, original.shape[0])

    results: dict[str, dict[str, object]] = {}
    for setting in settings:
        query, gallery = (given[v] for v in SETTINGS[setting])
        a, b = query[idx_a.to(query.device)], gallery[idx_b.to(gallery.device)]
        cos = pair_scores(a, b, "cosine")
        scores = cos if distance == "cosine" else pair_scores(a, b, distance)
        summary = verification_summary(scores, is_same, num_folds=num_folds, fold_ids=fold_ids, fars=fars)
        same = is_same.bool()
        summary["cosine"] = cosine_statistics(cos[same], cos[~same])
        summary["distance"] = distance
        results[setting] = summary
    return results


def flatten_metrics(results: Mapping[object, object], prefix: str = "") -> dict[str, float]:
    """Nested result dicts → ``{"orig/tar_at_far_fold_mean/0.001": 0.97, ...}`` of floats (loggers, tables).

    Keys are joined with ``/`` (float keys formatted with ``:g``); bools become 0.0/1.0; strings and tensors
    are skipped (they are not scalar metrics).
    """
    flat: dict[str, float] = {}
    for key, value in results.items():
        path = f"{prefix}{key:g}" if isinstance(key, float) else f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{path}/"))
        elif isinstance(value, bool | int | float):
            flat[path] = float(value)
    return flat
