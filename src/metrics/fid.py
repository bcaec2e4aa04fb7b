"""Fréchet Inception Distance (FID) between two image sets, e.g. protected vs original faces: torchmetrics'
``FrechetInceptionDistance`` with the Inception weights taken from the weights manifest (never downloaded).

Conventions
-----------
* **Inputs** are ``[B, 3, H, W]`` RGB images, floats in ``[0, 1]`` (the project convention) or ``uint8``.
  Float images are quantised to 8 bits the way an image file stores them (``floor(255 x + 0.5)``, as
  ``torchvision.utils.save_image``; torchmetrics' own ``normalize=True`` truncates instead), so an FID of
  tensors equals the FID of the PNGs written from them.
* **Feature extractor** (default): torch-fidelity's ``FeatureExtractorInceptionV3`` (2048-d pool features;
  the TensorFlow FID Inception of Heusel et al. converted to PyTorch) with the TF1-compatible bilinear resize
  to 299 px (``antialias=False``), i.e. the standard FID that torch-fidelity computes. torchmetrics' default
  ``antialias=True`` gives slightly different numbers; pass ``antialias=True`` to get those.
* **Weights**: ``src.weights.resolve("fid-inception-v3")`` (sha256-checked). The file is first read with
  ``weights_only=True``, so only a plain state dict ever reaches torch-fidelity's unpickling loader. A
  missing file raises :class:`src.weights.MissingWeightsError` naming the file, where to put it and the
  fetch command.
* **Custom features** (``feature=nn.Module``, e.g. a small random network in tests): the module receives
  the images as float32 in ``[0, 1]`` (after the same 8-bit quantisation) and returns ``[B, F]``; no
  weights are needed. Give it a ``num_features`` attribute, or torchmetrics probes it once with a random
  3×299×299 image.
* The statistics (sums and outer-product sums, float64) are reduced with ``sum`` across processes, so the DDP
  value equals the single-process one; a ``DistributedSampler`` that pads with duplicates adds them.
* FID is a statistic of two sets (not a mean of per-image values), so there is no per-image functional form.
  Covariances are unbiased (``N - 1``) and ``Tr sqrt(Σ₁Σ₂)`` is computed from the eigenvalues of ``Σ₁Σ₂``
  (torchmetrics); checked against ``scipy.linalg.sqrtm`` (``docs/metrics.md``, "FID").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from src.metrics._checks import check_finite, check_tensor
from src.weights import WeightsError, resolve

__all__ = ["FID", "FID_INCEPTION_WEIGHTS", "fid_inception_weights"]

#: Manifest name (``src/weights/manifest.yaml``) of the FID Inception-v3 weights.
FID_INCEPTION_WEIGHTS = "fid-inception-v3"

#: Feature sizes the default Inception extractor offers (its pooling taps).
_INCEPTION_FEATURES = (64, 192, 768, 2048)

#: Float images may exceed [0, 1] by this much (rounding in a generator's output) before they are refused.
_RANGE_SLACK = 1e-4


def fid_inception_weights() -> str:
    """Path of the verified FID Inception weights, after checking they load as a plain state dict.

    Raises :class:`src.weights.MissingWeightsError` / :class:`src.weights.ChecksumMismatchError` (from
    :func:`src.weights.resolve`) or :class:`src.weights.WeightsError` when the file is not a state dict.
    """
    path = resolve(FID_INCEPTION_WEIGHTS)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means: not a plain state dict
        raise WeightsError(f"FID: {path} does not load as a plain state dict ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"FID: {path} is not a state dict of tensors")
    return str(path)


def _to_uint8(name: str, images: object) -> Tensor:
    """Validate ``[B, 3, H, W]`` images and return them as ``uint8``: ``uint8`` input as it is, float input in
    ``[0, 1]`` as ``floor(255 x + 0.5)`` (clamped), the quantisation of an 8-bit image file."""
    images = check_tensor(name, "images", images)
    if images.ndim != 4 or images.shape[1] != 3 or images.numel() == 0:
        raise ValueError(f"{name}: expected RGB images of shape [B, 3, H, W], got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ValueError(f"{name}: images must be uint8 or floating point in [0, 1], got {images.dtype}")
    check_finite(name, "images", images)
    lo, hi = (float(v) for v in torch.aminmax(images.detach()))
    if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
        raise ValueError(
            f"{name}: float images must be in [0, 1], got values in [{lo:.6g}, {hi:.6g}] "
            "(pass [0, 1] floats or uint8 in [0, 255])"
        )
    return (images.detach().float() * 255 + 0.5).clamp_(0, 255).to(torch.uint8)


class FID(FrechetInceptionDistance):
    """FID of a *real* set (e.g. original images) and a *fake* set (e.g. protected images); lower is closer.

    ``FID()`` uses the manifest's Inception weights (2048-d features; ``feature=64/192/768`` for the other
    taps); ``FID(feature=module)`` uses any feature network instead (see the module docstring).
    ``update(images, real=...)`` adds one batch to one set; ``compute()`` returns the float32 scalar FID and
    needs at least 2 images in each set. ``reset_real_features=False`` keeps the real statistics across
    ``reset()`` (one original set, several protected ones). Other keyword arguments go to
    :class:`torchmetrics.Metric`.
    """

    def __init__(
        self,
        feature: int | nn.Module = 2048,
        *,
        antialias: bool = False,
        reset_real_features: bool = True,
        **kwargs: object,
    ) -> None:
        if isinstance(feature, nn.Module):
            super().__init__(
                feature=feature, reset_real_features=reset_real_features, normalize=True, **kwargs
            )
        elif isinstance(feature, int) and not isinstance(feature, bool) and feature in _INCEPTION_FEATURES:
            super().__init__(
                feature=feature,
                reset_real_features=reset_real_features,
                normalize=False,
                feature_extractor_weights_path=fid_inception_weights(),
                antialias=antialias,
                **kwargs,
            )
        else:
            raise ValueError(
                f"FID: feature must be one of {_INCEPTION_FEATURES} (Inception taps) or an nn.Module, "
                f"got {feature!r}"
            )

    def update(self, images: Tensor, real: bool) -> None:  # type: ignore[override]
        """Add one batch of ``[B, 3, H, W]`` images (float in ``[0, 1]`` or ``uint8``) to one set."""
        if not isinstance(real, bool):
            raise ValueError(f"FID: `real` must be a bool, got {real!r}")
        pixels = _to_uint8("FID", images)
        if self.used_custom_model:
            super().update(pixels.float() / 255, real=real)
        else:
            super().update(pixels, real=real)

    def compute(self) -> Tensor:
        """FID of the two sets seen so far (all ranks); ValueError when a set has fewer than 2 images."""
        n_real, n_fake = int(self.real_features_num_samples), int(self.fake_features_num_samples)
        if n_real < 2 or n_fake < 2:
            raise ValueError(
                f"FID: needs at least 2 images in each set, got {n_real} real and {n_fake} fake "
                "(update(images, real=True) / update(images, real=False))"
            )
        value = super().compute()
        if not math.isfinite(float(value)):
            raise ValueError("FID: the distance is not finite (non-finite features?)")
        return value
