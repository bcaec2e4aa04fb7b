"""FaceShield's evaluation protocol (ours; the original ships none): what one protection variant is judged by.

Each *variant* is a way to protect the test faces: FaceShield with one DP perturbator (sampler, ε) or a
baseline obfuscator (DP-Pix, blur, pixelate, ...). Per variant (``docs/papers/faceshield.md``,
"Evaluation"):

* utility — SSIM, PSNR and LPIPS of the protected image against the original (at the dataset's size);
* identity — for each evaluator recognizer: the mean cosine between each protected image and its own
  original (``id_cos``), rank-1 of protected faces against the gallery of all clean originals and TAR at
  the configured FARs of protected-vs-clean pairs (lower = more private; :func:`identity_columns`);
* privacy — the nominal ε, the certified ε (or none), the ε semantics and the audited δ at ε' = ε of the
  uncertified sampler (:func:`privacy_columns`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.metrics.curves import tar_at_far
from src.metrics.privacy import AuditRow, audit_angular_exponential
from src.papers.faceshield.perturbator import DPPerturbator

#: draws of the per-run audit of the uncertified sampler (δ at ε' = ε, inputs at φ = π/2)
AUDIT_DRAWS = 100_000
#: what a row's ε means, per sampler
SEMANTICS = {
    "faceshield_repo": "nominal, not certified",
    "purkayastha": "ε-LDP (certified)",
    "vmf": "ε·d₂ metric privacy (certified)",
}


@functools.lru_cache(maxsize=256)
def audited(
    epsilon: float, phi: float, dimension: int, draws: int, delta_theta: float, seed: int = 0
) -> AuditRow:
    """The Monte-Carlo audit of the authors' sampler (cached: evaluation and audit report share it)."""
    return audit_angular_exponential(epsilon, phi, dimension, draws=draws, seed=seed, delta_theta=delta_theta)


def privacy_columns(perturbator: DPPerturbator) -> dict[str, float]:
    """Numbers for a variant's privacy columns: nominal ε, certified ε (NaN when uncertified), audited δ.

    ``faceshield_repo``: never certified; δ(ε' = ε) from a Monte-Carlo audit at d = 512 (φ = π/2).
    ``purkayastha``: certified (κπ)-LDP, δ = 0. ``vmf``: ε per unit Euclidean distance (metric privacy),
    reported as certified ε·d₂ with δ = 0 (as LDP it is 2ε: the sphere's diameter is 2).
    """
    certification = perturbator.certification()
    certified = (
        certification.epsilon
        if certification.record.certified and certification.epsilon is not None
        else math.nan
    )
    if perturbator.sampler == "faceshield_repo":
        row = audited(
            perturbator.epsilon, math.pi / 2, perturbator.dimension, AUDIT_DRAWS, perturbator.delta_theta
        )
        delta = row.delta_at_epsilon
    else:
        delta = 0.0
    return {
        "epsilon_nominal": float(perturbator.epsilon),
        "epsilon_certified": float(certified),
        "delta_audited": float(delta),
        "certified": float(certification.record.certified),
    }


def identity_columns(
    clean: Tensor, protected: Tensor, labels: Tensor, *, fars: Sequence[float]
) -> dict[str, float]:
    """One judge's identity metrics of protected faces against the clean originals of the test set.

    Every original is in the gallery (so a data set with one photo per identity works too):
    ``id_cos`` is the mean cosine between each protected face and its own original; ``rank1`` the share of
    protected faces whose most similar original has their identity; ``tar@far=f`` the share of same-identity
    (protected, original) pairs accepted at the threshold where a share ``f`` of different-identity pairs is.
    """
    p = F.normalize(protected.float(), dim=1)
    c = F.normalize(clean.float(), dim=1)
    scores = p @ c.T
    same = labels[:, None] == labels[None, :]
    out = {
        "id_cos": float(scores.diagonal().mean()),
        "rank1": float(same[torch.arange(len(labels)), scores.argmax(dim=1)].float().mean()),
    }
    both_kinds = bool(same.any()) and not bool(same.all())  # e.g. a one-batch smoke run of one identity
    rates = tar_at_far(scores.flatten(), same.flatten(), fars) if both_kinds else {}
    for far in fars:
        out[f"tar@far={far:g}"] = rates[far][0] if far in rates else math.nan
    return out


def _significant(value: Any, digits: int = 6) -> float:
    """``value`` rounded to ``digits`` significant digits (logged metrics pass through float32)."""
    number = float(value)
    return float(f"{number:.{digits}g}") if math.isfinite(number) else number


#: obfuscator settings left out of a table's ``setting``: training-only strengths, and the seed used only
#: when no generator is passed (the evaluation always passes one)
TRAINING_ONLY = ("_range", "jitter", "name", "eval_seed")


def describe_baseline(
    obfuscator: Any,
    *,
    method: str | None = None,
    settings: Mapping[str, Any] | None = None,
    dp: bool | None = None,
) -> dict[str, str]:
    """A baseline variant's description: its class, its ε semantics and its evaluation setting (from the
    obfuscator, or given: a report describing a baseline it cannot rebuild)."""
    settings = obfuscator.describe() if settings is None else settings
    shown = {k: v for k, v in settings.items() if not k.endswith(TRAINING_ONLY)}
    dp = getattr(obfuscator, "privacy_record", None) is not None if dp is None else dp
    return {
        "method": method or type(obfuscator).__name__,
        "sampler": "-",
        "semantics": "ε-DP on m-pixel neighbourhoods" if dp else "no DP",
        "setting": ", ".join(f"{k}={v}" for k, v in shown.items()) or "-",
    }


def baseline_privacy_columns(obfuscator: object) -> dict[str, float]:
    """Privacy columns of a baseline obfuscator: its own record's ε when it has one (DP-Pix), else none."""
    record_of = getattr(obfuscator, "privacy_record", None)
    if record_of is None:
        return {}
    record = record_of()
    certified = record.epsilon_certified if record.certified else math.nan
    return {
        "epsilon_nominal": float(record.epsilon_nominal),
        "epsilon_certified": float(certified),
        "delta_audited": float(record.delta or 0.0) if record.certified else math.nan,
        "certified": float(record.certified),
    }


def variant_rows(
    variants: Mapping[str, Mapping[str, Any]],
    evaluators: Sequence[str],
    metrics: Mapping[str, Any],
    fars: Sequence[float],
) -> list[dict[str, Any]]:
    """One table row per variant from logged ``test/<variant>/<metric>`` values.

    ``variants``: name → description (``method``, ``sampler``, ``semantics``, ``setting``)."""
    rows = []
    for name, description in variants.items():

        def get(key: str, name: str = name) -> Any:
            return metrics.get(f"test/{name}/{key}", math.nan)

        row: dict[str, Any] = {"variant": name, **description}
        # numbers only (NaN where a column does not apply): `semantics` says what they mean
        for column, key in (("ε nominal", "epsilon_nominal"), ("ε certified", "epsilon_certified")):
            row[column] = _significant(get(key))
        row["δ audited"] = get("delta_audited")
        for column in ("released_cos", "ssim", "psnr", "lpips"):
            row[column] = get(column)
        for evaluator in evaluators:
            for column in ("id_cos", "rank1", *(f"tar@far={far:g}" for far in fars)):
                row[f"{evaluator} {column}"] = get(f"{evaluator}/{column}")
        rows.append(row)
    return rows
