"""PRO-Face fusion network ``G(x, x_o)``: two unshared dense U-Net branches ("Siamese Dense U-Nets").

PRO-Face (ACM MM 2022; ``docs/papers/proface.md``, "Fusion network G") fuses a face ``x`` with its
conventional obfuscation ``x_o`` into a protected image ``x_p`` that looks like ``x_o`` but still carries
``x``'s identity for a frozen recognizer. One branch reads ``x`` (``oImgNet``), the other ``x_o``
(``tImgNet``); both have the same layout but their own weights.

Per branch: a 3×3 stem, ``num_levels`` encoder levels (dense block + BN-LReLU-1×1 conv + max-pool 2), a 3×3
bottleneck. The two bottlenecks are summed. At each decoder level both branches get the same summed feature
map, upsample it (BN-LReLU-transposed conv 2×2/2, halving the channels), concatenate their own encoder skip
(the dense-block output of the matching level) and run a dense block; the two results are summed to feed
the next level. Every level of every branch also emits a 3-channel full-size image (3×3 conv, LReLU,
transposed conv with kernel = stride = the level's downscale factor); the output is the sum of all these
images — raw, no tanh and no clamp (the authors clamp only for evaluation).

Module and parameter names equal those of the authors' released checkpoints, so
``load_state_dict(state, strict=True)`` takes a released file as is (see :func:`load_released_proface`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from src.config.buildable import formerly

__all__ = [
    "ConvBNAct",
    "DecoderTransition",
    "DenseBlock",
    "DenseLayer",
    "DenseUNetBranch",
    "EncoderTransition",
    "ImageHead",
    "PairFuse",
    "ProFaceFusionNet",
    "load_released_proface",
]


class DenseLayer(nn.Module):
    """DenseNet bottleneck layer: BN-LReLU-conv1×1 to ``bn_size·growth``, BN-LReLU-conv3×3 to ``growth``.

    Returns the input with the ``growth`` new channels appended (input first), so a block's width grows by
    ``growth`` per layer. Dropout (active in training only) regularises the new features.
    """

    def __init__(
        self, in_channels: int, growth_rate: int, bn_size: int, dropout: float, negative_slope: float
    ) -> None:
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False)
        self.act = nn.LeakyReLU(negative_slope)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        new = self.conv1(self.act(self.norm1(x)))
        new = self.dropout(self.conv2(self.act(self.norm2(new))))
        return torch.cat([x, new], dim=1)


class DenseBlock(nn.Module):
    """``num_layers`` chained :class:`DenseLayer` (``denselayer1`` …); width ``in + num_layers·growth``."""

    def __init__(
        self,
        in_channels: int,
        num_layers: int,
        growth_rate: int,
        bn_size: int,
        dropout: float,
        negative_slope: float,
    ) -> None:
        super().__init__()
        for j in range(num_layers):
            layer = DenseLayer(in_channels + j * growth_rate, growth_rate, bn_size, dropout, negative_slope)
            self.add_module(f"denselayer{j + 1}", layer)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class ConvBNAct(nn.Module):
    """3×3 conv (no bias), BN, LReLU at constant resolution: the stem and the bottleneck of a branch."""

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm0 = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm0(self.conv0(x)))


class EncoderTransition(nn.Module):
    """BN-LReLU-conv1×1 (width kept) then max-pool 2: halves the resolution between encoder levels."""

    def __init__(self, channels: int, negative_slope: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.LeakyReLU(negative_slope)
        self.conv = nn.Conv2d(channels, channels, kernel_size=1, bias=False)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv(self.act(self.norm(x))))


class DecoderTransition(nn.Module):
    """BN-LReLU-transposed conv 2×2/2: doubles the resolution and halves (floor) the channels."""

    def __init__(self, channels: int, negative_slope: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.LeakyReLU(negative_slope)
        self.deconv = nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2)
        self.out_channels = channels // 2

    def forward(self, x: Tensor) -> Tensor:
        return self.deconv(self.act(self.norm(x)))


class ImageHead(nn.Module):
    """3×3 conv to 3 channels, LReLU, transposed conv with kernel = stride = ``scale`` back to full size.

    Each decoder level of each branch contributes one such image; their sum is the network output.
    """

    def __init__(self, in_channels: int, scale: int, negative_slope: float) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, 3, kernel_size=3, padding=1, bias=False)
        self.act = nn.LeakyReLU(negative_slope)
        self.pool0 = nn.ConvTranspose2d(3, 3, kernel_size=scale, stride=scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool0(self.act(self.conv0(x)))


class PairFuse(nn.Module):
    """Transposed 3×3 conv mapping two stacked RGB images (6 channels) to one (3 channels).

    Present in the released checkpoints (``final_conv_1x1``) but **never used by the forward pass**; it is
    kept only so that released state dicts load with ``strict=True``. Its parameters are counted in the
    paper's 217,062 but receive no gradient.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.ConvTranspose2d(6, 3, kernel_size=3, padding=1)

    def forward(self, images: Tensor) -> Tensor:
        return self.conv0(images)


class DenseUNetBranch(nn.Module):
    """One branch: dense U-Net encoder, bottleneck, and per-level decoder blocks + image heads.

    The branch does not run end to end on its own: :class:`ProFaceFusionNet` calls :meth:`encode`, then, per
    decoder level, :meth:`decode` on the *cross-branch* sum of the previous level.
    """

    def __init__(
        self,
        in_channels: int = 3,
        stem_channels: int = 16,
        growth_rate: int = 4,
        bn_size: int = 4,
        num_layers: int = 3,
        num_levels: int = 3,
        dropout: float = 0.25,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        self.num_levels = num_levels

        def block(channels: int) -> DenseBlock:
            return DenseBlock(channels, num_layers, growth_rate, bn_size, dropout, negative_slope)

        self.initial = ConvBNAct(in_channels, stem_channels, negative_slope)
        channels = stem_channels
        skip_channels = []
        for i in range(num_levels):
            enc = block(channels)
            channels = enc.out_channels
            skip_channels.append(channels)
            self.add_module(f"encode_block{i}", enc)
            self.add_module(f"encode_trans{i}", EncoderTransition(channels, negative_slope))
        self.bottom_block = ConvBNAct(channels, channels, negative_slope)
        self.bottom_channels = channels
        for i in range(num_levels):
            trans = DecoderTransition(channels, negative_slope)
            dec = block(trans.out_channels + skip_channels[num_levels - 1 - i])
            channels = dec.out_channels
            self.add_module(f"decode_trans{i}", trans)
            self.add_module(f"decode_block{i}", dec)
            self.add_module(f"unpool{i}", ImageHead(channels, 2 ** (num_levels - 1 - i), negative_slope))
        self.out_channels = channels
        self.final_conv_1x1 = PairFuse()

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Bottleneck features and the encoder skips, deepest first (the order the decoder uses them)."""
        x = self.initial(x)
        skips = []
        for i in range(self.num_levels):
            x = self.get_submodule(f"encode_block{i}")(x)
            skips.append(x)
            x = self.get_submodule(f"encode_trans{i}")(x)
        return self.bottom_block(x), skips[::-1]

    def decode(self, level: int, fused: Tensor, skip: Tensor) -> tuple[Tensor, Tensor]:
        """Decoder ``level`` on the fused features: (this branch's features, its full-size RGB image)."""
        up = self.get_submodule(f"decode_trans{level}")(fused)
        features = self.get_submodule(f"decode_block{level}")(torch.cat([up, skip], dim=1))
        return features, self.get_submodule(f"unpool{level}")(features)


@formerly("src.networks.proface.ProFaceFusionNet", "src.networks.proface.fusion_unet.ProFaceFusionNet")
class ProFaceFusionNet(nn.Module):
    """PRO-Face embedder ``x_p = G(x, x_o)``: ``oImgNet`` reads the original, ``tImgNet`` the obfuscation.

    Defaults are the paper's: growth 4, bn_size 4, 3 layers per block, 3 levels, stem 16, dropout 0.25,
    LeakyReLU slope 0.01 — 217,062 parameters (108,531 per branch). The network is fully convolutional; H and
    W must be divisible by ``2 ** num_levels`` (8). Inputs and output share one value convention ([-1, 1] for
    the blur/pixelate/faceshifter checkpoints, [0, 1] at 224 px for the SimSwap ones); the output is raw.
    """

    def __init__(
        self,
        in_channels: int = 3,
        stem_channels: int = 16,
        growth_rate: int = 4,
        bn_size: int = 4,
        num_layers: int = 3,
        num_levels: int = 3,
        dropout: float = 0.25,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("stem_channels", stem_channels),
            ("growth_rate", growth_rate),
            ("bn_size", bn_size),
            ("num_layers", num_layers),
            ("num_levels", num_levels),
        ):
            if value < 1:
                raise ValueError(f"ProFaceFusionNet: {name} must be >= 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ProFaceFusionNet: dropout must be in [0, 1), got {dropout}")
        options = {
            "in_channels": in_channels,
            "stem_channels": stem_channels,
            "growth_rate": growth_rate,
            "bn_size": bn_size,
            "num_layers": num_layers,
            "num_levels": num_levels,
            "dropout": dropout,
            "negative_slope": negative_slope,
        }
        self.in_channels = in_channels
        self.num_levels = num_levels
        self.oImgNet = DenseUNetBranch(**options)  # name = checkpoint key prefix
        self.tImgNet = DenseUNetBranch(**options)  # name = checkpoint key prefix

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (one halving per encoder level)."""
        return 2**self.num_levels

    def check_inputs(self, original: Tensor, obfuscated: Tensor) -> None:
        """Raise ``ValueError`` unless both are ``[N, C, H, W]`` of one shape with H, W divisible by 8."""
        for name, x in (("original", original), ("obfuscated", obfuscated)):
            if x.ndim != 4 or x.shape[1] != self.in_channels:
                raise ValueError(
                    f"ProFaceFusionNet: {name} must be [N, {self.in_channels}, H, W], got {tuple(x.shape)}"
                )
        if original.shape != obfuscated.shape:
            raise ValueError(
                f"ProFaceFusionNet: original {tuple(original.shape)} and obfuscated "
                f"{tuple(obfuscated.shape)} must have the same shape"
            )
        h, w = original.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"ProFaceFusionNet: H and W must be divisible by {m}, got {h}x{w}")

    def forward(self, original: Tensor, obfuscated: Tensor) -> Tensor:
        """Protected image ``x_p`` (same shape as the inputs), raw and unclamped."""
        self.check_inputs(original, obfuscated)
        bottom_o, skips_o = self.oImgNet.encode(original)
        bottom_t, skips_t = self.tImgNet.encode(obfuscated)
        fused = bottom_o + bottom_t
        output: Tensor | None = None
        for level in range(self.num_levels):
            feat_o, image_o = self.oImgNet.decode(level, fused, skips_o[level])
            feat_t, image_t = self.tImgNet.decode(level, fused, skips_t[level])
            fused = feat_o + feat_t
            images = image_o + image_t
            output = images if output is None else output + images
        assert output is not None  # num_levels >= 1
        return output


def load_released_proface(path: str | Path) -> ProFaceFusionNet:
    """A paper-default :class:`ProFaceFusionNet` holding the released weights from ``path``, in eval mode.

    The released ``.pth`` files are bare state dicts (tensors saved on CUDA, hence ``map_location="cpu"``).
    Raises ``FileNotFoundError`` naming ``path`` when it is missing and ``ValueError`` naming the missing and
    unexpected keys (or mismatched shapes) when the file does not fit the network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PRO-Face checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a bare state dict, got {type(state).__name__}")
    net = ProFaceFusionNet()
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a PRO-Face fusion-network state dict: {len(missing)} missing keys "
            f"{_preview(missing)}, {len(unexpected)} unexpected keys {_preview(unexpected)}"
        )
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(v.shape)}"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f"{path}: {len(mismatched)} shape mismatches: {_preview(mismatched)}")
    net.load_state_dict(state, strict=True)
    return net.eval()


def _preview(items: list[str], limit: int = 8) -> str:
    """``items`` as a short list for error messages (first ``limit``, then a count)."""
    shown = ", ".join(items[:limit])
    more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"[{shown}{more}]"
