"""SimSwap (neuralchen/SimSwap, the 224 model) as plain modules: generator, ArcFace identity network, loaders.

Sources read (neuralchen/SimSwap at bd7b768; lixionga/ProFace at 791e815, which vendors the same files):

- ``models/fs_networks.py`` ``Generator_Adain_Upsample`` — the generator ``models/fs_model.py`` builds for
  ``crop_size == 224`` as ``Generator_Adain_Upsample(input_nc=3, output_nc=3, latent_size=512, n_blocks=9,
  deep=False)`` (``norm_layer=nn.BatchNorm2d``, ``padding_type='reflect'``) and fills from
  ``checkpoints/people/latest_net_G.pth`` (release ``1.0`` ``checkpoints.zip``).
- ``models/arcface_models.py`` (2023) / ``models/models.py`` (2021) ``ResNet``/``IRBlock``/``SEBlock`` — the
  ArcFace network pickled *whole* in ``arcface_checkpoint.tar``; it is foamliu/InsightFace-v2's ``models.py``
  (identical classes; ``config.py`` with ``num_classes = 93431``, MS1M-RetinaFace).

**Generator** (:class:`SimSwapGenerator`; module and key names are the published ones, so the released file
loads strictly with no mapping). Widths ``ngf·(1, 2, 4, 8)`` (64..512):

- ``first_layer``: ReflectionPad(3) → conv7×7 (3→64) → BN → ReLU;
- ``down1``..``down3``: conv3×3 stride 2 → BN → ReLU (64→128→256→512; ``down4`` 512→512 when ``deep``);
- ``BottleNeck.{0..8}``: AdaIN residual blocks at 512: ``conv1`` = ReflectionPad(1) → conv3×3 → parameter-free
  instance norm (ε = 1e-8, inside the square root); ``style1.linear`` (512 → 2·512) gives a per-channel
  ``(scale, shift)`` from the identity latent, applied as ``x·(1 + scale) + shift``; ReLU; the same again
  (``conv2``, ``style2``) without activation; plus the input;
- ``up3``..``up1`` (``up4`` first when ``deep``): bilinear ×2 upsampling (``align_corners=False``) → conv3×3 →
  BN → ReLU (512→256→128→64);
- ``last_layer``: ReflectionPad(3) → conv7×7 (64→3) → tanh; the output is ``(tanh + 1) / 2`` ∈ [0, 1].

Input: RGB in [0, 1] at 224 (no ImageNet normalisation for the 224 model; only the 512 model normalises);
any size divisible by 8 runs. Released layout: 123 state-dict entries (102 parameters and 21 BatchNorm buffers
incl. ``num_batches_tracked``), **55,051,779 parameters** (PRO-Face's "55.1 M"). A file without
``num_batches_tracked`` entries (written before PyTorch 0.4.1) is accepted: those counters never affect an
eval-mode forward pass.

**Identity network** (:class:`SimSwapArcFace`, a zoo :class:`~src.networks.recognizers.base.FaceRecognizer`,
again with the published names): conv3×3 (3→64, *no padding*, no bias) → BN → PReLU → MaxPool 2 (112 → 110 →
55) → ``layer1``..``layer4`` of ``IRBlock`` units (widths 64/128/256/512, strides 1/2/2/2; unit: ``bn0`` →
``conv1`` 3×3 (in→in) → ``bn1`` → ``prelu`` → ``conv2`` 3×3 (in→out, stride) → ``bn2`` [→ ``se``: avg-pool →
``fc`` = Linear(c, c/16) → PReLU → Linear → sigmoid] + shortcut (``downsample`` = conv1×1 + BN where the
stride or width changes) → the **same** ``prelu`` again) → ``bn2`` → dropout → flatten → ``fc`` (512·7·7 →
512) → ``bn3`` (BatchNorm1d). Depth and SE are not fixed by the code (foamliu's ``train.py`` chooses
``--network r18..r152`` and ``--use-se``), so :func:`load_simswap_arcface` reads them from the file; the
defaults (``(3, 4, 23, 3)`` with SE: InsightFace-v2's default ``r101``, the "SE-LResNet101E-IR" of its
README) only matter for random initialisation.

Conventions of the identity network, as SimSwap and PRO-Face feed it: **112×112 RGB, ImageNet mean (0.485,
0.456, 0.406) / std (0.229, 0.224, 0.225)**, raw 512-d output that the caller **L2-normalises**. Sources:
SimSwap ``test_one_image.py`` (PIL RGB, ``transformer_Arcface`` = ToTensor + ImageNet Normalize, resize to
112, ``latend_id / np.linalg.norm(latend_id, axis=1)``), ``fs_model.py`` (``SpecificNorm``: ImageNet
statistics before ``netArc`` in training), foamliu InsightFace-v2 ``data_gen.py`` (PIL RGB, the same
Normalize); PRO-Face ``utils/image_processing.py`` (``targ_img_trans`` = ToTensor + ImageNet Normalize,
``F.resize(target, [112, 112])`` — bilinear, no antialias in torchvision 0.13 — then the L2 normalisation).
SimSwap's own demo scripts resize with ``F.interpolate`` (nearest); :class:`SimSwapIdentityEncoder` follows
PRO-Face (``resize_mode`` changes it).

**Reading ``arcface_checkpoint.tar`` without running its code.** The file is a pickle of their classes, so
``torch.load(weights_only=True)`` refuses it and a plain ``torch.load`` would import and run SimSwap's
modules. :func:`read_pickled_network` passes ``torch.load`` a restricted pickle module
(:class:`RestrictedUnpickler`): tensors are rebuilt by torch's own rebuild functions; every class of the
published code (``models``, ``models.models``, ``models.arcface_models``, InsightFace-v2's ``optimizer``) and
every ``torch.nn.modules`` / ``torch.nn.parallel`` / ``torch.optim`` class is replaced by an inert
:class:`PickledObject` that only records the state pickle hands it (nothing is imported, no published
``__init__``/``__setstate__``/``forward`` runs); anything else (``os.system``, ``builtins.eval``, ...) is
refused with :class:`pickle.UnpicklingError`. The module tree is then flattened into a state dict exactly as
``nn.Module.state_dict`` would. Both published versions are handled: the 2021 file (PRO-Face's:
foamliu's ``BEST_checkpoint.tar`` dict ``{'epoch', 'epochs_since_improvement', 'acc', 'model':
DataParallel(ResNet), 'metric_fc', 'optimizer'}``, read by ``['model'].module``) and the 2023 re-upload (the
bare ``models.arcface_models.ResNet``, SimSwap README 2023-04-25), as well as a converted plain state dict.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import codecs
import collections
import pickle
import re
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers.base import FaceRecognizer
from src.networks.recognizers.checkpoints import convert_state_dict, native_mapping, read_checkpoint

#: manifest entries (``src/weights/manifest.yaml``) of the two released files
GENERATOR_WEIGHTS = "simswap-generator-224"
ARCFACE_WEIGHTS = "simswap-arcface"
#: the 224 model's working resolution and the identity network's input size
SIMSWAP_IMAGE_SIZE = 224
SIMSWAP_ID_SIZE = 112
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: InsightFace-v2 ``models.py`` depths (its ``resnet50`` repeats ``resnet34``'s (3, 4, 6, 3))
ARCFACE_DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 6, 3),
    "r101": (3, 4, 23, 3),
    "r152": (3, 8, 36, 3),
}
ARCFACE_WIDTHS = (64, 128, 256, 512)


# ============================================================================================== generator


class InstanceNorm(nn.Module):
    """Parameter-free instance normalisation of SimSwap's AdaIN blocks: ``x̂ = (x − μ) / sqrt(σ² + ε)``."""

    def __init__(self, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        return centred * torch.rsqrt(centred.square().mean(dim=(2, 3), keepdim=True) + self.epsilon)


class ApplyStyle(nn.Module):
    """Per-channel scale and shift from the identity latent: ``x · (1 + s) + b``, ``(s, b) = linear(z)``."""

    def __init__(self, latent_size: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(latent_size, channels * 2)

    def forward(self, x: Tensor, latent: Tensor) -> Tensor:
        style = self.linear(latent).view(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


def _padded_conv3x3(channels: int) -> nn.Sequential:
    # published: [ReflectionPad2d(1), Conv2d(dim, dim, 3), InstanceNorm()] -> keys conv{1,2}.1.*
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), InstanceNorm())


class AdaINResBlock(nn.Module):
    """``ResnetBlock_Adain``: two padded conv3×3 + instance norm + identity style; residual sum."""

    def __init__(self, channels: int, latent_size: int) -> None:
        super().__init__()
        self.conv1 = _padded_conv3x3(channels)
        self.style1 = ApplyStyle(latent_size, channels)
        self.act1 = nn.ReLU()
        self.conv2 = _padded_conv3x3(channels)
        self.style2 = ApplyStyle(latent_size, channels)

    def forward(self, x: Tensor, latent: Tensor) -> Tensor:
        y = self.act1(self.style1(self.conv1(x), latent))
        y = self.style2(self.conv2(y), latent)
        return x + y


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class SimSwapGenerator(nn.Module):
    """SimSwap's ``Generator_Adain_Upsample`` (see the module docstring); published parameter names.

    ``forward(images, latent)``: attribute faces ``[B, 3, H, W]`` in [0, 1] (H, W divisible by 8; 224 for the
    released model) and L2-normalised identity latents ``[B, latent_size]`` → swapped faces in [0, 1].
    ``ngf`` (64), ``latent_size`` (512) and ``n_blocks`` (9) only differ from the release in tests.
    """

    def __init__(
        self,
        ngf: int = 64,
        latent_size: int = 512,
        n_blocks: int = 9,
        deep: bool = False,
        in_channels: int = 3,
        out_channels: int = 3,
    ) -> None:
        super().__init__()
        if ngf < 1 or latent_size < 1 or n_blocks < 0:
            raise ValueError(
                f"SimSwapGenerator: ngf and latent_size must be >= 1 and n_blocks >= 0, got ngf={ngf}, "
                f"latent_size={latent_size}, n_blocks={n_blocks}"
            )
        self.ngf, self.latent_size, self.n_blocks, self.deep = ngf, latent_size, n_blocks, deep
        c1, c2, c3, c4 = ngf, ngf * 2, ngf * 4, ngf * 8
        # Registration order = the published __init__ order, so state_dict() lists keys as the file does.
        self.first_layer = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, c1, 7), nn.BatchNorm2d(c1), nn.ReLU()
        )
        self.down1 = _down(c1, c2)
        self.down2 = _down(c2, c3)
        self.down3 = _down(c3, c4)
        if deep:
            self.down4 = _down(c4, c4)
        self.BottleNeck = nn.Sequential(*(AdaINResBlock(c4, latent_size) for _ in range(n_blocks)))
        if deep:
            self.up4 = _up(c4, c4)
        self.up3 = _up(c4, c3)
        self.up2 = _up(c3, c2)
        self.up1 = _up(c2, c1)
        self.last_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c1, out_channels, 7), nn.Tanh())

    def forward(self, images: Tensor, latent: Tensor) -> Tensor:
        if latent.ndim != 2 or latent.shape[1] != self.latent_size or latent.shape[0] != images.shape[0]:
            raise ValueError(
                f"SimSwapGenerator: latent must be [B={images.shape[0]}, {self.latent_size}], got "
                f"{tuple(latent.shape)}"
            )
        factor = 16 if self.deep else 8
        if images.shape[-2] % factor or images.shape[-1] % factor:
            raise ValueError(
                f"SimSwapGenerator: image height and width must be divisible by {factor}, got "
                f"{tuple(images.shape[-2:])}"
            )
        x = self.down3(self.down2(self.down1(self.first_layer(images))))
        if self.deep:
            x = self.down4(x)
        for block in self.BottleNeck:
            x = block(x, latent)
        if self.deep:
            x = self.up4(x)
        x = self.last_layer(self.up1(self.up2(self.up3(x))))
        return (x + 1.0) / 2.0


# =========================================================================================== ArcFace (ResNet)


class SEBlock(nn.Module):
    """InsightFace-v2 ``SEBlock``: global average → Linear(c, c/r) → PReLU → Linear(c/r, c) → sigmoid gate."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.PReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


class IRBlock(nn.Module):
    """InsightFace-v2 ``IRBlock`` (see the module docstring); ``prelu`` is applied twice (shared weights)."""

    def __init__(self, cin: int, cout: int, stride: int, se_hidden: int | None) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )
        self.se = SEBlock(cout, se_hidden) if se_hidden is not None else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + shortcut)


@dataclass(frozen=True)
class ArcFaceConfig:
    """The shape of a SimSwap/InsightFace-v2 ArcFace ResNet (read from a state dict or chosen)."""

    layers: tuple[int, int, int, int] = ARCFACE_DEPTHS["r101"]
    widths: tuple[int, int, int, int] = ARCFACE_WIDTHS
    use_se: bool = True
    se_reduction: int = 16
    embedding_dim: int = 512


class SimSwapArcFace(FaceRecognizer):
    """SimSwap's ArcFace identity network (InsightFace-v2 ``ResNet`` of ``IRBlock``), published key names.

    Declared conventions (module docstring): 112×112 RGB, ImageNet mean/std, raw ``embedding_dim`` output
    (SimSwap and PRO-Face L2-normalise it). ``embed(images01, normalize=True, resize=True)`` works as for
    any zoo recognizer (its resize is antialiased bilinear; :class:`SimSwapIdentityEncoder` reproduces
    PRO-Face's).
    """

    input_size = (SIMSWAP_ID_SIZE, SIMSWAP_ID_SIZE)
    channel_order = "RGB"
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    conventions_source: ClassVar[str] = (
        "SimSwap test_one_image.py / fs_model.py SpecificNorm, foamliu InsightFace-v2 data_gen.py, PRO-Face "
        "utils/image_processing.py: PIL RGB, ImageNet Normalize, 112 px, L2-normalised by the caller"
    )

    def __init__(
        self,
        layers: tuple[int, int, int, int] | list[int] = ARCFACE_DEPTHS["r101"],
        widths: tuple[int, int, int, int] | list[int] = ARCFACE_WIDTHS,
        use_se: bool = True,
        se_reduction: int = 16,
        embedding_dim: int = 512,
    ) -> None:
        super().__init__()
        layers, widths = tuple(int(n) for n in layers), tuple(int(w) for w in widths)
        if len(layers) != 4 or len(widths) != 4 or min(layers) < 1 or min(widths) < 1:
            raise ValueError(
                f"SimSwapArcFace: layers and widths need 4 positive entries, got {layers}, {widths}"
            )
        if use_se and min(widths) // se_reduction < 1:
            raise ValueError(
                f"SimSwapArcFace: se_reduction {se_reduction} leaves no SE hidden unit for widths {widths}"
            )
        self.config = ArcFaceConfig(layers, widths, bool(use_se), int(se_reduction), int(embedding_dim))
        self.embedding_dim = int(embedding_dim)
        self.conv1 = nn.Conv2d(3, widths[0], 3, bias=False)  # no padding: 112 -> 110
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        cin = widths[0]
        for k, (count, width, stride) in enumerate(zip(layers, widths, (1, 2, 2, 2), strict=True), start=1):
            units = []
            for i in range(count):
                hidden = width // se_reduction if use_se else None
                units.append(IRBlock(cin, width, stride if i == 0 else 1, hidden))
                cin = width
            setattr(self, f"layer{k}", nn.Sequential(*units))
        self.bn2 = nn.BatchNorm2d(widths[3])
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(widths[3] * 7 * 7, embedding_dim)
        self.bn3 = nn.BatchNorm1d(embedding_dim)

    @classmethod
    def config_from_state_dict(cls, state: Mapping[str, Tensor]) -> ArcFaceConfig:
        """Depth, widths, SE and embedding size of a state dict in the published naming."""
        try:
            counts = []
            for k in range(1, 5):
                indices = {int(m.group(1)) for key in state if (m := re.match(rf"layer{k}\.(\d+)\.", key))}
                if not indices or indices != set(range(len(indices))):
                    raise KeyError(f"layer{k}.<i>.*")
                counts.append(len(indices))
            widths = tuple(int(state[f"layer{k}.0.conv2.weight"].shape[0]) for k in range(1, 5))
            use_se = "layer1.0.se.fc.0.weight" in state
            reduction = widths[0] // int(state["layer1.0.se.fc.0.weight"].shape[0]) if use_se else 16
            embedding = int(state["fc.weight"].shape[0])
        except KeyError as exc:
            raise ValueError(
                f"not a SimSwap/InsightFace-v2 ArcFace ResNet state dict: no {exc.args[0]} "
                f"(keys start with {sorted(state)[:5]})"
            ) from None
        return ArcFaceConfig(tuple(counts), widths, use_se, max(reduction, 1), embedding)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], source: str = "state dict") -> SimSwapArcFace:
        """Build the network the state dict describes and load it strictly (published names, no mapping)."""
        config = cls.config_from_state_dict(state)
        model = cls(config.layers, config.widths, config.use_se, config.se_reduction, config.embedding_dim)
        converted, _, _, _ = convert_state_dict(model, state, native_mapping(), source)
        model.load_state_dict(converted, strict=True)
        return model

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x))
        return self.bn3(self.fc(x.flatten(1)))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "layers": list(self.config.layers), "use_se": self.config.use_se}


# ================================================================== PRO-Face's use: identity encoder, swapper


def _resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode=mode)
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


class SimSwapIdentityEncoder(nn.Module):
    """Target faces ``[B, 3, H, W]`` in [0, 1] → L2-normalised identity latents, as PRO-Face computes them.

    PRO-Face (docs/papers/proface.md, "Obfuscators"): ImageNet normalisation, resize to 112 (``resize_mode``:
    bilinear without antialias, what ``torchvision.transforms.functional.resize`` did on tensors in PRO-Face's
    torchvision 0.13; the order of these two linear steps does not matter), the ArcFace, then ``z / ‖z‖₂``.
    """

    def __init__(self, arcface: SimSwapArcFace, resize_mode: str = "bilinear") -> None:
        super().__init__()
        if resize_mode not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(f"SimSwapIdentityEncoder: unknown resize_mode {resize_mode!r}")
        self.arcface = arcface
        self.resize_mode = resize_mode

    def forward(self, faces: Tensor) -> Tensor:
        x = _resize(faces, self.arcface.input_size, self.resize_mode)
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return F.normalize(self.arcface.forward_features((x - mean) / std), dim=1)


class SimSwapSwapper(nn.Module):
    """``(faces in [0, 1], identity latents) → swapped faces in [0, 1]`` at the faces' size (PRO-Face).

    See docs/papers/proface.md, "Obfuscators".

    The faces are resized (bicubic, ``align_corners=False``, no antialias — PRO-Face's
    ``F.resize(..., BICUBIC)``) to ``image_size`` (224), swapped by the generator (whose output is already in
    [0, 1]) and resized back; the bicubic overshoot of that last resize is clamped to [0, 1] (the obfuscator
    contract; PRO-Face does not clamp).
    """

    def __init__(
        self, generator: SimSwapGenerator, image_size: int = SIMSWAP_IMAGE_SIZE, resize_mode: str = "bicubic"
    ) -> None:
        super().__init__()
        if resize_mode not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(f"SimSwapSwapper: unknown resize_mode {resize_mode!r}")
        self.generator = generator
        self.image_size = int(image_size)
        self.resize_mode = resize_mode

    def forward(self, faces: Tensor, identity: Tensor) -> Tensor:
        size = tuple(faces.shape[-2:])
        x = _resize(faces, (self.image_size, self.image_size), self.resize_mode)
        swapped = _resize(self.generator(x, identity), size, self.resize_mode)  # type: ignore[arg-type]
        return swapped.clamp(0.0, 1.0)


# ========================================================================= restricted reading of the pickle


class PickledObject:
    """Inert stand-in for an object of a published class found in a pickle: records what pickle hands it.

    ``published`` is the ``module.Name`` the pickle referred to, ``pickle_args`` the constructor arguments
    (``NEWOBJ``/``REDUCE``) and ``pickle_state`` the ``BUILD`` state (for an ``nn.Module``: its ``__dict__``
    with ``_parameters``, ``_buffers``, ``_modules``). No published code is imported or run.
    """

    published: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledObject:
        obj = object.__new__(cls)
        obj.pickle_args = args
        obj.pickle_state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls cls(*args): nothing to do
        pass

    def __setstate__(self, state: Any) -> None:
        self.pickle_state = state

    def __repr__(self) -> str:
        return f"<pickled {self.published}>"


_PLACEHOLDERS: dict[str, type[PickledObject]] = {}


def _placeholder_class(published: str) -> type[PickledObject]:
    if published not in _PLACEHOLDERS:
        name = published.rsplit(".", 1)[-1]
        _PLACEHOLDERS[published] = type(name, (PickledObject,), {"published": published})
    return _PLACEHOLDERS[published]


#: modules whose globals become :class:`PickledObject` placeholders (the published classes, torch modules)
PLACEHOLDER_MODULES = (
    "models",  # foamliu InsightFace-v2 models.py; SimSwap 2021 models/__init__ re-exports it
    "models.models",  # SimSwap 2021
    "models.arcface_models",  # SimSwap 2023 re-upload
    "optimizer",  # InsightFace-v2 InsightFaceOptimizer (2021 file)
    "argparse",
    "numpy",  # a numpy scalar (e.g. the stored accuracy) stays an inert record
    "numpy.core.multiarray",
    "numpy._core.multiarray",
)
PLACEHOLDER_PREFIXES = ("torch.nn.modules.", "torch.nn.parallel.", "torch.nn.backends.", "torch.optim.")

_SAFE_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str")
_SAFE_BUILTINS += ("bytes", "bytearray", "slice", "range")
SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("_codecs", "encode"): codecs.encode,  # protocol 2 stores bytes as _codecs.encode(str, "latin1")
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.nn.parameter", "Parameter"): nn.Parameter,
    ("torch", "device"): torch.device,
    ("torch", "Size"): torch.Size,
    **{("builtins", name): getattr(builtins, name) for name in _SAFE_BUILTINS},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds tensors and containers but never imports or runs a pickled class's code.

    Published classes and torch module classes become :class:`PickledObject` placeholders
    (:data:`PLACEHOLDER_MODULES`, :data:`PLACEHOLDER_PREFIXES`); :data:`SAFE_GLOBALS` (torch's tensor rebuild
    functions, ``OrderedDict``, plain builtin containers) and torch dtypes resolve to the real objects; every
    other global is refused. Used as ``torch.load(..., pickle_module=restricted_pickle_module())``: torch's
    own wrapper resolves storage types before calling :meth:`find_class`.
    """

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 pickles (torch.save's default) spell Python 3 names the Python 2 way (__builtin__.set)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        safe = SAFE_GLOBALS.get((module, name))
        if safe is not None:
            return safe
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module in PLACEHOLDER_MODULES or module.startswith(PLACEHOLDER_PREFIXES):
            return _placeholder_class(f"{module}.{name}")
        raise pickle.UnpicklingError(
            f"refusing to unpickle the global {module}.{name}: only tensors, containers and the SimSwap/"
            f"InsightFace-v2 network classes (read as inert records) are allowed"
        )


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


def restricted_pickle_module() -> types.ModuleType:
    """A pickle module for ``torch.load(pickle_module=...)`` unpickling with :class:`RestrictedUnpickler`."""
    module = types.ModuleType("restricted_pickle")
    module.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    module.load = _restricted_load  # type: ignore[attr-defined]
    module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return module


def load_restricted(path: str | Path) -> Any:
    """``torch.load`` of a pickled whole-model file through :class:`RestrictedUnpickler` (on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pickled checkpoint not found: {path}")
    with warnings.catch_warnings():
        # legacy files carry the source of their classes; torch warns that it cannot compare it (never run)
        warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
        return torch.load(
            path, map_location="cpu", pickle_module=restricted_pickle_module(), weights_only=False
        )


def pickled_module_state_dict(obj: PickledObject, prefix: str = "") -> dict[str, Tensor]:
    """The ``state_dict`` a pickled ``nn.Module`` (a :class:`PickledObject` tree) would have had."""
    state = obj.pickle_state
    if not isinstance(state, Mapping) or "_modules" not in state:
        raise ValueError(f"{prefix or 'the pickled object'} ({obj.published}) is not a pickled nn.Module")
    out: dict[str, Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value.detach()
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PickledObject):
            raise ValueError(f"{prefix}{name}: unexpected child of type {type(child).__name__}")
        out.update(pickled_module_state_dict(child, f"{prefix}{name}."))
    return out


_WRAPPERS = ("DataParallel", "DistributedDataParallel")


@dataclass(frozen=True)
class PickledNetwork:
    """What :func:`read_pickled_network` found: the flat state dict, the network's class and where it sat."""

    state_dict: dict[str, Tensor]
    published_class: str
    path: tuple[str, ...]


def find_pickled_network(obj: Any, path: tuple[str, ...] = ()) -> PickledNetwork:
    """Locate the network in a loaded checkpoint: a bare pickled module, ``{'model': ...}`` containers,
    ``DataParallel(...).module`` wrappers, or a plain state dict (``module.`` prefixes stripped)."""
    if isinstance(obj, PickledObject):
        if obj.published.rsplit(".", 1)[-1] in _WRAPPERS:
            modules = (obj.pickle_state or {}).get("_modules") or {}
            if "module" not in modules:
                raise ValueError(f"{obj.published} at {'/'.join(path) or 'top level'} wraps no module")
            return find_pickled_network(modules["module"], (*path, "module"))
        return PickledNetwork(pickled_module_state_dict(obj), obj.published, path)
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            state = dict(obj)
            if all(k.startswith("module.") for k in state):
                state = {k[len("module.") :]: v for k, v in state.items()}
            return PickledNetwork(state, "state_dict", path)
        for key in ("model", "state_dict", "net", "module"):
            if key in obj:
                return find_pickled_network(obj[key], (*path, key))
        raise ValueError(
            f"no network under {'/'.join(path) or 'the top level'} (keys: {sorted(map(str, obj))})"
        )
    raise ValueError(f"no network at {'/'.join(path) or 'the top level'}: got {type(obj).__name__}")


def read_pickled_network(path: str | Path) -> PickledNetwork:
    """Read a pickled whole-model checkpoint safely (see the module docstring) → its network's state dict."""
    return find_pickled_network(load_restricted(path))


# ==================================================================================================== loaders


def load_simswap_generator(path: str | Path, **kwargs: Any) -> SimSwapGenerator:
    """A :class:`SimSwapGenerator` (``kwargs``: its constructor's) with ``latest_net_G.pth`` loaded strictly.

    The file is read with ``torch.load(weights_only=True)``; a missing/unexpected key or a shape mismatch
    raises ``ValueError`` naming them (``num_batches_tracked`` alone may be absent, see the module docstring).
    """
    model = SimSwapGenerator(**kwargs)
    state, _ = read_checkpoint(path)
    converted, _, _, _ = convert_state_dict(model, state, native_mapping(), str(path))
    model.load_state_dict(converted, strict=True)
    return model


def load_simswap_arcface(path: str | Path) -> SimSwapArcFace:
    """A :class:`SimSwapArcFace` shaped and filled from ``arcface_checkpoint.tar`` (either published version).

    The pickle is read with :func:`read_pickled_network` (no published code runs); depth, widths and SE are
    read from the tensors; the load is strict.
    """
    network = read_pickled_network(path)
    if network.published_class not in ("state_dict",) and not network.published_class.endswith(".ResNet"):
        raise ValueError(
            f"{path}: expected SimSwap's pickled ArcFace (models.arcface_models.ResNet or models.ResNet), "
            f"found {network.published_class} at {'/'.join(network.path) or 'the top level'}"
        )
    return SimSwapArcFace.from_state_dict(network.state_dict, str(path))


def generator_parameter_count(ngf: int = 64, latent_size: int = 512, n_blocks: int = 9) -> int:
    """Closed-form parameter count of :class:`SimSwapGenerator` (``deep=False``; 55,051,779 as released)."""
    c = (ngf, 2 * ngf, 4 * ngf, 8 * ngf)
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    bn = lambda ch: 2 * ch  # noqa: E731
    total = conv(3, c[0], 7) + bn(c[0]) + conv(c[0], 3, 7)
    for cin, cout in ((c[0], c[1]), (c[1], c[2]), (c[2], c[3])):
        total += conv(cin, cout, 3) + bn(cout) + conv(cout, cin, 3) + bn(cin)
    block = 2 * conv(c[3], c[3], 3) + 2 * (latent_size * 2 * c[3] + 2 * c[3])
    return total + n_blocks * block


__all__ = [
    "ARCFACE_DEPTHS",
    "ARCFACE_WEIGHTS",
    "GENERATOR_WEIGHTS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PLACEHOLDER_MODULES",
    "PLACEHOLDER_PREFIXES",
    "SAFE_GLOBALS",
    "SIMSWAP_ID_SIZE",
    "SIMSWAP_IMAGE_SIZE",
    "AdaINResBlock",
    "ApplyStyle",
    "ArcFaceConfig",
    "IRBlock",
    "InstanceNorm",
    "PickledNetwork",
    "PickledObject",
    "RestrictedUnpickler",
    "SEBlock",
    "SimSwapArcFace",
    "SimSwapGenerator",
    "SimSwapIdentityEncoder",
    "SimSwapSwapper",
    "find_pickled_network",
    "generator_parameter_count",
    "load_restricted",
    "load_simswap_arcface",
    "load_simswap_generator",
    "pickled_module_state_dict",
    "read_pickled_network",
    "restricted_pickle_module",
]
