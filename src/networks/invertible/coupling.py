"""Conditional affine coupling block (HiNet ``INV_block_affine`` form) and a stack of them.

The state ``x`` (``[B, c1 + c2, ...]``) is split along dim 1 into ``x1`` (``c1`` channels) and ``x2``
(``c2``). With a condition ``k`` (``[B, ck, ...]``, concatenated to **every** sub-network input; ``None`` when
``cond_channels == 0``) and ``e(s) = exp(2c·(sigmoid(s) − 0.5))`` (scale kept in ``[e^-c, e^c]``)::

    forward:  y1 = x1 ⊙ e(ψ([x2, k])) + φ([x2, k])
              y2 = x2 ⊙ e(ρ([y1, k])) + η([y1, k])
    inverse:  x2 = (y2 − η([y1, k])) / e(ρ([y1, k]))
              x1 = (y1 − φ([x2, k])) / e(ψ([x2, k]))

The inverse is closed-form (exact up to float rounding) whatever the sub-networks compute. The sub-networks
come from a factory ``subnet(in_channels, out_channels) -> nn.Module``: the default is the zero-initialised
:class:`~src.networks.invertible.dense.ResidualDenseBlock` (so a fresh block is the identity), but any module
mapping ``[B, in, ...]`` to ``[B, out, ...]`` works (e.g. an MLP on ``[B, D]`` vectors). ``log_det`` (the sum
of the log scales per sample) is available for flow likelihoods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from src.networks.invertible.dense import ResidualDenseBlock

__all__ = ["AffineCouplingBlock", "CouplingStack", "SubnetFactory"]

SubnetFactory = Callable[[int, int], nn.Module]


class AffineCouplingBlock(nn.Module):
    """Affine coupling on both halves, conditioned on ``cond`` (see the module docstring).

    ``clamp`` is ``c`` of ``e(s)`` (PRO-Face S / HiNet: 2.0). Sub-network attribute names follow the paper's
    symbols: ``psi`` (scale of ``x1``), ``phi`` (shift of ``x1``), ``rho`` (scale of ``x2``), ``eta`` (shift
    of ``x2``); in the original HiNet code they are ``p``, ``f``, ``r``, ``y``.
    """

    def __init__(
        self,
        channels1: int,
        channels2: int,
        cond_channels: int = 0,
        clamp: float = 2.0,
        subnet: SubnetFactory | None = None,
    ) -> None:
        super().__init__()
        if min(channels1, channels2) < 1 or cond_channels < 0:
            raise ValueError(
                f"AffineCouplingBlock: need channels1, channels2 >= 1 and cond_channels >= 0, got "
                f"{channels1}, {channels2}, {cond_channels}"
            )
        if not clamp > 0:
            raise ValueError(f"AffineCouplingBlock: clamp must be positive, got {clamp}")
        factory = subnet or partial(ResidualDenseBlock)
        self.channels1, self.channels2, self.cond_channels = (
            int(channels1),
            int(channels2),
            int(cond_channels),
        )
        self.clamp = float(clamp)
        self.psi = factory(channels2 + cond_channels, channels1)
        self.phi = factory(channels2 + cond_channels, channels1)
        self.rho = factory(channels1 + cond_channels, channels2)
        self.eta = factory(channels1 + cond_channels, channels2)

    def log_scale(self, s: Tensor) -> Tensor:
        """``log e(s) = 2c·(sigmoid(s) − 0.5)``, in ``[-c, c]``."""
        return 2.0 * self.clamp * (torch.sigmoid(s) - 0.5)

    def _with(self, x: Tensor, cond: Tensor | None) -> Tensor:
        if cond is None:
            if self.cond_channels:
                raise ValueError(
                    f"AffineCouplingBlock: built for {self.cond_channels} condition channels, got None"
                )
            return x
        if cond.shape[1] != self.cond_channels:
            raise ValueError(
                f"AffineCouplingBlock: condition has {cond.shape[1]} channels, expected {self.cond_channels}"
            )
        return torch.cat((x, cond), dim=1)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] != self.channels1 + self.channels2:
            raise ValueError(
                f"AffineCouplingBlock: state has {x.shape[1]} channels, expected "
                f"{self.channels1} + {self.channels2}"
            )
        return x[:, : self.channels1], x[:, self.channels1 :]

    def forward(
        self, x: Tensor, cond: Tensor | None = None, return_log_det: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Forward pass on the concatenated state (with ``return_log_det``: also the per-sample log-det)."""
        x1, x2 = self._split(x)
        h2 = self._with(x2, cond)
        s1 = self.log_scale(self.psi(h2))
        y1 = x1 * torch.exp(s1) + self.phi(h2)
        h1 = self._with(y1, cond)
        s2 = self.log_scale(self.rho(h1))
        y2 = x2 * torch.exp(s2) + self.eta(h1)
        y = torch.cat((y1, y2), dim=1)
        if return_log_det:
            return y, s1.flatten(1).sum(1) + s2.flatten(1).sum(1)
        return y

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """Closed-form inverse of :meth:`forward`."""
        y1, y2 = self._split(y)
        h1 = self._with(y1, cond)
        x2 = (y2 - self.eta(h1)) * torch.exp(-self.log_scale(self.rho(h1)))
        h2 = self._with(x2, cond)
        x1 = (y1 - self.phi(h2)) * torch.exp(-self.log_scale(self.psi(h2)))
        return torch.cat((x1, x2), dim=1)


class CouplingStack(nn.Module):
    """A sequence of coupling blocks sharing one condition; ``inverse`` runs them backwards."""

    def __init__(self, blocks: Sequence[AffineCouplingBlock]) -> None:
        super().__init__()
        if len(blocks) == 0:
            raise ValueError("CouplingStack: needs at least one block")
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Apply every block in order."""
        for block in self.blocks:
            x = block(x, cond)
        return x

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """Invert every block, last first."""
        for block in reversed(self.blocks):
            y = block.inverse(y, cond)
        return y
