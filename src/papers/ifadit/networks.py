"""iFADIT's own networks: the key-conditioned invertible identity flow ``F``, the latent mapper ``M`` and the
identity compensation MLP (ICL), plus the key sampler and the identity/attribute fusion.

The flow is built with FrEIA (the maintained invertible-network library the authors use): a ``SequenceINN``
of four ``AllInOneBlock`` s on the 512-d identity, each conditioned on the 512-d key condition ``c``, with
the authors' sub-network (in → 256 → 128 → 128 → 256 → out, LeakyReLU 0.01). ``F(z; c)`` anonymises and
its inverse recovers; another key gives another identity. Provenance: docs/papers/ifadit.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import numpy as np
import torch
from torch import Tensor, nn

from src.config.buildable import buildable

IDENTITY_DIM = 512
#: the StyleGAN2-256 W+ rows the attribute encoder and the mapper produce
STYLE_ROWS = 14


def identity_subnet(dims_in: int, dims_out: int) -> nn.Sequential:
    """The authors' coupling sub-network, Xavier-normal weights and zero biases (the authors' init loop
    iterated over the flow's blocks, not over these Linear layers, so it never ran: see the docs)."""
    widths = (dims_in, 256, 128, 128, 256, dims_out)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        linear = nn.Linear(a, b)
        nn.init.xavier_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(widths) - 2:
            layers.append(nn.LeakyReLU(negative_slope=0.01))
    return nn.Sequential(*layers)


@buildable
class IdentityFlow(nn.Module):
    """``F``: a conditional invertible map of identity vectors, ``z' = F(z; c)``, ``z = F⁻¹(z'; c)``.

    ``blocks`` FrEIA ``AllInOneBlock`` s (affine clamp ``clamp``, softplus global affine, a fixed
    random channel permutation each). FrEIA draws those permutations from NumPy's global RNG; they are
    drawn here from ``permutation_seed`` (the global state is restored) and are stored in the state dict,
    so a checkpoint carries them.
    """

    def __init__(
        self,
        dim: int = IDENTITY_DIM,
        cond_dim: int = IDENTITY_DIM,
        blocks: int = 4,
        clamp: float = 2.0,
        permutation_seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.cond_dim = int(dim), int(cond_dim)
        state = np.random.get_state()
        np.random.seed(int(permutation_seed))
        try:
            self.inn = Ff.SequenceINN(self.dim)
            for _ in range(int(blocks)):
                self.inn.append(
                    Fm.AllInOneBlock,
                    cond=0,
                    cond_shape=(self.cond_dim,),
                    subnet_constructor=identity_subnet,
                    affine_clamping=float(clamp),
                )
        finally:
            np.random.set_state(state)

    def _check(self, z: Tensor, c: Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.dim or c.ndim != 2 or c.shape[1] != self.cond_dim:
            raise ValueError(
                f"IdentityFlow: expected z [B, {self.dim}] and c [B, {self.cond_dim}], got {tuple(z.shape)} "
                f"and {tuple(c.shape)}"
            )
        if c.shape[0] != z.shape[0]:
            raise ValueError(f"IdentityFlow: {z.shape[0]} identities but {c.shape[0]} key conditions")

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        """Anonymise: ``F(z; c)``."""
        self._check(z, c)
        out, _ = self.inn(z, c=[c])
        return out

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        """Recover: ``F⁻¹(z; c)``."""
        self._check(z, c)
        out, _ = self.inn(z, c=[c], rev=True)
        return out


def mlp(widths: tuple[int, ...], slope: float = 0.2) -> nn.Sequential:
    """Linear layers of ``widths``, LeakyReLU(``slope``) between them, Kaiming-normal init (the authors')."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        linear = nn.Linear(a, b)
        nn.init.kaiming_normal_(linear.weight, a=slope)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(widths) - 2:
            layers.append(nn.LeakyReLU(negative_slope=slope))
    return nn.Sequential(*layers)


@buildable
class LatentMapper(nn.Module):
    """``M``: each row of the fused code ``[identity; attributes]`` (512 + 512 in the paper) → a StyleGAN2 W+
    row (512). ``attribute_dim`` (the attribute encoder's code size) may be smaller for CPU demos."""

    def __init__(self, attribute_dim: int = IDENTITY_DIM) -> None:
        super().__init__()
        self.model = mlp((IDENTITY_DIM + int(attribute_dim), 512, 512))

    def forward(self, fused: Tensor) -> Tensor:
        """``[B, rows, 512 + attribute_dim]`` → ``[B, rows, 512]``."""
        return self.model(fused)


@buildable
class IdentityCompensation(nn.Module):
    """ICL (the authors' ``FusionMapper10``): maps the identity re-extracted from an anonymised image
    back onto the flow's output, compensating the ArcFace → StyleGAN → ArcFace round trip before the
    inverse flow."""

    def __init__(self) -> None:
        super().__init__()
        self.model = mlp((IDENTITY_DIM, 1024, 2048, 1024, IDENTITY_DIM))

    def forward(self, identity: Tensor) -> Tensor:
        """``[B, 512]`` → ``[B, 512]``."""
        return self.model(identity)


def fuse(identity: Tensor, attributes: Tensor) -> Tensor:
    """The identity vector ``[B, 512]`` repeated on every attribute row ``[B, rows, 512]`` and concatenated
    before it → ``[B, rows, 1024]`` (the authors' ``get_concat_vec``: identity first)."""
    if identity.ndim != 2 or attributes.ndim != 3 or identity.shape[0] != attributes.shape[0]:
        raise ValueError(
            f"fuse: expected identity [B, D] and attributes [B, rows, D'], got {tuple(identity.shape)} and "
            f"{tuple(attributes.shape)}"
        )
    rows = identity.unsqueeze(1).expand(-1, attributes.shape[1], -1)
    return torch.cat([rows, attributes], dim=2)


def draw_key(batch_size: int, generator: torch.Generator, dim: int = IDENTITY_DIM) -> Tensor:
    """One key ``p ~ U[0.5, 1)^dim`` for the whole batch (the authors' ``(rand + 1) / 2``), broadcast to
    ``[batch_size, dim]``; drawn on the CPU from ``generator`` so a seed gives the same key on any device."""
    key = (torch.rand(1, dim, generator=generator) + 1.0) / 2.0
    return key.expand(int(batch_size), dim).clone()


def key_condition(key: Tensor, mapping: Callable[[Tensor], Tensor] | None) -> Tensor:
    """The flow's condition ``c``: the key through the generator's mapping network (``generator.style``), or
    the key itself when no mapping is given (for tests of the flow alone)."""
    return key if mapping is None else mapping(key)
