"""FaceShield's frozen identity encoder: InfoSwap's IR-SE-50 at 128 px with cached features.

The network is the zoo's :class:`~src.networks.recognizers.irse.InfoSwapIRNet` (same layers and published
key layout as InfoSwap's ``Backbone128``). This wrapper adds what FaceShield needs on top of a recognizer:
the 25 intermediate maps (stem output ``f0`` and the output of each of the 24 body units, ``f1`` … ``f24``)
and ``restrict_forward``, which feeds a replacement for ``f_i`` through the rest of the network. See
``docs/papers/faceshield.md``, "Networks".
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers.irse import InfoSwapIRNet

#: FaceShield's encoder crop of a 512-px aligned face (rows and columns 37:475), resized to 128 px.
ENCODER_CROP = (37, 475)
ENCODER_SIZE = 128


def encoder_input(images: Tensor, crop: tuple[int, int] = ENCODER_CROP, size: int = ENCODER_SIZE) -> Tensor:
    """512-px faces in [-1, 1] → the encoder's 128-px input (crop, bilinear resize with aligned corners)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"encoder_input expects [B, 3, H, W] images, got {tuple(images.shape)}")
    start, stop = crop
    cropped = images[:, :, start:stop, start:stop]
    return F.interpolate(cropped, size=(size, size), mode="bilinear", align_corners=True)


class FaceShieldEncoder(nn.Module):
    """Frozen IR-SE-50 ``E``: ``forward`` → (L2-normalised identity, [f0 … f24]); ``restrict_forward``.

    ``input_size`` other than 128 (a multiple of 16) only changes the head's FC width; tests use it to run
    small. The encoder is frozen at construction (eval mode, no parameter gradients; it stays in eval mode
    under ``.train()``): FaceShield never trains it.
    """

    def __init__(self, input_size: int = ENCODER_SIZE, dropout: float = 0.6) -> None:
        super().__init__()
        self.net = InfoSwapIRNet(input_size=input_size, dropout=dropout).freeze()
        self.units = [unit for stage in self.net.stages for unit in stage]  # flat body order, as published

    def train(self, mode: bool = True) -> FaceShieldEncoder:
        """Stay in eval mode (BatchNorm and dropout fixed): the encoder is never trained."""
        return super().train(False)

    @property
    def num_features(self) -> int:
        """Number of cached maps: the stem output plus one per body unit (25 for IR-SE-50)."""
        return len(self.units) + 1

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Preprocessed input ``[B, 3, S, S]`` in [-1, 1] → (unit identity ``[B, 512]``, feature maps)."""
        h = self.net.stem(x)
        features = [h]
        for unit in self.units:
            h = unit(h)
            features.append(h)
        return F.normalize(self.net.head(h), dim=1), features

    def restrict_forward(self, z: Tensor, index: int) -> Tensor:
        """Identity of ``z`` fed in place of ``f_index``: run body units ``index`` … 23, the head, L2-norm."""
        if not 0 <= index < self.num_features:
            raise ValueError(f"restrict_forward: index must be in [0, {self.num_features - 1}], got {index}")
        for unit in self.units[index:]:
            z = unit(z)
        return F.normalize(self.net.head(z), dim=1)
