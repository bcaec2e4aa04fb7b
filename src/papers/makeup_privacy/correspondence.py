"""Makeup-privacy's "style patch activation": non-parametric, semantics-guided warping of reference features.

At each VGG level ``i`` (level 0 = relu4_1, level 1 = relu3_1, ...; ``multiscale_level`` levels) the
reference (makeup) feature map is cut into non-overlapping ``2^i × 2^i`` patches ``q_j`` (stride = size,
row-major). Every source patch ``p`` at the same stride is matched against all of them:

- feature response ``r_j = <p, q_j> / (‖q_j‖ + ε)`` (a strided convolution with the reference patches);
- semantic response ``s_j``: the same on the face-parsing maps, resized (nearest) to the level's size;
- weights ``w = softmax_j(r ⊙ s)`` (no temperature), warped patch ``Σ_j w_j q_j``, folded back in place.

Inside the protected region (background, eyes, mouth interior, hair, cloth) the warped features are then
replaced by the source features: ``warped · (1 − m) + source · m`` with the mask ``m`` resized likewise.

The original cuts patches out of the whole batch at once and so needs batch size 1; here every sample is
matched only against its own reference and the whole batch is computed with ``unfold`` / ``einsum``, which
gives the per-sample results. Two further variants of the original are options: no semantics
(``softmax_j(r)``) and hard matching (the arg-max patch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable

#: added to every patch norm (the original's value, there only in the semantic variant)
EPS = 1e-6
#: the logit of the true class in :func:`soft_one_hot` (the original's ``13``)
ONE_HOT_SHARPNESS = 13.0


def soft_one_hot(labels: Tensor, num_classes: int, sharpness: float = ONE_HOT_SHARPNESS) -> Tensor:
    """Integer label maps ``[B, 1, H, W]`` → soft class maps ``[B, num_classes, H, W]``: the softmax over
    classes of ``sharpness · one_hot`` (≈ 0.99 on the true class for 15 classes). Labels outside
    ``[0, num_classes)`` get the uniform distribution. The original converts MT label maps so when it tests
    on MT data (its ``one2multi_chanels``; the constant shift it adds cancels in the softmax); in training it
    feeds the raw label map (the ``faithful_bugs`` path)."""
    if labels.ndim != 4 or labels.shape[1] != 1:
        raise ValueError(f"soft_one_hot: expected labels [B, 1, H, W], got {tuple(labels.shape)}")
    classes = torch.arange(num_classes, device=labels.device).view(1, num_classes, 1, 1)
    logits = (labels.round().long() == classes).float() * sharpness
    return torch.softmax(logits, dim=1)


def unfold_patches(maps: Tensor, patch_size: int) -> Tensor:
    """Non-overlapping ``patch_size²`` patches of ``[B, C, H, W]`` → ``[B, C·p·p, N]``, row-major over the
    ``⌊H/p⌋ × ⌊W/p⌋`` positions; within a patch, channel-major (the layout of a ``[C, p, p]`` tensor)."""
    return F.unfold(maps, kernel_size=patch_size, stride=patch_size)


def correspondence_logits(
    x_features: Tensor,
    y_features: Tensor,
    x_semantic: Tensor | None = None,
    y_semantic: Tensor | None = None,
    patch_size: int = 1,
    eps: float = EPS,
) -> Tensor:
    """Matching scores ``[B, L, N]`` of each source patch (``L`` positions) against each reference patch
    (``N``): the feature response, times the semantic response when both parsing maps are given (they must
    already have the features' size)."""
    x_patches = unfold_patches(x_features, patch_size)
    y_patches = unfold_patches(y_features, patch_size)
    norms = y_patches.norm(dim=1) + eps  # [B, N]
    logits = torch.einsum("bkl,bkn->bln", x_patches, y_patches) / norms.unsqueeze(1)
    if (x_semantic is None) != (y_semantic is None):
        raise ValueError("correspondence_logits: give both parsing maps or neither")
    if x_semantic is not None and y_semantic is not None:
        xs_patches = unfold_patches(x_semantic, patch_size)
        ys_patches = unfold_patches(y_semantic, patch_size)
        s_norms = ys_patches.norm(dim=1) + eps
        logits = logits * (torch.einsum("bkl,bkn->bln", xs_patches, ys_patches) / s_norms.unsqueeze(1))
    return logits


def correspondence_weights(logits: Tensor, soft: bool = True) -> Tensor:
    """Warp weights ``[B, L, N]`` from the scores: softmax over the reference patches, or (``soft=False``)
    the one-hot arg-max."""
    if soft:
        return torch.softmax(logits, dim=2)
    return F.one_hot(logits.argmax(dim=2), logits.shape[2]).to(logits.dtype)


def warp_patches(weights: Tensor, y_features: Tensor, patch_size: int, size: tuple[int, int]) -> Tensor:
    """``Σ_j w_j q_j`` for every source position, folded back to ``[B, C, *size]``. Rows or columns left
    over when the side is not a multiple of ``patch_size`` stay zero (as in the original)."""
    warped = torch.einsum("bln,bkn->bkl", weights, unfold_patches(y_features, patch_size))
    return F.fold(warped, output_size=size, kernel_size=patch_size, stride=patch_size)


def resize_nearest(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize to ``size`` (for the 256-px maps and the 1/8 or 1/4 levels: every 8th or
    4th pixel, the original's ``interpolate(scale_factor=1/8 or 1/4, mode="nearest")``)."""
    return maps if tuple(maps.shape[-2:]) == tuple(size) else F.interpolate(maps, size=size, mode="nearest")


def warp_level(
    x_features: Tensor,
    y_features: Tensor,
    x_semantic: Tensor | None = None,
    y_semantic: Tensor | None = None,
    patch_size: int = 1,
    soft: bool = True,
    eps: float = EPS,
) -> Tensor:
    """Reference features ``y_features`` warped onto the layout of ``x_features`` (both ``[B, C, H, W]``)."""
    if x_features.shape[:2] != y_features.shape[:2]:
        raise ValueError(
            f"warp_level: source {tuple(x_features.shape)} and reference {tuple(y_features.shape)} differ "
            "in batch or channels"
        )
    logits = correspondence_logits(x_features, y_features, x_semantic, y_semantic, patch_size, eps)
    weights = correspondence_weights(logits, soft)
    return warp_patches(weights, y_features, patch_size, (x_features.shape[2], x_features.shape[3]))


@buildable
class SemanticCorrespondence(nn.Module):
    """The correspondence network (no parameters): warps the reference's VGG features onto the source.

    ``multiscale_level`` levels are warped (2: relu4_1 with 1×1 patches and relu3_1 with 2×2 patches).
    ``semantic``: guide the matching with the parsing maps (the original's default; ``False`` is its
    ``no_mask`` variant). ``soft``: softmax weights (``False``: hard arg-max, the original's ``no_soft``).
    """

    def __init__(
        self, multiscale_level: int = 2, semantic: bool = True, soft: bool = True, eps: float = EPS
    ) -> None:
        super().__init__()
        if not 1 <= multiscale_level <= 4:
            raise ValueError(f"SemanticCorrespondence: multiscale_level must be 1..4, got {multiscale_level}")
        self.multiscale_level = int(multiscale_level)
        self.semantic, self.soft, self.eps = bool(semantic), bool(soft), float(eps)

    def forward(
        self,
        x_features: Sequence[Tensor],
        y_features: Sequence[Tensor],
        x_semantic: Tensor | None = None,
        y_semantic: Tensor | None = None,
        x_protect: Tensor | None = None,
    ) -> list[Tensor]:
        """Warped reference features, one per level (level 0 first, each shaped like the source's).

        ``x_features`` / ``y_features``: source / reference VGG features, deepest first (as
        :class:`~src.papers.makeup_privacy.vgg.VGG19Features` returns them). ``x_semantic`` /
        ``y_semantic``: their parsing maps ``[B, K, H, W]`` at image size (class probabilities, e.g.
        :func:`soft_one_hot` of label maps); needed when ``semantic``. ``x_protect``: the source's protected
        region ``[B, 1, H, W]`` in [0, 1] at image size; ``None`` keeps the warped features everywhere.
        """
        if len(x_features) < self.multiscale_level or len(y_features) < self.multiscale_level:
            raise ValueError(
                f"SemanticCorrespondence: {self.multiscale_level} levels need as many feature maps, got "
                f"{len(x_features)} and {len(y_features)}"
            )
        if self.semantic and (x_semantic is None or y_semantic is None):
            raise ValueError("SemanticCorrespondence: semantic=True needs both parsing maps")
        warped: list[Tensor] = []
        for level in range(self.multiscale_level):
            x, y = x_features[level], y_features[level]
            size = (x.shape[2], x.shape[3])
            xs = ys = None
            if self.semantic and x_semantic is not None and y_semantic is not None:
                xs, ys = (
                    resize_nearest(x_semantic, size),
                    resize_nearest(y_semantic, (y.shape[2], y.shape[3])),
                )
            out = warp_level(x, y, xs, ys, 2**level, self.soft, self.eps)
            if x_protect is not None:
                mask = resize_nearest(x_protect, size)
                out = out * (1 - mask) + x * mask
            warped.append(out)
        return warped
