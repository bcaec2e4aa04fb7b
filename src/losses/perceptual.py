"""Perceptual training loss (LPIPS, ST-LPIPS, or a labelled random-trunk LPIPS) on ``[-1, 1]`` images.

PRO-Face and PRO-Face S train with LPIPS-VGG (lpips 0.1.4) on ``[-1, 1]`` images. The real LPIPS trunk is an
ImageNet file that no package ships (manifest entry ``lpips-vgg-backbone``; docs/papers/proface.md,
"Weights"), so the loss is configurable:

* ``kind="lpips"``: real LPIPS; the trunk comes through the weights manifest (a missing file is an error
  naming it and ``python -m src.weights fetch ...``), never substituted;
* ``kind="st_lpips"``: ST-LPIPS, whose full network ships with ``stlpips-pytorch`` — usable offline, but a
  different distance, logged as ``st_lpips_<net>``;
* ``kind="lpips_random"``: LPIPS heads on a seeded random trunk — plumbing only, logged as
  ``lpips_<net>_RANDOM``.

Unlike the metrics (:mod:`src.metrics.perceptual`), the loss does not reject values slightly outside
``[-1, 1]``: a network's unclamped output (PRO-Face's ``x_p``) is a legitimate input during training. The
frozen network is held outside the module tree, so it is neither trained, checkpointed nor replaced on load.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from src.config.buildable import buildable
from src.metrics._checks import check_finite
from src.metrics.perceptual import (
    LPIPS_NETS,
    ST_LPIPS_NETS,
    _cached,
    build_lpips_network,
    build_st_lpips_network,
    lpips_report_name,
    st_lpips_report_name,
)

KINDS = ("lpips", "st_lpips", "lpips_random")


@buildable
class PerceptualLoss(nn.Module):
    """Mean per-image perceptual distance between two ``[B, 3, H, W]`` batches in ``[-1, 1]``.

    ``report_name`` (``lpips_vgg``, ``st_lpips_vgg`` or ``lpips_vgg_RANDOM``) is the name to log it under.
    Differentiable with respect to both inputs.
    """

    def __init__(self, kind: str = "lpips", net: str = "vgg", seed: int = 0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"PerceptualLoss: kind must be one of {KINDS}, got {kind!r}")
        nets = ST_LPIPS_NETS if kind == "st_lpips" else LPIPS_NETS
        if net not in nets:
            raise ValueError(f"PerceptualLoss: net must be one of {nets} for kind={kind!r}, got {net!r}")
        self.kind, self.net, self.seed = kind, net, int(seed)
        if kind == "st_lpips":
            self.report_name = st_lpips_report_name(net)
            key: tuple[Any, ...] = ("st_lpips", net)
            network = _cached(key, lambda: build_st_lpips_network(net))
        else:
            random = kind == "lpips_random"
            self.report_name = lpips_report_name(net, random)
            key = ("lpips", net, random, self.seed)
            network = _cached(key, lambda: build_lpips_network(net, random, self.seed))
        self.__dict__["_network"] = network  # outside the module tree (see module docstring)

    def per_sample(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image distance ``[B]``."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"{self.report_name}: expected two RGB batches [B, 3, H, W] of one shape, got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        check_finite(self.report_name, "x", x.detach())
        network = self.__dict__["_network"]
        network.to(device=x.device)
        return network(x.float(), y.float())

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Batch-mean distance (a scalar)."""
        return self.per_sample(x, y).mean()

    def extra_repr(self) -> str:
        """Show what is computed."""
        return f"name={self.report_name}"
