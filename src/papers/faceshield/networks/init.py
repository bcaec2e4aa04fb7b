"""The original's weight initialisation of the decoder and generator (InfoSwap ``weight_init``)."""

from __future__ import annotations

from torch import nn


def infoswap_init(module: nn.Module) -> None:
    """Linear ~ N(0, 0.001²) with zero bias; Conv2d and ConvTranspose2d weights Kaiming-normal (fan-in)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.001)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.kaiming_normal_(module.weight)
