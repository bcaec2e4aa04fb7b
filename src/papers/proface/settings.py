"""PRO-Face's declarations for the shared machinery: tiny test settings and cost-benchmark entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from src.papers.proface.networks import ProFaceFusionNet
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings

#: Face-swap rows: random swap networks (published ones are not on a test machine), miniature CelebA targets.
_TINY_SWAPS = (
    "model.obfuscator.weights=null",
    "model.obfuscator.targets={tiny_data}/celeba/img_align_celeba",
    "model.obfuscator.eval_targets={tiny_data}/celeba/img_align_celeba",
)
#: Paper-scale rows: published recognizer weights are not on a test machine, so the recognizers start from
#: random weights (same architecture, same code path); PRO-Face verifies 10-fold on pairs and the tiny pair
#: lists hold one fold, so tiny runs derive pairs from the identities of one 8-image batch.
_TINY_PAPER_SCALE = (
    "model.recognizer.weights=null",
    "datamodule.eval_protocol=images",
    "datamodule.batch_size=8",
)

register_tiny_settings(
    "proface",
    TinySettings(
        model=("model.perceptual.kind=lpips_random", "model.perceptual.net=alex"),
        experiments={
            "proface/celeba/*": _TINY_PAPER_SCALE,
            # the released embedders are all one architecture: the fixture's released file stands in for each
            "proface/released/*": (
                *_TINY_PAPER_SCALE,
                "model.embedder_weights={fixtures}/proface_release/blur_31_2_8_IResNet50_ep13_BEST.pth",
            ),
            "proface/released/vggface2/*": ("datamodule.val_identities=0",),  # test split only
            "proface/*/simswap/*": _TINY_SWAPS,
            "proface/*/faceshifter/*": _TINY_SWAPS,
        },
        slow=("proface/celeba/*", "proface/released/*"),
        needs_fixtures=("proface/released/*",),
    ),
)


def _passes(net: nn.Module, batch: int, size: int, device: torch.device) -> Mapping[str, Callable[[], Any]]:
    """The protect pass over fixed inputs in [-1, 1] (the fusion network has no recover pass)."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    x = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    x_o = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    return {"protect": lambda: net(x, x_o)}


register_cost(
    "proface",
    CostEntry(
        network="PRO-Face",
        build=lambda: ProFaceFusionNet().eval(),
        params=217_062,
        sizes=((112, "run size"), (224, "SimSwap-row size")),
        passes=_passes,
    ),
)
