"""Readout statistics of the encoder's first 11 feature maps (``weights128/readout_layer{0..10}.pth``).

Each file of the original holds, per neuron of one map ``[C, H, W]``: ``m`` (mean over the data set),
``s`` (the *uncentred* sum of squares Σx²), ``neuron_nonzero`` (how often |x| > 0.01) and ``n_samples``.
Consumers use std = sqrt(s / (n − 1)) — an RMS, not a centred standard deviation — and call a neuron
active when neuron_nonzero / n > 0.01. Both are reproduced here as the original computes them
(``docs/papers/faceshield.md``, "Readout statistics").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

#: Channels of f0 … f10 of IR-SE-50, and each map's downscale factor relative to the encoder input.
READOUT_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 128, 256, 256, 256)
READOUT_STRIDES = (1, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8)
RAW_KEYS = ("m", "s", "neuron_nonzero", "n_samples")


def readout_shapes(input_size: int = 128) -> tuple[tuple[int, int, int], ...]:
    """``[C, H, W]`` of f0 … f10 for an encoder input of ``input_size`` pixels."""
    return tuple(
        (c, input_size // s, input_size // s) for c, s in zip(READOUT_CHANNELS, READOUT_STRIDES, strict=True)
    )


class LayerStatistics(nn.Module):
    """Per-neuron mean, std (RMS, see module docstring) and active mask of one feature map (buffers)."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.register_buffer("active", torch.ones(shape, dtype=torch.bool))

    @torch.no_grad()
    def set_from_raw(
        self, raw: Mapping[str, Tensor], active_threshold: float, source: str = "statistics"
    ) -> None:
        """Fill the buffers from one original ``readout_layer{i}.pth`` dict (m, s, neuron_nonzero, n)."""
        absent = [key for key in RAW_KEYS if key not in raw]
        if absent:
            raise ValueError(f"{source}: missing key(s) {', '.join(absent)} (expected {', '.join(RAW_KEYS)})")
        for key in ("m", "s", "neuron_nonzero"):
            if tuple(raw[key].shape) != tuple(self.mean.shape):
                raise ValueError(
                    f"{source}: '{key}' has shape {tuple(raw[key].shape)}, expected {tuple(self.mean.shape)}"
                )
        n = torch.as_tensor(raw["n_samples"]).float()
        self.mean.copy_(raw["m"].float())
        self.std.copy_(torch.sqrt(raw["s"].float() / (n - 1)))
        self.active.copy_(raw["neuron_nonzero"].float() / n > active_threshold)


class ReadoutStatistics(nn.Module):
    """The 11 layers' statistics and the readout normalisation ``r_i = (f_i − m_i) / max(s_i, min_std)``."""

    def __init__(self, input_size: int = 128, min_std: float = 0.01, active_threshold: float = 0.01) -> None:
        super().__init__()
        self.min_std = min_std
        self.active_threshold = active_threshold
        self.layers = nn.ModuleList(LayerStatistics(shape) for shape in readout_shapes(input_size))

    def __len__(self) -> int:
        return len(self.layers)

    def load_raw(self, raws: Sequence[Mapping[str, Tensor]], sources: Sequence[str] | None = None) -> None:
        """Fill every layer from the 11 original dicts, in layer order."""
        if len(raws) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} readout statistics, got {len(raws)}")
        names = sources or [f"readout layer {i}" for i in range(len(raws))]
        for layer, raw, name in zip(self.layers, raws, names, strict=True):
            layer.set_from_raw(raw, self.active_threshold, name)

    def normalise(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Readout maps of the first 11 encoder features (the std floor avoids dividing by dead neurons)."""
        return [
            (f - layer.mean) / layer.std.clamp_min(self.min_std)
            for f, layer in zip(features[: len(self.layers)], self.layers, strict=True)
        ]
