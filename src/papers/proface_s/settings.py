"""PRO-Face S's declarations for the shared machinery: tiny test settings and cost-benchmark entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from src.papers.proface_s.keys import random_key_maps
from src.papers.proface_s.networks import ProFaceSNet
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings

_TINY_TARGETS = "{tiny_data}/celeba/img_align_celeba"
_TINY_CARTOONS = "{tiny_data}/cartoonset"

#: hybridAll children 3, 4, 5: FaceShifter and SimSwap with random, narrow networks (published ones are not on
#: a test machine; the swap still runs at its real 256 / 224 px), miniature targets and stickers.
_TINY_HYBRID_ALL = (
    *(
        override
        for child in (3, 4)
        for override in (
            f"model.obfuscator.obfuscators.{child}.weights=null",
            f"model.obfuscator.obfuscators.{child}.targets.source={_TINY_TARGETS}",
            f"model.obfuscator.obfuscators.{child}.eval_targets.source={_TINY_TARGETS}",
        )
    ),
    "+model.obfuscator.obfuscators.3.generator_options.base_channels=2",
    "+model.obfuscator.obfuscators.4.generator_options.ngf=4",
    "+model.obfuscator.obfuscators.4.generator_options.n_blocks=1",
    f"model.obfuscator.obfuscators.5.targets.source={_TINY_CARTOONS}",
    f"model.obfuscator.obfuscators.5.eval_targets.source={_TINY_CARTOONS}",
)

register_tiny_settings(
    "proface_s",
    TinySettings(
        model=("model.perceptual.kind=lpips_random", "model.perceptual.net=alex"),
        experiments={"proface_s/hybrid_all_*": _TINY_HYBRID_ALL},
        # the Obfs row's tiny run is hybrid_all_celeba's with another wrong-recovery loss mode (unit-tested in
        # tests/test_proface_s.py), the leaderboard demo's is demo_synthetic's with fewer steps: slow tests,
        # built by default
        slow=("proface_s/hybrid_all_celeba_obfs", "proface_s/leaderboard_demo"),
    ),
)


def _passes(net: nn.Module, batch: int, size: int, device: torch.device) -> Mapping[str, Callable[[], Any]]:
    """Protect and recover (default ``ẑ`` from the key) over fixed inputs in [-1, 1], one broadcast key."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    x = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    x_o = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    key = random_key_maps(1, size, size, g).to(device)
    with torch.inference_mode():
        x_p, _ = net(x, x_o, key)
    return {"protect": lambda: net(x, x_o, key), "recover": lambda: net.inverse(x_p, key)}


register_cost(
    "proface_s",
    CostEntry(
        network="PRO-Face S",
        build=lambda: ProFaceSNet(init_seed=0).eval(),
        params=1_073_040,
        sizes=((112, "paper's measurement size"), (256, "run size")),
        passes=_passes,
    ),
)
