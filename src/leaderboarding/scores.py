"""The leaderboard panel's metric functions: pure functions on tensors (images or embeddings), no I/O.

Every function returns plain floats under the leaderboard's column names (``docs``: the wide result table),
so a contender's row is the union of their dicts (identity columns get the recognizer's name as prefix):

* :func:`utility_scores` — SSIM, PSNR, LPIPS of protected vs original images (means over images);
* :func:`face_scores` — face-detection rate and landmark NME after protection;
* :func:`identity_scores` / :func:`pair_identity_scores` — rank-1, TAR@FAR and verification accuracy of a
  recognizer's embeddings, protected query vs original gallery (the ``prot_orig`` setting, "XDR");
* :func:`recovery_scores` — PSNR / SSIM of recoveries with the right and a wrong password;
* :func:`flag_rate` — share of protected faces a forgery detector flags as fake;
* :func:`dp_epsilons` — nominal and certified ε from a served method's ``privacy_record()``.

Images are ``[N, 3, S, S]`` float tensors in ``[0, 1]``; embeddings ``[N, D]``. Bad input raises
:class:`ValueError` naming the function and the argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.evaluation.identity_protocol import gallery_probe_split
from src.face.detection import FaceDetection
from src.metrics.face_consistency import face_consistency
from src.metrics.identity_settings import DISTANCES, identity_settings
from src.metrics.image_quality import PSNR_CAP_DB, psnr, ssim
from src.metrics.perceptual import LPIPS_NETS, lpips
from src.metrics.privacy.record import PrivacyRecord
from src.metrics.retrieval import retrieval_rank_k
from src.metrics.verification import verification_pairs

__all__ = [
    "DEFAULT_LPIPS_NET",
    "FLAG_THRESHOLD",
    "LPIPS_CHUNK",
    "dp_epsilons",
    "face_scores",
    "flag_rate",
    "identity_scores",
    "pair_identity_scores",
    "rank1_against_originals",
    "recovery_scores",
    "tar_key",
    "utility_scores",
]

#: LPIPS trunk of the panel: AlexNet, the default of :class:`src.metrics.perceptual.LPIPS` that the
#: project's evaluations report (weights resolved offline through ``src.weights``, never downloaded).
DEFAULT_LPIPS_NET = "alex"
#: fake-probability at or above which a forgery detector flags a face
FLAG_THRESHOLD = 0.5
#: images per LPIPS forward pass (bounds the network's activation memory)
LPIPS_CHUNK = 32
_RANGE_TOLERANCE = 1e-5


# ------------------------------------------------------------------------------------------ validation


def _fail(name: str, message: str) -> ValueError:
    return ValueError(f"{name}: {message}")


def _check_images(name: str, **images: Tensor) -> list[Tensor]:
    """Same-shape, non-empty, finite ``[N, 3, S, S]`` floating tensors in ``[0, 1]`` (float32 or wider)."""
    out: list[Tensor] = []
    shape = None
    for arg, x in images.items():
        if not isinstance(x, Tensor):
            raise _fail(name, f"`{arg}` must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] == 0:
            raise _fail(name, f"`{arg}` must be a non-empty [N, 3, S, S] image batch, got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise _fail(name, f"`{arg}` must be a floating tensor in [0, 1], got dtype {x.dtype}")
        if shape is not None and x.shape != shape:
            first = next(iter(images))
            raise _fail(name, f"`{arg}` has shape {tuple(x.shape)} but `{first}` has {tuple(shape)}")
        shape = x.shape
        x = x.detach()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        lo, hi = (float(v) for v in torch.aminmax(x))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise _fail(name, f"`{arg}` contains NaN or infinite values")
        if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
            raise _fail(name, f"`{arg}` must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        out.append(x.clamp(0.0, 1.0))
    return out


def _check_embeddings(name: str, **embeddings: Tensor) -> list[Tensor]:
    """Same-shape, finite ``[N, D]`` floating tensors without all-zero rows (cosine undefined)."""
    out: list[Tensor] = []
    shape = None
    for arg, x in embeddings.items():
        if not isinstance(x, Tensor):
            raise _fail(name, f"`{arg}` must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise _fail(name, f"`{arg}` must be a non-empty [N, D] embedding matrix, got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise _fail(name, f"`{arg}` must be floating point, got dtype {x.dtype}")
        if shape is not None and x.shape != shape:
            first = next(iter(embeddings))
            raise _fail(name, f"`{arg}` has shape {tuple(x.shape)} but `{first}` has {tuple(shape)}")
        shape = x.shape
        x = x.detach()
        if not bool(torch.isfinite(x).all()):
            raise _fail(name, f"`{arg}` contains NaN or infinite values")
        zero = int((torch.linalg.vector_norm(x.double(), dim=1) == 0).sum())
        if zero:
            raise _fail(name, f"`{arg}` has {zero} all-zero row(s); their cosine similarity is undefined")
        out.append(x)
    return out


def _check_labels(name: str, arg: str, labels: Tensor, n: int) -> Tensor:
    """A 1-D integer (or bool, for ``is_same``) tensor of length ``n`` on the CPU."""
    if not isinstance(labels, Tensor):
        raise _fail(name, f"`{arg}` must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise _fail(
            name, f"`{arg}` must be 1-D with {n} entries (one per row), got shape {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise _fail(name, f"`{arg}` must be an integer tensor, got dtype {labels.dtype}")
    return labels.detach().cpu()


def _check_far(name: str, far: float) -> float:
    if isinstance(far, bool) or not isinstance(far, int | float) or not 0 < float(far) < 1:
        raise _fail(name, f"far must be a number in (0, 1), got {far!r}")
    return float(far)


def _check_distance(name: str, distance: str) -> str:
    if distance not in DISTANCES:
        raise _fail(name, f"distance must be one of {DISTANCES}, got {distance!r}")
    return distance


# --------------------------------------------------------------------------------------------- utility


def _mean(values: Tensor) -> float:
    return float(values.double().mean())


def utility_scores(
    original: Tensor, protected: Tensor, *, lpips_net: str | None = DEFAULT_LPIPS_NET
) -> dict[str, float]:
    """``{"SSIM", "PSNR", "LPIPS"}`` of protected vs original images, each the mean over images.

    SSIM: :func:`src.metrics.image_quality.ssim` (Gaussian 11-tap window, valid interior); PSNR (dB): per
    image, capped at :data:`~src.metrics.image_quality.PSNR_CAP_DB` (an unchanged image would be +inf), as
    the project's ``PSNR`` metric; LPIPS v0.1 with the ``lpips_net`` trunk (:data:`DEFAULT_LPIPS_NET`), in
    chunks of :data:`LPIPS_CHUNK` images without gradients. The trunk weights must be present locally
    (:class:`src.weights.MissingWeightsError` otherwise, naming the file); ``lpips_net=None`` leaves LPIPS
    out on purpose and reports it as NaN.
    """
    name = "utility_scores"
    if lpips_net is not None and lpips_net not in LPIPS_NETS:
        raise _fail(name, f"lpips_net must be one of {LPIPS_NETS} or None, got {lpips_net!r}")
    original, protected = _check_images(name, original=original, protected=protected)
    scores = {
        "SSIM": _mean(ssim(protected, original)),
        "PSNR": _mean(psnr(protected, original, max_db=PSNR_CAP_DB)),
        "LPIPS": math.nan,
    }
    if lpips_net is not None:
        with torch.no_grad():
            values = [
                lpips(protected[i : i + LPIPS_CHUNK], original[i : i + LPIPS_CHUNK], net=lpips_net)
                for i in range(0, original.shape[0], LPIPS_CHUNK)
            ]
        scores["LPIPS"] = _mean(torch.cat(values))
    return scores


def recovery_scores(original: Tensor, recovered_right: Tensor, recovered_wrong: Tensor) -> dict[str, float]:
    """PSNR (dB, per image capped at 100 dB) and SSIM to the original of recoveries with the right password
    and with a wrong one, means over images. A reversible method should score high with the right key and
    low with a wrong one."""
    name = "recovery_scores"
    original, right, wrong = _check_images(
        name, original=original, recovered_right=recovered_right, recovered_wrong=recovered_wrong
    )
    return {
        "recovery PSNR (right key)": _mean(psnr(right, original, max_db=PSNR_CAP_DB)),
        "recovery PSNR (wrong key)": _mean(psnr(wrong, original, max_db=PSNR_CAP_DB)),
        "recovery SSIM (right key)": _mean(ssim(right, original)),
        "recovery SSIM (wrong key)": _mean(ssim(wrong, original)),
    }


# ---------------------------------------------------------------------------------------- faces found


def _to_uint8(images: Tensor) -> list[np.ndarray]:
    """``[N, 3, S, S]`` in [0, 1] → ``N`` contiguous ``[S, S, 3]`` uint8 RGB arrays (the detectors' input)."""
    array = images.float().mul(255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(a) for a in array]


def face_scores(original: Tensor, protected: Tensor, detector: Any) -> dict[str, float]:
    """Does a face detector still find the face, in the same place, after protection?

    ``detector``: a :class:`src.face.detection.FaceDetector` (e.g. ``build_detector("mtcnn")``; anything with
    its ``detect_batch``). Per image pair, :func:`src.metrics.face_consistency.face_consistency` of the
    largest faces. Returns

    * ``"face detection rate"``: the share of protected images with a face, **over the images whose
      original has one** (a face the detector misses in the original says nothing about protection); NaN
      when no original face is found;
    * ``"landmark NME"``: mean 5-landmark error over the original's inter-ocular distance, over images where
      both versions have a face; NaN when there is none;
    * ``"original faces found"``: how many originals have a face (the rate's denominator).
    """
    name = "face_scores"
    original, protected = _check_images(name, original=original, protected=protected)
    if not callable(getattr(detector, "detect_batch", None)):
        raise _fail(name, f"`detector` must have a detect_batch method, got {type(detector).__name__}")
    n = original.shape[0]
    found = detector.detect_batch(_to_uint8(original) + _to_uint8(protected))
    if not isinstance(found, Sequence) or len(found) != 2 * n:
        raise _fail(name, f"`detector.detect_batch` must return one detection list per image ({2 * n})")
    for i, detections in enumerate(found):
        if not all(isinstance(d, FaceDetection) for d in detections):
            raise _fail(
                name, f"`detector.detect_batch` returned something other than FaceDetection (image {i})"
            )
    rows = [face_consistency(found[i], found[n + i]) for i in range(n) if found[i]]
    detected = [row["detected"] for row in rows]
    nme = [row["landmark_nme"] for row in rows if not math.isnan(row["landmark_nme"])]
    return {
        "face detection rate": float(np.mean(detected)) if detected else math.nan,
        "landmark NME": float(np.mean(nme)) if nme else math.nan,
        "original faces found": float(len(rows)),
    }


# -------------------------------------------------------------------------------------------- identity


def tar_key(far: float) -> str:
    """The column name of TAR at ``far``: ``TAR@FAR=1e-3`` for 0.001 (powers of ten as ``1e-k``), else
    ``TAR@FAR=<far:g>`` (e.g. ``TAR@FAR=0.05``)."""
    far = _check_far("tar_key", far)
    exponent = round(math.log10(far))
    label = f"1e{exponent}" if math.isclose(far, 10.0**exponent, rel_tol=1e-12) else f"{far:g}"
    return f"TAR@FAR={label}"


def rank1_against_originals(probes: Tensor, gallery: Tensor, identity: Tensor) -> float:
    """Rank-1 of the project's identity protocol (:mod:`src.evaluation.identity_protocol`): the first image of
    each identity, in its ``gallery`` version (the original), is the gallery; every other image, in its
    ``probes`` version (protected), is a probe searching the whole gallery. The same number the obfuscation
    baselines' table reports as rank-1 for the same recognizer and images.

    ``probes`` and ``gallery`` are ``[N, D]`` embeddings of the same ``N`` images (row ``i`` of each is image
    ``i``). Cosine similarity; ties to the lower gallery index (as
    :func:`src.metrics.retrieval.retrieval_rank_k`).
    """
    name = "rank1_against_originals"
    probes, gallery = _check_embeddings(name, probes=probes, gallery=gallery)
    identity = _check_labels(name, "identity", identity, probes.shape[0]).long().cpu()
    try:
        gallery_at, probes_at = gallery_probe_split(identity)
    except ValueError as exc:
        raise _fail(name, str(exc)) from None
    p = torch.nn.functional.normalize(probes.float().cpu(), dim=1)
    g = torch.nn.functional.normalize(gallery.float().cpu(), dim=1)
    ranks = retrieval_rank_k(p[probes_at], identity[probes_at], g[gallery_at], identity[gallery_at], ks=(1,))
    return float(ranks["rank1"])


def _verification(
    name: str,
    original: Tensor,
    protected: Tensor,
    pairs: tuple[Tensor, Tensor, Tensor],
    *,
    far: float,
    num_folds: int,
    fold_ids: Tensor | None,
    distance: str,
) -> dict[str, float]:
    """TAR@FAR (k-fold mean, the protection papers' number) and k-fold accuracy of the ``prot_orig``
    setting of :func:`src.metrics.identity_settings.identity_settings`."""
    summary = identity_settings(
        original,
        pairs,
        protected=protected,
        distance=distance,
        settings=("prot_orig",),
        num_folds=num_folds,
        fold_ids=fold_ids,
        fars=(far,),
    )["prot_orig"]
    return {
        tar_key(far): float(summary["tar_at_far_fold_mean"][far]),
        "verification accuracy": float(summary["accuracy"]),
    }


def identity_scores(
    original: Tensor,
    protected: Tensor,
    identity: Tensor,
    *,
    far: float = 1e-3,
    num_pairs: int = 6000,
    pair_seed: int = 0,
    num_folds: int = 10,
    distance: str = "angular",
) -> dict[str, float]:
    """Privacy against one recognizer from its embeddings ``[N, D]`` of the original and protected images.

    * ``"rank-1"``: :func:`rank1_against_originals` — the first image of each identity, original, is the
      gallery; every other image, protected, is a probe (the project's identity protocol);
    * ``tar_key(far)`` (``"TAR@FAR=1e-3"``) and ``"verification accuracy"``: the ``prot_orig`` setting
      (protected query, original gallery) of :func:`src.metrics.identity_settings.identity_settings` on
      ``verification_pairs(identity, num_pairs, torch.Generator().manual_seed(pair_seed))`` with contiguous
      ``num_folds`` folds — exactly what :func:`src.evaluation.protection_protocol.evaluate_protection`
      reports for ``prot_orig`` in the images protocol with the same options (TAR: the k-fold mean,
      ``tar_at_far_fold_mean``; NaN when the training folds hold too few impostor pairs for ``far``).

    Lower is more private for all three.
    """
    name = "identity_scores"
    far = _check_far(name, far)
    distance = _check_distance(name, distance)
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 2 or num_pairs % 2:
        raise _fail(name, f"num_pairs must be a positive even integer, got {num_pairs!r}")
    if isinstance(pair_seed, bool) or not isinstance(pair_seed, int):
        raise _fail(name, f"pair_seed must be an integer, got {pair_seed!r}")
    original, protected = _check_embeddings(name, original=original, protected=protected)
    identity = _check_labels(name, "identity", identity, original.shape[0])
    scores = {"rank-1": rank1_against_originals(protected, original, identity)}
    pairs = verification_pairs(identity, num_pairs, torch.Generator().manual_seed(pair_seed))
    scores |= _verification(
        name, original, protected, pairs, far=far, num_folds=num_folds, fold_ids=None, distance=distance
    )
    return scores


def pair_identity_scores(
    original_a: Tensor,
    original_b: Tensor,
    protected_a: Tensor,
    protected_b: Tensor,
    is_same: Tensor,
    fold: Tensor,
    *,
    far: float = 1e-3,
    distance: str = "angular",
) -> dict[str, float]:
    """TAR@FAR and verification accuracy of a pairs protocol (e.g. LFW ``pairs.txt``) from ``[P, D]``
    embeddings of both sides of ``P`` pairs.

    As :func:`src.evaluation.protection_protocol.evaluate_protection` builds the pairs case: side ``a`` is
    the query, side ``b`` the gallery, so ``prot_orig`` compares ``protected_a`` with ``original_b``; the
    folds are the given ``fold`` ids (at least 2 distinct). ``original_a`` and ``protected_b`` are checked
    but do not enter ``prot_orig``. No rank-1: a pair list is not a closed-set gallery.
    """
    name = "pair_identity_scores"
    far = _check_far(name, far)
    distance = _check_distance(name, distance)
    original_a, original_b, protected_a, protected_b = _check_embeddings(
        name, original_a=original_a, original_b=original_b, protected_a=protected_a, protected_b=protected_b
    )
    n = original_a.shape[0]
    is_same = _check_labels(name, "is_same", is_same, n)
    if is_same.dtype != torch.bool and not bool(((is_same == 0) | (is_same == 1)).all()):
        raise _fail(name, "`is_same` must be boolean (or integer 0/1)")
    fold = _check_labels(name, "fold", fold, n)
    num_folds = int(torch.unique(fold).numel())
    if num_folds < 2:
        raise _fail(name, f"`fold` holds {num_folds} distinct fold(s); k-fold verification needs at least 2")
    idx = torch.arange(n)
    return _verification(
        name,
        torch.cat([original_a, original_b.to(original_a.device)]),
        torch.cat([protected_a, protected_b.to(protected_a.device)]).to(original_a.device),
        (idx, idx + n, is_same.bool()),
        far=far,
        num_folds=num_folds,
        fold_ids=fold,
        distance=distance,
    )


# --------------------------------------------------------------------------------------- flags and DP ε


def flag_rate(fake_probability: Tensor, threshold: float = FLAG_THRESHOLD) -> float:
    """Share of faces whose fake-probability (any shape, values in [0, 1]) is ``>= threshold``, i.e. flagged
    as forged by a detector; the threshold is rounded to the probabilities' dtype before comparing."""
    name = "flag_rate"
    if not isinstance(fake_probability, Tensor):
        raise _fail(name, f"`fake_probability` must be a torch.Tensor, got {type(fake_probability).__name__}")
    if fake_probability.numel() == 0 or not fake_probability.is_floating_point():
        raise _fail(
            name,
            f"`fake_probability` must be a non-empty floating tensor, got {fake_probability.dtype} "
            f"{tuple(fake_probability.shape)}",
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise _fail(name, f"threshold must be a number in [0, 1], got {threshold!r}")
    p = fake_probability.detach().flatten()
    level = torch.tensor(float(threshold), dtype=p.dtype)  # the threshold in the input's precision
    if p.dtype in (torch.float16, torch.bfloat16):
        p = p.float()
    if not bool(torch.isfinite(p).all()):
        raise _fail(name, "`fake_probability` contains NaN or infinite values")
    lo, hi = float(p.min()), float(p.max())
    if lo < 0 or hi > 1:
        raise _fail(name, f"`fake_probability` must lie in [0, 1] (probabilities), got [{lo:.4g}, {hi:.4g}]")
    # compared in the probabilities' dtype: a float32 0.9 is flagged at threshold 0.9
    return float((p >= level.to(p.dtype)).double().mean())


def _epsilon(name: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"privacy record `{key}` must be a number or None, got {value!r}")
    if not math.isfinite(float(value)) or value < 0:
        raise _fail(name, f"privacy record `{key}` must be a finite number >= 0, got {value!r}")
    return float(value)


def dp_epsilons(privacy_record: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(nominal ε, certified ε)`` of a served method's ``privacy_record()``; ``None`` where absent.

    Read generically: the top-level ``"epsilon"`` (nominal) and ``"epsilon_certified"`` when the method
    states them, otherwise the ``"formal_guarantee"`` :class:`~src.metrics.privacy.record.PrivacyRecord`
    (its dict or the record itself: ``epsilon_nominal``, ``epsilon_certified``). A method without a formal
    guarantee (``formal_guarantee`` None or absent, no ε keys) gives ``(None, None)``. The certified ε is
    ``None`` whenever the record says ``certified: False`` (e.g. a sampler with only a nominal ε).
    """
    name = "dp_epsilons"
    if not isinstance(privacy_record, Mapping):
        raise _fail(name, f"`privacy_record` must be a mapping, got {type(privacy_record).__name__}")
    guarantee = privacy_record.get("formal_guarantee")
    if isinstance(guarantee, PrivacyRecord):
        guarantee = guarantee.to_dict()
    if guarantee is not None and not isinstance(guarantee, Mapping):
        raise _fail(name, f"`formal_guarantee` must be a privacy-record dict or None, got {guarantee!r}")
    guarantee = guarantee or {}

    def pick(top: str, inner: str) -> float | None:
        if privacy_record.get(top) is not None:
            return _epsilon(name, top, privacy_record[top])
        return _epsilon(name, f"formal_guarantee.{inner}", guarantee.get(inner))

    nominal = pick("epsilon", "epsilon_nominal")
    certified = pick("epsilon_certified", "epsilon_certified")
    flags = [privacy_record.get("certified"), guarantee.get("certified")]
    if any(flag is False for flag in flags):
        certified = None
    return nominal, certified
