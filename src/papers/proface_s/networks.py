"""The keyed invertible network of PRO-Face S (TCSVT'24): ``ModelDWT`` + HiNet blocks.

Documented in ``docs/papers/proface_s.md``, "Keyed invertible network".

State ``[u1, u2] = [DWT(x_o), DWT(x)]`` (12 + 12 channels at H/2×W/2), key ``k = DWT(key map)`` (4 channels,
concatenated to every sub-network input), ``INV_BLOCKS`` conditional affine coupling blocks (clamp 2). Forward
gives ``[v1, v2]``: the protected image ``x_p = IWT(v1)`` and the by-product ``z = v2``. The inverse runs the
blocks backwards on ``[DWT(x_p), ẑ]``: ``x_r = IWT(second half)``, ``x_o_hat = IWT(first half)``.

``ẑ`` is the discarded ``z`` only when the caller kept it (the invertibility test); in use it is the key's DWT
tiled 3× to 12 channels (``SECRET_KEY_AS_NOISE``, default) or Gaussian noise — so recovery with the right key
is *learned* (the recovery loss), not exact by construction. Images go in and out in the training range
([-1, 1] in PRO-Face S); the network does not clamp.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from src.config.buildable import formerly
from src.networks.invertible import AffineCouplingBlock, CouplingStack, haar_dwt, haar_iwt
from src.networks.invertible.dense import ResidualDenseBlock

__all__ = ["ProFaceSNet"]


@formerly("src.networks.proface_s.ProFaceSNet")
class ProFaceSNet(nn.Module):
    """Keyed INN: ``forward(x, x_o, key) -> (x_p, z)``, ``inverse(x_p, key, z=None) -> (x_r, x_o_hat)``.

    ``key`` is a ±1 map ``[B or 1, 1, H, W]`` (see :mod:`src.papers.proface_s.keys`); a batch-1 key is
    broadcast. With ``inv_blocks=3`` (the released model) it has 1,073,040 parameters (357,680 per block).
    Init (``reset_parameters``): every parameter ~ ``init_scale · N(0, 1)``, then every ``conv5`` set to 0,
    so the fresh network is the identity (``x_p = x_o``, ``z = DWT(x)``).
    """

    def __init__(
        self,
        inv_blocks: int = 3,
        clamp: float = 2.0,
        image_channels: int = 3,
        growth: int = 32,
        secret_key_as_noise: bool = True,
        init_scale: float = 0.01,
        init_seed: int | None = None,
    ) -> None:
        super().__init__()
        if inv_blocks < 1:
            raise ValueError(f"ProFaceSNet: inv_blocks must be >= 1, got {inv_blocks}")
        self.image_channels = int(image_channels)
        self.band_channels = 4 * self.image_channels  # DWT of an image
        self.key_channels = 4  # DWT of the 1-channel key map
        self.secret_key_as_noise = bool(secret_key_as_noise)
        self.init_scale = float(init_scale)

        def subnet(cin: int, cout: int) -> nn.Module:
            return ResidualDenseBlock(cin, cout, growth=growth)

        self.inn = CouplingStack(
            [
                AffineCouplingBlock(
                    self.band_channels, self.band_channels, self.key_channels, clamp=clamp, subnet=subnet
                )
                for _ in range(int(inv_blocks))
            ]
        )
        self.reset_parameters(None if init_seed is None else torch.Generator().manual_seed(int(init_seed)))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Original ``init_model``: every parameter ``init_scale · N(0, 1)``, then each ``conv5`` set to 0."""
        for name, param in self.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            param.copy_(self.init_scale * noise.to(param.device))
            if name.split(".")[-2] == "conv5":
                param.zero_()

    def key_bands(self, key: Tensor, batch_size: int) -> Tensor:
        """DWT of the key map, broadcast to ``batch_size``: ``[B, 4, H/2, W/2]``."""
        if key.ndim != 4 or key.shape[1] != 1:
            raise ValueError(f"ProFaceSNet: key must be a [B, 1, H, W] map, got shape {tuple(key.shape)}")
        if key.shape[0] not in (1, batch_size):
            raise ValueError(f"ProFaceSNet: key batch {key.shape[0]} does not match image batch {batch_size}")
        return haar_dwt(key).expand(batch_size, -1, -1, -1)

    def default_z(self, key: Tensor, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """The ``ẑ`` used for recovery: key DWT tiled 3× (``secret_key_as_noise``) or N(0, 1) noise."""
        bands = self.key_bands(key, batch_size)
        if self.secret_key_as_noise:
            return bands.repeat(1, self.band_channels // self.key_channels, 1, 1)
        shape = (batch_size, self.band_channels, *bands.shape[-2:])
        noise_device = generator.device if generator is not None else bands.device
        noise = torch.randn(shape, generator=generator, device=noise_device, dtype=bands.dtype)
        return noise.to(bands.device)

    def _check_images(self, x: Tensor, name: str) -> None:
        if x.ndim != 4 or x.shape[1] != self.image_channels:
            raise ValueError(
                f"ProFaceSNet: {name} must be [B, {self.image_channels}, H, W], got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor, x_o: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        """Protect ``x`` given its obfuscation ``x_o``: ``(x_p, z)``, ``z`` of shape ``[B, 12, H/2, W/2]``."""
        self._check_images(x, "x")
        self._check_images(x_o, "x_o")
        if x.shape != x_o.shape:
            raise ValueError(f"ProFaceSNet: x {tuple(x.shape)} and x_o {tuple(x_o.shape)} differ in shape")
        cond = self.key_bands(key, x.shape[0])
        out = self.inn(torch.cat((haar_dwt(x_o), haar_dwt(x)), dim=1), cond)
        v1, v2 = out[:, : self.band_channels], out[:, self.band_channels :]
        return haar_iwt(v1), v2

    def inverse(
        self,
        x_p: Tensor,
        key: Tensor,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Recover from ``x_p`` with ``key``: returns ``(x_r, x_o_hat)``.

        ``z`` defaults to :meth:`default_z` (``generator`` only matters for Gaussian noise).
        """
        self._check_images(x_p, "x_p")
        cond = self.key_bands(key, x_p.shape[0])
        if z is None:
            z = self.default_z(key, x_p.shape[0], generator)
        out = self.inn.inverse(torch.cat((haar_dwt(x_p), z), dim=1), cond)
        u1, u2 = out[:, : self.band_channels], out[:, self.band_channels :]
        return haar_iwt(u2), haar_iwt(u1)
