"""Optional extension (not in the authors' code): quantise the transmitted compensation maps and prune the
client, and report what that costs in accuracy and in bytes.

The paper names quantisation and pruning as further privacy and bandwidth measures but the released code
implements neither; this is our reconstruction with PyTorch's own tools, labelled as such in the table
(docs/papers/proface_c.md, "Quantisation and pruning (extension)"):

* ``bits``: each compensation map of each image is fake-quantised to ``bits`` with its own affine scale and
  zero point (``torch.fake_quantize_per_channel_affine`` with the batch as the channel axis), i.e. what the
  server would receive if the client sent ``bits``-bit integers plus one scale and zero point per map;
* ``prune_amount``: the fraction of the client's convolution weights (smallest magnitudes, over all layers
  together) set to zero with ``torch.nn.utils.prune.global_unstructured`` before testing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from src.config.buildable import buildable
from src.config.errors import ConfigError

#: bytes sent per map besides its values: a float32 scale and an int32 zero point
SIDE_BYTES = 8


@buildable
class Transmission:
    """``bits``-bit compensation maps (None: float32) and a ``prune_amount`` of pruned client weights."""

    def __init__(self, bits: int | None = 8, prune_amount: float = 0.0) -> None:
        if bits is not None and not 1 <= int(bits) <= 16:
            raise ConfigError(f"model.transmission.bits must be in 1..16 (or null), got {bits}")
        if not 0.0 <= float(prune_amount) < 1.0:
            raise ConfigError(f"model.transmission.prune_amount must be in [0, 1), got {prune_amount}")
        self.bits = None if bits is None else int(bits)
        self.prune_amount = float(prune_amount)

    def transmit(self, maps: list[Tensor]) -> list[Tensor]:
        """The maps as the server receives them (fake-quantised per image and map); records their size."""
        if self.bits is None:
            return maps
        levels = 2**self.bits - 1
        out = []
        for m in maps:
            flat = m.reshape(m.shape[0], -1).float()
            span = flat.detach()  # the scale is side information, not a function to differentiate
            low, high = span.min(1).values.clamp(max=0.0), span.max(1).values.clamp(min=0.0)
            scale = ((high - low) / levels).clamp_min(1e-8)
            zero = torch.round(-low / scale).clamp(0, levels).to(torch.int32)
            quantised = torch.fake_quantize_per_channel_affine(flat, scale, zero, 0, 0, levels)
            out.append(quantised.reshape(m.shape).to(m.dtype))
        return out

    def prune(self, client: nn.Module) -> None:
        """Zero the smallest ``prune_amount`` of the client's conv weights (globally), permanently."""
        if self.prune_amount <= 0.0:
            return
        convs = [(m, "weight") for m in client.modules() if isinstance(m, nn.Conv2d)]
        prune.global_unstructured(convs, pruning_method=prune.L1Unstructured, amount=self.prune_amount)
        for module, name in convs:
            prune.remove(module, name)

    def describe_cost(self, client: nn.Module, map_shapes: Sequence[Sequence[int]]) -> dict[str, float]:
        """Bytes sent per image (the maps of ``map_shapes``, plus scales and zero points when quantised), the
        same as float32, and the client's parameters and non-zero parameters."""
        elements = sum(math.prod(int(v) for v in shape) for shape in map_shapes)
        values = elements * (4 if self.bits is None else self.bits / 8)
        side = 0 if self.bits is None else len(map_shapes) * SIDE_BYTES
        params = list(client.parameters())
        return {
            "bits": float(32 if self.bits is None else self.bits),
            "bytes_per_image": values + side,
            "float32_bytes_per_image": float(elements * 4),
            "prune_amount": self.prune_amount,
            "client_params": float(sum(p.numel() for p in params)),
            "client_nonzero_params": float(sum(int(torch.count_nonzero(p)) for p in params)),
        }
