"""FaceShifter (AEI-Net, the unofficial taotaonice/FaceShifter implementation) as plain modules, with loaders.

PRO-Face and PRO-Face S vendor taotaonice/FaceShifter (``network/AEI_Net.py``, ``network/AADLayer.py``,
``face_modules/model.py``; the copies in lixionga/ProFace at 791e815, ``FacePrivacy/PRO-Face/FaceShifter/``
and ``FacePrivacy/PRO-Face S/FaceShifter/``, equal taotaonice at 376b09e except that their
``face_modules/model.py`` keeps only ``Backbone``, whose ``forward`` returns only the embedding) and build
``AEI_Net(c_id=512)`` filled from ``FaceShifter/saved_models/G_latest.pth``, plus TreB1eN's IR-SE-50
``model_ir_se50.pth`` as the identity network (docs/papers/proface.md, "Obfuscators"). This module
re-implements the generator (written from that code's structure, not copied) with the **published state-dict
key names and shapes**, so the released file loads strictly with no mapping; the identity network is the zoo's
:func:`~src.networks.recognizers.irse.ir_se50` (TreB1eN layout).

**Generator** (:class:`AEINet`, ``c_id = 512``, widths are multiples of ``base_channels = 32``):

- ``encoder`` (multi-level attribute encoder, a U-Net): ``conv1``..``conv7`` = conv4×4 stride 2, no bias →
  BN → LeakyReLU(0.1) (3 → 32 → 64 → 128 → 256 → 512 → 1024 → 1024; 256 px → 2 px), then ``deconv1``..
  ``deconv6`` = transposed conv4×4 stride 2, no bias → BN → LeakyReLU(0.1), each concatenated with the
  encoder feature of the same size (1024+1024, 512+512, 256+256, 128+128, 64+64, 32+32 channels); the last
  map is bilinearly upsampled ×2 (``align_corners=True``). Output: 8 attribute maps at 2, 4, ..., 256 px
  with 1024, 2048, 1024, 512, 256, 128, 64, 64 channels.
- ``generator`` (AAD generator): ``up1`` = transposed conv 2×2 (with bias) of the identity ``[B, 512, 1, 1]``
  → ``[B, 1024, 2, 2]``; ``AADBlk1``..``AADBlk8`` (AAD ResBlks 1024→1024, 1024→1024, 1024→1024, 1024→512,
  512→256, 256→128, 128→64, 64→3), each followed (except the last) by bilinear ×2 upsampling
  (``align_corners=True``); output ``tanh`` ∈ [-1, 1].
- AAD ResBlk: ``AAD1`` → ReLU → ``conv1`` (3×3, no bias, cin→cin) → ``AAD2`` → ReLU → ``conv2`` (3×3,
  cin→cout), plus the input, or (cin ≠ cout) ``AAD3`` → ReLU → ``conv3`` (3×3, cin→cout) of the input.
- AAD layer on ``h`` (attribute map ``a``, identity ``z``): ``ĥ`` = parameter-free instance norm of ``h``
  (ε = 1e-5); ``A = conv1(a)·ĥ + conv2(a)`` (1×1 convs); ``I = fc1(z)·ĥ + fc2(z)`` (per-channel);
  ``M = sigmoid(conv_h(ĥ))`` (1×1 conv to one channel); output ``(1 − M)·A + M·I``. Note: no ``1 +`` on the
  scales (as published).

The generator works at **256×256 only**: ``up1`` always starts from 2×2, which the encoder's seven stride-2
convs produce only from 256 px (at 128 px the 1×1 attribute map would silently broadcast), so
:meth:`AEINet.forward` checks the size. Inputs and output are RGB in [-1, 1]. Released layout: **184,343,381
parameters** (PRO-Face's "184.3 M"), 311 state-dict entries (272 parameters and the 39 buffers of its 13
BatchNorms, incl. ``num_batches_tracked``; the instance norms hold nothing).

**The released file.** taotaonice's ``train_AEI.py`` saves ``torch.save(G.state_dict(),
'./saved_models/G_latest.pth')`` (apex amp ``O1``: fp32 weights, no wrapper), and every consumer loads it with
``G.load_state_dict(torch.load(...))`` (strict), so the file is a raw state dict with exactly these names.
:func:`load_faceshifter_generator` reads it with ``torch.load(weights_only=True)``, also accepts a
``{"state_dict": ...}``-style container or ``module.`` prefixes, and loads strictly (missing/unexpected keys
and shape mismatches are an error naming them and the file).

**How PRO-Face calls it** (``FaceShifter/face_shifter.py::face_shifter(xt, xs)`` with
``utils/image_processing.py``; all tensors RGB in [-1, 1]):

- target (identity) image ``xs``: the 224 CelebA frontal crop through ``targ_img_trans`` = PIL
  ``Resize(112, BICUBIC)`` → ``ToTensor`` → ``Normalize(0.5, 0.5)``; then ``F.interpolate(xs, (112, 112),
  'bilinear', align_corners=True)`` (a no-op at 112) → ``Backbone(50, 0.6, 'ir_se')`` → ``l2_norm``. **No
  crop.** (FaceShifter's own ``train_AEI.py`` / ``inference_demo.py`` crop rows/cols ``19:237`` of an
  MTCNN-aligned 256 face before the bilinear ``align_corners=True`` resize to 112; PRO-Face's call does not;
  ``identity_crop=True`` of :class:`FaceShifterIdentityEncoder` reproduces FaceShifter's own recipe.)
- attribute image ``xt`` (the face to obfuscate, 112 px in PRO-Face): ``F.interpolate(xt, (256, 256),
  mode='bilinear')`` (``align_corners=False``, no antialias) → ``G`` → ``yt`` (tanh) →
  ``F.interpolate(yt, (H, W), mode='bilinear')`` back to the input size; run under ``torch.no_grad()``.
- PRO-Face S (``utils/image_processing.py::FaceShifter``): the same, at 256 px, so both resizes are no-ops and
  the output stays at 256.

:class:`FaceShifterSwapper` and :class:`FaceShifterIdentityEncoder` reproduce this on images in [0, 1] (the
obfuscator contract): ``[0, 1] → [-1, 1]`` is affine, so it commutes with the (linear) resizes.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers.checkpoints import convert_state_dict, native_mapping, read_checkpoint
from src.networks.recognizers.irse import TREB1EN, IRNet

#: manifest entries (``src/weights/manifest.yaml``) of the generator and of its identity network
FACESHIFTER_GENERATOR_WEIGHTS = "faceshifter-generator-256"
FACESHIFTER_ARCFACE_WEIGHTS = "treb1en-ir-se50"
#: AEI-Net's only working resolution, the identity network's input size, the released identity size
FACESHIFTER_IMAGE_SIZE = 256
FACESHIFTER_ID_SIZE = 112
FACESHIFTER_C_ID = 512
FACESHIFTER_BASE_CHANNELS = 32
#: FaceShifter's own identity crop (``Xs[:, :, 19:237, 19:237]`` of a 256 face), not used by PRO-Face
FACESHIFTER_ID_CROP = (19, 237)
#: parameters of the released ``AEI_Net(c_id=512)`` (PRO-Face: "184.3 M")
FACESHIFTER_PARAMETERS = 184_343_381
#: resize modes of :func:`resize_images`
RESIZE_MODES = ("bilinear", "bilinear_align_corners", "bicubic", "bicubic_antialias", "nearest")
_LEAK = 0.1


# ========================================================================================= attribute encoder


def _down(cin: int, cout: int) -> nn.Sequential:
    # published ``conv4x4``: [Conv2d(k4, s2, p1, no bias), BatchNorm2d, LeakyReLU(0.1)] -> keys conv{i}.{0,1}
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(_LEAK)
    )


class AttributeUpBlock(nn.Module):
    """Published ``deconv4x4``: transposed conv4×4 stride 2 (no bias) → BN → LeakyReLU(0.1), then the skip
    feature is concatenated (``cat((x, skip), dim=1)``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.lrelu = nn.LeakyReLU(_LEAK)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return torch.cat((self.lrelu(self.bn(self.deconv(x))), skip), dim=1)


class MultiLevelAttributeEncoder(nn.Module):
    """Published ``MLAttrEncoder``: a U-Net whose decoder outputs are the 8 multi-level attribute maps.

    ``forward(x)`` with ``x`` ``[B, 3, 256, 256]`` in [-1, 1] → 8 maps at 2, 4, ..., 128 and 256 px with
    ``b·(32, 64, 32, 16, 8, 4, 2, 2)`` channels (``b = base_channels / 32``; see the module docstring).
    """

    def __init__(self, base_channels: int = FACESHIFTER_BASE_CHANNELS) -> None:
        super().__init__()
        b = base_channels
        widths = (3, b, 2 * b, 4 * b, 8 * b, 16 * b, 32 * b, 32 * b)
        for i in range(1, 8):  # conv1..conv7
            setattr(self, f"conv{i}", _down(widths[i - 1], widths[i]))
        # deconv{i}: (input = previous decoder map incl. its skip) -> (width of the skip it is joined with)
        self.deconv1 = AttributeUpBlock(32 * b, 32 * b)
        self.deconv2 = AttributeUpBlock(64 * b, 16 * b)
        self.deconv3 = AttributeUpBlock(32 * b, 8 * b)
        self.deconv4 = AttributeUpBlock(16 * b, 4 * b)
        self.deconv5 = AttributeUpBlock(8 * b, 2 * b)
        self.deconv6 = AttributeUpBlock(4 * b, b)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        features = []
        for i in range(1, 7):
            x = getattr(self, f"conv{i}")(x)
            features.append(x)  # feat1 (128 px) .. feat6 (4 px)
        maps = [self.conv7(x)]  # 2 px
        for i, skip in enumerate(reversed(features), start=1):
            maps.append(getattr(self, f"deconv{i}")(maps[-1], skip))
        maps.append(F.interpolate(maps[-1], scale_factor=2, mode="bilinear", align_corners=True))
        return tuple(maps)


# ============================================================================================ AAD generator


class AADLayer(nn.Module):
    """Adaptive attentional denormalisation (published ``AADLayer``; see the module docstring).

    ``forward(h, attr, z_id)``: activation ``[B, c_x, n, n]``, attribute map ``[B, c_attr, n, n]``, identity
    ``[B, c_id]`` → ``[B, c_x, n, n]``.
    """

    def __init__(self, c_x: int, c_attr: int, c_id: int = FACESHIFTER_C_ID) -> None:
        super().__init__()
        self.c_x, self.c_attr, self.c_id = c_x, c_attr, c_id
        self.conv1 = nn.Conv2d(c_attr, c_x, 1)  # attribute scale
        self.conv2 = nn.Conv2d(c_attr, c_x, 1)  # attribute shift
        self.fc1 = nn.Linear(c_id, c_x)  # identity scale
        self.fc2 = nn.Linear(c_id, c_x)  # identity shift
        self.norm = nn.InstanceNorm2d(c_x, affine=False)  # no parameters, no buffers
        self.conv_h = nn.Conv2d(c_x, 1, 1)  # attention mask

    def forward(self, h: Tensor, attr: Tensor, z_id: Tensor) -> Tensor:
        h = self.norm(h)
        from_attr = self.conv1(attr) * h + self.conv2(attr)
        from_id = self.fc1(z_id)[:, :, None, None] * h + self.fc2(z_id)[:, :, None, None]
        mask = torch.sigmoid(self.conv_h(h))
        return (1.0 - mask) * from_attr + mask * from_id


class AADResBlock(nn.Module):
    """Published ``AAD_ResBlk``: two AAD → ReLU → conv3×3 steps plus a (learned when ``cin != cout``) skip."""

    def __init__(self, cin: int, cout: int, c_attr: int, c_id: int = FACESHIFTER_C_ID) -> None:
        super().__init__()
        self.cin, self.cout = cin, cout
        self.AAD1 = AADLayer(cin, c_attr, c_id)
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1, bias=False)
        self.relu1 = nn.ReLU()
        self.AAD2 = AADLayer(cin, c_attr, c_id)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.relu2 = nn.ReLU()
        if cin != cout:
            self.AAD3 = AADLayer(cin, c_attr, c_id)
            self.conv3 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.relu3 = nn.ReLU()

    def forward(self, h: Tensor, attr: Tensor, z_id: Tensor) -> Tensor:
        x = self.conv1(self.relu1(self.AAD1(h, attr, z_id)))
        x = self.conv2(self.relu2(self.AAD2(x, attr, z_id)))
        if self.cin != self.cout:
            h = self.conv3(self.relu3(self.AAD3(h, attr, z_id)))
        return x + h


def aad_block_widths(b: int) -> tuple[tuple[int, int, int], ...]:
    """(input, output, attribute) channels of ``AADBlk1..8`` for encoder base width ``b`` (32 published)."""
    return (
        (32 * b, 32 * b, 32 * b),
        (32 * b, 32 * b, 64 * b),
        (32 * b, 32 * b, 32 * b),
        (32 * b, 16 * b, 16 * b),
        (16 * b, 8 * b, 8 * b),
        (8 * b, 4 * b, 4 * b),
        (4 * b, 2 * b, 2 * b),
        (2 * b, 3, 2 * b),
    )


class AADGenerator(nn.Module):
    """Published ``AADGenerator``: identity → 2×2 map, 8 AAD ResBlks with ×2 bilinear upsampling, tanh."""

    def __init__(self, c_id: int = FACESHIFTER_C_ID, base_channels: int = FACESHIFTER_BASE_CHANNELS) -> None:
        super().__init__()
        b = base_channels
        self.c_id = c_id
        self.up1 = nn.ConvTranspose2d(c_id, 32 * b, kernel_size=2, stride=1, padding=0)
        for i, (cin, cout, c_attr) in enumerate(aad_block_widths(b), start=1):
            setattr(self, f"AADBlk{i}", AADResBlock(cin, cout, c_attr, c_id))

    def forward(self, attributes: tuple[Tensor, ...], z_id: Tensor) -> Tensor:
        m = self.up1(z_id.reshape(z_id.shape[0], -1, 1, 1))
        for i in range(1, 8):
            m = getattr(self, f"AADBlk{i}")(m, attributes[i - 1], z_id)
            m = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=True)
        return torch.tanh(self.AADBlk8(m, attributes[7], z_id))


class AEINet(nn.Module):
    """FaceShifter's AEI-Net generator (published ``AEI_Net``; see the module docstring), published names.

    ``forward(images, z_id)``: attribute faces ``[B, 3, 256, 256]`` RGB in [-1, 1] and identity embeddings
    ``[B, c_id]`` (L2-normalised IR-SE-50 output) → swapped faces ``[B, 3, 256, 256]`` in [-1, 1].
    ``c_id`` (512) and ``base_channels`` (32; every width is a multiple of it) differ from the release only
    in tests (a narrow network runs fast on CPU).
    """

    def __init__(self, c_id: int = FACESHIFTER_C_ID, base_channels: int = FACESHIFTER_BASE_CHANNELS) -> None:
        super().__init__()
        if c_id < 1 or base_channels < 1:
            raise ValueError(
                f"AEINet: c_id and base_channels must be >= 1, got c_id={c_id}, base_channels={base_channels}"
            )
        self.c_id, self.base_channels = int(c_id), int(base_channels)
        self.encoder = MultiLevelAttributeEncoder(self.base_channels)
        self.generator = AADGenerator(self.c_id, self.base_channels)

    def attributes(self, images: Tensor) -> tuple[Tensor, ...]:
        """The 8 multi-level attribute maps of ``images`` (256 px, [-1, 1])."""
        self._check_images(images)
        return self.encoder(images)

    def forward(self, images: Tensor, z_id: Tensor) -> Tensor:
        self._check_images(images)
        if z_id.ndim != 2 or z_id.shape[1] != self.c_id or z_id.shape[0] != images.shape[0]:
            raise ValueError(
                f"AEINet: z_id must be [B={images.shape[0]}, {self.c_id}], got {tuple(z_id.shape)}"
            )
        return self.generator(self.encoder(images), z_id)

    def _check_images(self, images: Tensor) -> None:
        size = FACESHIFTER_IMAGE_SIZE
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(
                f"AEINet works on [B, 3, {size}, {size}] images only (its generator starts from a 2x2 map "
                f"that the attribute encoder matches only at {size} px), got {tuple(images.shape)}"
            )


def faceshifter_parameter_count(
    c_id: int = FACESHIFTER_C_ID, base_channels: int = FACESHIFTER_BASE_CHANNELS
) -> int:
    """Closed-form parameter count of :class:`AEINet` (184,343,381 as released: ``c_id=512``, ``b=32``)."""
    b = base_channels
    bn = lambda c: 2 * c  # noqa: E731

    def aad(c_x: int, c_attr: int) -> int:
        return 2 * (c_attr * c_x + c_x) + 2 * (c_id * c_x + c_x) + (c_x + 1)

    def resblk(cin: int, cout: int, c_attr: int) -> int:
        total = 2 * aad(cin, c_attr) + cin * cin * 9 + cin * cout * 9
        return total + (aad(cin, c_attr) + cin * cout * 9 if cin != cout else 0)

    widths = (3, b, 2 * b, 4 * b, 8 * b, 16 * b, 32 * b, 32 * b)
    encoder = sum(cin * cout * 16 + bn(cout) for cin, cout in itertools.pairwise(widths))
    ups = ((32 * b, 32 * b), (64 * b, 16 * b), (32 * b, 8 * b), (16 * b, 4 * b), (8 * b, 2 * b), (4 * b, b))
    encoder += sum(cin * cout * 16 + bn(cout) for cin, cout in ups)
    generator = c_id * 32 * b * 4 + 32 * b
    blocks = aad_block_widths(b)
    generator += sum(resblk(*block) for block in blocks)
    return encoder + generator


# ==================================================================================================== loaders


def load_faceshifter_generator(path: str | Path, **kwargs: Any) -> AEINet:
    """An :class:`AEINet` (``kwargs``: its constructor's) with ``G_latest.pth`` loaded strictly.

    The file is read with ``torch.load(weights_only=True)``; a container (``state_dict``, ``model``, ...) and
    wrapper prefixes (``module.``) are unwrapped. A missing/unexpected key or a shape mismatch raises
    ``ValueError`` naming them and ``path`` (``num_batches_tracked`` alone may be absent: it never affects an
    eval-mode forward pass).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FaceShifter generator checkpoint not found: {path}")
    model = AEINet(**kwargs)
    state, _ = read_checkpoint(path)
    converted, _, _, _ = convert_state_dict(model, state, native_mapping(), str(path))
    model.load_state_dict(converted, strict=True)
    return model


def build_faceshifter_arcface(**kwargs: Any) -> IRNet:
    """The zoo's TreB1eN IR-SE-50 (:func:`~src.networks.recognizers.irse.ir_se50`), randomly initialised."""
    from src.networks.recognizers.irse import ir_se50

    return ir_se50(**kwargs)


def load_faceshifter_arcface(path: str | Path, **kwargs: Any) -> IRNet:
    """The zoo IR-SE-50 with TreB1eN's ``model_ir_se50.pth`` loaded strictly (checkpoint format ``treb1en``).

    TreB1eN saves ``Backbone.state_dict()``; PRO-Face loads it with ``strict=False``, but pSp loads the same
    file strictly, so a strict load is right (only absent ``num_batches_tracked`` counters are tolerated).
    ``kwargs`` are :func:`~src.networks.recognizers.irse.ir_se50` arguments (e.g. ``channel_order``).
    """
    from src.networks.recognizers.checkpoints import load_recognizer_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FaceShifter identity network (IR-SE-50) checkpoint not found: {path}")
    model = build_faceshifter_arcface(**kwargs)
    load_recognizer_checkpoint(model, path, format=TREB1EN)
    return model


# ================================================================== PRO-Face's use: identity encoder, swapper


def resize_images(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Resize ``[B, C, H, W]`` to ``size`` (returned unchanged when already that size).

    Modes: ``bilinear`` / ``bicubic`` (``align_corners=False``, no antialias: ``F.interpolate``'s defaults,
    and torchvision's tensor ``resize`` in PRO-Face's versions), ``bilinear_align_corners`` (FaceShifter's
    identity resize), ``bicubic_antialias`` (PIL-like bicubic: PRO-Face's ``transforms.Resize(112,
    BICUBIC)`` of the PIL target image), ``nearest``.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; available: {', '.join(RESIZE_MODES)}")
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    if mode == "bilinear_align_corners":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    if mode == "bicubic_antialias":
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


class FaceShifterIdentityEncoder(nn.Module):
    """Target faces ``[B, 3, H, W]`` in [0, 1] → L2-normalised IR-SE-50 identity embeddings ``[B, 512]``.

    PRO-Face (module docstring): the target is resized to 112 (``resize_mode``, default
    ``bicubic_antialias`` ≈ PIL ``Resize(112, BICUBIC)``; PIL also rounds to 8 bits, which is not
    reproduced), mapped to [-1, 1] (the IR-SE-50's declared normalisation), embedded and L2-normalised
    (``Backbone.forward``'s ``l2_norm``). ``identity_crop=True``: FaceShifter's own recipe instead — the rows
    and columns ``19:237`` of the face seen as a 256 frame (exactly those pixels at 256 px, proportionally
    otherwise), then a bilinear ``align_corners=True`` resize (pass ``resize_mode="bilinear_align_corners"``).
    """

    def __init__(
        self, arcface: IRNet, resize_mode: str = "bicubic_antialias", identity_crop: bool = False
    ) -> None:
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"FaceShifterIdentityEncoder: unknown resize_mode {resize_mode!r}")
        self.arcface = arcface
        self.resize_mode = resize_mode
        self.identity_crop = bool(identity_crop)

    def forward(self, faces: Tensor) -> Tensor:
        x = faces
        if self.identity_crop:
            h, w = x.shape[-2:]
            top, bottom = (round(v * h / FACESHIFTER_IMAGE_SIZE) for v in FACESHIFTER_ID_CROP)
            left, right = (round(v * w / FACESHIFTER_IMAGE_SIZE) for v in FACESHIFTER_ID_CROP)
            x = x[..., top:bottom, left:right]
        x = resize_images(x, tuple(self.arcface.input_size), self.resize_mode)  # type: ignore[arg-type]
        return F.normalize(self.arcface.forward_features(self.arcface.preprocess(x)), dim=1)


class FaceShifterSwapper(nn.Module):
    """``(faces in [0, 1], identity embeddings [B, c_id]) → swapped faces in [0, 1]`` at the faces' size.

    PRO-Face's ``face_shifter`` (module docstring): the faces are mapped to [-1, 1], resized to 256
    (``resize_mode``, default bilinear, ``align_corners=False``, no antialias), swapped by the AEI-Net,
    resized back the same way and mapped to [0, 1] (clamped: the obfuscator contract; bilinear resizing of
    a tanh output stays inside it anyway).
    """

    def __init__(
        self, generator: AEINet, image_size: int = FACESHIFTER_IMAGE_SIZE, resize_mode: str = "bilinear"
    ) -> None:
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"FaceShifterSwapper: unknown resize_mode {resize_mode!r}")
        if int(image_size) != FACESHIFTER_IMAGE_SIZE:
            raise ValueError(
                f"FaceShifterSwapper: AEI-Net only runs at {FACESHIFTER_IMAGE_SIZE} px, "
                f"got image_size={image_size}"
            )
        self.generator = generator
        self.image_size = int(image_size)
        self.resize_mode = resize_mode

    def forward(self, faces: Tensor, identity: Tensor) -> Tensor:
        size = (int(faces.shape[-2]), int(faces.shape[-1]))
        x = resize_images(faces * 2.0 - 1.0, (self.image_size, self.image_size), self.resize_mode)
        swapped = resize_images(self.generator(x, identity), size, self.resize_mode)
        return ((swapped + 1.0) / 2.0).clamp(0.0, 1.0)


__all__ = [
    "FACESHIFTER_ARCFACE_WEIGHTS",
    "FACESHIFTER_BASE_CHANNELS",
    "FACESHIFTER_C_ID",
    "FACESHIFTER_GENERATOR_WEIGHTS",
    "FACESHIFTER_ID_CROP",
    "FACESHIFTER_ID_SIZE",
    "FACESHIFTER_IMAGE_SIZE",
    "FACESHIFTER_PARAMETERS",
    "RESIZE_MODES",
    "AADGenerator",
    "AADLayer",
    "AADResBlock",
    "AEINet",
    "AttributeUpBlock",
    "FaceShifterIdentityEncoder",
    "FaceShifterSwapper",
    "MultiLevelAttributeEncoder",
    "build_faceshifter_arcface",
    "faceshifter_parameter_count",
    "load_faceshifter_arcface",
    "load_faceshifter_generator",
    "resize_images",
]
