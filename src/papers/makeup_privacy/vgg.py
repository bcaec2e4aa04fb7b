"""Makeup-privacy's frozen encoder: torchvision's VGG19 ``features`` up to relu4_1.

The correspondence and the generator work on four of its activations, returned deepest first as the
original does: relu4_1 (512 channels, 1/8 of the input side), relu3_1 (256, 1/4), relu2_1 (128, 1/2) and
relu1_1 (64, full size). Layer indices and parameter names are torchvision's (``features.{i}.weight`` /
``.bias``), so torchvision's ImageNet file ``vgg19-dcbb9e9d.pth`` loads key for key; its deeper layers and
classifier are not needed and are skipped.

The original feeds its [-1, 1] images to VGG as they are, without ImageNet mean/std normalisation; that is
the default here too (``imagenet_normalize=False``), since a trained generator expects those features.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from src.config.buildable import buildable
from src.weights import resolve_spec

#: the returned activations, in the order returned (deepest first, as the original's encoder)
LAYER_NAMES = ("relu4_1", "relu3_1", "relu2_1", "relu1_1")
#: torchvision's VGG19 ("E") ``features`` configuration: conv widths and "M" max-pools
VGG19_CONFIG: tuple[int | str, ...] = (
    *(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"),
    *(512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
)
#: the part of it up to relu4_1 (``features[:21]``)
TRUNK_CONFIG = VGG19_CONFIG[:12]
#: ``features`` index of each returned ReLU
TAP_INDICES = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20}
#: ImageNet statistics torchvision's weights were trained with (inputs in [0, 1])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layers(config: tuple[int | str, ...], width_divisor: int = 1) -> list[nn.Module]:
    """torchvision's ``make_layers`` (no batch norm): 3×3 convs (padding 1) + ReLU, 2×2 max-pools."""
    layers: list[nn.Module] = []
    channels = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            width = max(1, int(item) // width_divisor)
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU()]
            channels = width
    return layers


def torchvision_vgg19_keys() -> set[str]:
    """Every key of torchvision's full VGG19 state dict (``features.*`` and ``classifier.*``)."""
    keys: set[str] = set()
    index = 0
    for item in VGG19_CONFIG:
        if item == "M":
            index += 1
        else:
            keys |= {f"features.{index}.weight", f"features.{index}.bias"}
            index += 2
    keys |= {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    return keys


def read_vgg19_features(path: str | Path, expected: dict[str, torch.Size]) -> dict[str, Tensor]:
    """The ``expected`` tensors of a torchvision VGG19 state dict file, read with ``weights_only=True``.

    Keys of torchvision's VGG19 that are not expected (deeper layers, classifier) are dropped; a missing
    expected key, a key that is not torchvision's VGG19, or a shape mismatch raises a ``ValueError``
    naming the file and the keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle weights_only refuses, or not a torch file at all
        raise ValueError(f"{path}: cannot be read with torch.load(weights_only=True): {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (got {type(state).__name__})")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - torchvision_vgg19_keys() - set(expected))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(s)}"
        for k, s in expected.items()
        if k in state and state[k].shape != s
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path}: not torchvision's VGG19 state dict (features.N.weight/bias): "
            f"missing keys {missing}, unexpected keys {unexpected}, shape mismatches {shapes}"
        )
    return {k: state[k] for k in expected}


@buildable
class VGG19Features(nn.Module):
    """Frozen VGG19 trunk up to relu4_1; ``forward`` returns (relu4_1, relu3_1, relu2_1, relu1_1).

    ``weights``: ``manifest:torchvision-vgg19`` or a path to torchvision's ``vgg19-dcbb9e9d.pth``; ``None``
    keeps the random init (tests). ``width_divisor`` shrinks every conv (CPU tests; pretrained weights need
    1). ``imagenet_normalize``: map [-1, 1] images to [0, 1] and apply ImageNet mean/std first (the
    original does not). Parameters never get gradients and the module stays in eval mode; the input still
    does get gradients (losses on generated images need them).
    """

    def __init__(
        self, weights: str | None = None, width_divisor: int = 1, imagenet_normalize: bool = False
    ) -> None:
        super().__init__()
        if width_divisor < 1:
            raise ValueError(f"VGG19Features: width_divisor must be >= 1, got {width_divisor}")
        if weights is not None and width_divisor != 1:
            raise ValueError("VGG19Features: pretrained weights need width_divisor=1")
        self.features = nn.Sequential(*vgg19_layers(TRUNK_CONFIG, width_divisor))
        self.channels = tuple(max(1, c // width_divisor) for c in (512, 256, 128, 64))
        self.imagenet_normalize = bool(imagenet_normalize)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is not None:
            expected = {k: v.shape for k, v in self.state_dict().items()}
            self.load_state_dict(read_vgg19_features(resolve_spec(weights), expected), strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode (frozen encoder)."""
        return super().train(False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Images ``[B, 3, H, W]`` in [-1, 1] → (relu4_1, relu3_1, relu2_1, relu1_1)."""
        x = ((images + 1.0) / 2.0 - self.mean) / self.std if self.imagenet_normalize else images
        taps = {index: name for name, index in TAP_INDICES.items()}
        found: dict[str, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in taps:
                found[taps[index]] = x
        return found["relu4_1"], found["relu3_1"], found["relu2_1"], found["relu1_1"]
