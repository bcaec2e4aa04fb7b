"""The original's weight initialisation of the decoder and generator (InfoSwap ``weight_init``), and the
channel divisor that shrinks both for CPU tests and the demo."""

from __future__ import annotations

from torch import nn

#: ``width`` values the decoder and generator accept: each divides their smallest channel count (32).
WIDTHS = (1, 2, 4, 8, 16, 32)


def infoswap_init(module: nn.Module) -> None:
    """Linear ~ N(0, 0.001²) with zero bias; Conv2d and ConvTranspose2d weights Kaiming-normal (fan-in)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.001)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.kaiming_normal_(module.weight)


def check_width(owner: str, width: object) -> int:
    """``width`` if it is one of :data:`WIDTHS`, else a ValueError naming ``owner``."""
    if isinstance(width, bool) or width not in WIDTHS:
        raise ValueError(f"{owner}: width must be one of {WIDTHS} (1 = the published network), got {width!r}")
    return int(width)


def divided(channels: int, width: int) -> int:
    """``channels`` of the published network at channel divisor ``width``."""
    return channels // width
